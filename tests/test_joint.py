"""Joint multi-task baselines: task sampling, the joint loop (selection, resume, one result per task), the
task-conditioned modules (HyperFormer's generated adapters, ProPETL-m's masks), on the synthetic benchmark."""

import json
import math
from pathlib import Path

import pytest
import torch

from scalearn import HeadConfig, get_method, load_encoder
from scalearn.run import train_joint
from scalearn.schedule import TaskStreams, task_probabilities, task_schedule

TASKS = ["syn_a", "syn_a_count", "syn_b"]  # two classification tasks and a regression one


def test_task_probabilities_follow_the_temperature():
    sizes = {"big": 900, "small": 100}
    assert task_probabilities(sizes, 1.0) == pytest.approx({"big": 0.9, "small": 0.1})
    assert task_probabilities(sizes, 2.0) == pytest.approx({"big": 30 / 40, "small": 10 / 40})  # √n
    assert task_probabilities(sizes, 1e9) == pytest.approx({"big": 0.5, "small": 0.5})
    with pytest.raises(ValueError, match="sampling_temperature"):
        task_probabilities(sizes, 0)


def test_schedule_draws_tasks_at_their_rates_and_depends_on_the_seed_only():
    sizes = {"a": 600, "b": 300, "c": 100}
    schedule = task_schedule(sizes, 1.0, seed=3, length=20_000)
    shares = torch.bincount(schedule, minlength=3).double() / len(schedule)
    torch.testing.assert_close(shares, torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64), atol=0.015, rtol=0)
    assert torch.equal(schedule, task_schedule(sizes, 1.0, seed=3, length=20_000))
    assert not torch.equal(schedule, task_schedule(sizes, 1.0, seed=4, length=20_000))


def test_each_task_is_walked_through_in_shuffled_passes():
    streams = TaskStreams({"a": list(range(10)), "b": list(range(7))}, batch_size=4, seed=0)
    assert streams.batches_per_pass == {"a": 3, "b": 2}
    first = [i for k in range(3) for i in streams.rows("a", 0, k)]
    second = [i for k in range(3, 6) for i in streams.rows("a", 0, k)]
    assert sorted(first) == sorted(second) == list(range(10))  # every example once per pass
    assert first != second  # a new order every pass
    # two ranks share each batch: together they see one rank's batch, the incomplete batch dropped
    ranks = [TaskStreams({"a": list(range(10))}, batch_size=4, seed=0, rank=r, world=2) for r in (0, 1)]
    assert ranks[0].batches_per_pass == {"a": 2}
    assert ranks[0].rows("a", 0, 0) + ranks[1].rows("a", 0, 0) == streams.rows("a", 0, 0)


def test_an_epoch_on_several_ranks_plans_the_steps_its_ranks_take():
    """Two ranks drop an epoch's incomplete global batch: the schedule plans the steps they take (its learning
    rate reaches 0 at the last), and a split smaller than one batch is an error, not a loop that yields nothing."""
    from scalearn.config import LoopConfig
    from scalearn.schedule import EpochSchedule, RunState

    config = LoopConfig(batch_size=32, epochs=3)
    ranks = [EpochSchedule("t", 100, config, seed=0, rank=r, world=2) for r in (0, 1)]
    state = RunState()
    taken = 0
    for batch in ranks[0].micro_batches(state):
        state.step += 1  # one micro-batch a step
        ranks[0].advance(state, batch)
        taken += 1
    assert taken == ranks[0].total_steps == 3 * 3  # 100 // 32 global batches an epoch
    assert EpochSchedule("t", 100, config, seed=0).total_steps == 3 * 4  # one rank keeps the partial batch
    with pytest.raises(ValueError, match=r"training split \(16\) is smaller than one batch \(32\) on 2 ranks"):
        EpochSchedule("t", 16, config, seed=0, rank=0, world=2)


def run(method="adapter_m", **kw):
    settings = {
        "model": "tiny-bow",
        "seed": 0,
        "max_steps": 12,
        "eval_every_steps": 4,
        "batch_size": 16,
        "reduction_factor": 4,
        **kw,
    }
    return train_joint(TASKS, method=method, name="synthetic", **settings)


def test_joint_run_gives_one_result_per_task_and_selects_on_mean_dev_loss(cache_dir, tmp_path):
    result, model = run(cache_dir=cache_dir, output_dir=tmp_path / "out")
    assert result.steps == 12 and len(result.losses) == 12
    assert result.losses[:3] == pytest.approx([1.4553357, 5.4495969, 0.6882116], abs=1e-6)  # pinned, seed 0
    assert set(result.tasks) == set(TASKS)
    assert set(result.tasks["syn_a"]["test"]) >= {"accuracy", "loss"}
    assert set(result.tasks["syn_a_count"]["test"]) >= {"pearson", "loss"}
    assert result.test["syn_a/accuracy"] == result.tasks["syn_a"]["test"]["accuracy"]
    # an evaluation every 4 steps; the mean dev loss is the unweighted mean over tasks, and the best one wins
    assert [row["step"] for row in result.history] == [4, 8, 12]
    for row in result.history:
        assert row["dev_loss"] == pytest.approx(sum(row[f"dev_{t}/loss"] for t in TASKS) / 3)
    best = min(result.history, key=lambda row: row["dev_loss"])
    assert result.best_step == best["step"] and result.best_dev["loss"] == best["dev_loss"]
    assert result.tasks["syn_a"]["best_dev"]["loss"] == best["dev_syn_a/loss"]
    assert (tmp_path / "out" / "model" / "model.json").exists() and not (tmp_path / "out" / "adapter").exists()
    assert result.parameters["transfer_total"] == model.adapters.config.num_parameters()
    assert result.parameters["transfer"] == math.ceil(result.parameters["transfer_total"] / 3)


def test_joint_resume_continues_on_the_same_curve(cache_dir, tmp_path):
    whole, whole_model = run(method="propetl_m", cache_dir=cache_dir)
    # as if the trial crashed right after its second evaluation
    partial, _ = run(method="propetl_m", cache_dir=cache_dir, checkpoint_dir=tmp_path, stop_after_evaluations=2)
    assert partial.steps == 8 and not partial.test
    resumed, resumed_model = run(method="propetl_m", cache_dir=cache_dir, checkpoint_dir=tmp_path)
    assert resumed.losses == whole.losses and resumed.history == whole.history
    assert resumed.test == whole.test and resumed.best_step == whole.best_step
    for (name, a), b in zip(
        whole_model.trainable_parameters().items(), resumed_model.trainable_parameters().values(), strict=True
    ):
        assert torch.equal(a, b), name


@pytest.mark.slow
@pytest.mark.parametrize(("method", "steps"), [("adapter_m", 512), ("hyperformer_pp", 256)])
def test_one_model_learns_two_unrelated_tasks_at_once(method, steps, cache_dir):
    """syn_a and syn_b hinge on disjoint concept words (majority class ~51%); at LR 2e-3, 512 joint steps of
    Adapter-m reach 0.79/0.78 on the test splits (at 256 it has not learnt syn_a yet: 0.51), 256 steps of
    HyperFormer++ 0.83/0.76. One evaluation, at the end: the last state is scored (an evaluation every 64 steps
    chose step 448 of Adapter-m's, 0.78/0.78, and cost 6 s more)."""
    result, _ = train_joint(
        ["syn_a", "syn_b"],
        method=method,
        model="tiny-bow",
        max_steps=steps,
        eval_every_steps=steps,
        learning_rate=2e-3,
        patience=100,
        cache_dir=cache_dir,
    )
    assert result.tasks["syn_a"]["test"]["accuracy"] > 0.65
    assert result.tasks["syn_b"]["test"]["accuracy"] > 0.65


@pytest.mark.parametrize("method", ["hyperformer", "hyperformer_pp"])
def test_hyperformer_generates_a_different_adapter_for_each_task(method):
    encoder = load_encoder("tiny-roberta")
    torch.manual_seed(0)
    head = HeadConfig("classification", encoder.config.hidden_size, 2)
    model = get_method(method).build(encoder, dict.fromkeys(["a", "b"], head))
    hyper = model.tuner
    for layer in range(hyper.num_layers):
        for first, second in zip(hyper.adapter_weights(0, layer), hyper.adapter_weights(1, layer), strict=True):
            assert not torch.allclose(first, second)  # every generated tensor depends on the task
    # HyperFormer++ has one hypernetwork for all layers: the layer embedding sets layers apart
    assert not torch.allclose(hyper.adapter_weights(0, 0)[0], hyper.adapter_weights(0, 1)[0])
    # and the task changes what the model computes on the same input
    ids = torch.randint(5, 500, (2, 9), generator=torch.Generator().manual_seed(0))
    model.eval()
    model.set_task("a")
    logits_a = model.encoder(input_ids=ids).last_hidden_state
    model.set_task("b")
    assert not torch.allclose(logits_a, model.encoder(input_ids=ids).last_hidden_state)


def test_propetl_m_masks_are_task_union_layer():
    encoder = load_encoder("tiny-roberta")
    head = HeadConfig("classification", encoder.config.hidden_size, 2)
    model = get_method("propetl_m", reduction_factor=4).build(encoder, dict.fromkeys(["a", "b"], head))
    tuner = model.tuner
    assert tuner.sparsity == 0.7  # the scripts' "0.3" is the fraction ProPETL's code keeps
    n = tuner.down_weight.numel()
    layer_mask = tuner.mask(0, "down")  # task "a" (the first) is current
    model.set_task("b")
    other = tuner.mask(0, "down")
    assert not torch.equal(layer_mask, other)
    for task in (0, 1):
        task_only = (tuner.task_down_scores[task].abs().flatten().argsort().argsort() >= int(0.7 * n)).float()
        layer_only = (tuner.down_scores[0].abs().flatten().argsort().argsort() >= int(0.7 * n)).float()
        tuner.task_index = task
        torch.testing.assert_close(tuner.mask(0, "down").flatten(), torch.maximum(task_only, layer_only))
    assert n - int(0.7 * n) <= layer_mask.sum() <= 2 * (n - int(0.7 * n))


def test_joint_methods_refuse_single_task_use():
    with pytest.raises(ValueError, match="use train_joint"):
        from scalearn.run import train_task

        train_task("syn_a", method="adapter_m", model="tiny-bow")
    with pytest.raises(ValueError, match="trains one task: use train_task"):
        train_joint(TASKS, method="adapter", model="tiny-bow")


GLUE = Path(__file__).resolve().parent.parent / "experiments" / "glue.yaml"


@pytest.mark.slow
def test_every_row_of_the_glue_table_runs_end_to_end_on_the_synthetic_benchmark(ray_local, tmp_path, capsys):
    """experiments/glue.yaml's methods, moved onto tiny-bow and the synthetic benchmark: `harness submit` runs
    them all on real Ray; a joint trial yields one result per task, one MLflow run with per-task metrics, and
    a cell in the report like every other method."""
    from mlflow.tracking import MlflowClient

    from harness.cli import main
    from harness.plan import expand
    from harness.spec import load_spec
    from harness.store import Store
    from harness.tracking import KEY_TAG

    experiment = tmp_path / "glue-synthetic.yaml"
    experiment.write_text(f"""version: 1
include: {GLUE}
name: glue-synthetic
models: [tiny-bow]
benchmark: synthetic
tasks: [syn_a, syn_b, syn_a_low]
targets: [syn_a_low]
seeds: 1
seeds_per_task: {{}}
joint_seeds: 1
hyperparameters:
  all: {{epochs: 1, max_steps: 3, eval_every_steps: 3, batch_size: 8, reduction_factor: 8}}
  adapter_soup: {{similarity_model: minilm, similarity_sentences: 50}}  # offline: the packaged sentence encoder
data: {{max_length: 32}}
resources: {{cpus: 1}}
""")
    spec = load_spec(experiment)
    paper_rows = load_spec(GLUE).methods
    assert spec.methods == paper_rows
    trials = expand(spec)
    store = Store(tmp_path / "store")
    assert main(["submit", str(experiment), "--store", str(store.root), "--num-cpus", "2"]) == 0
    assert all(store.is_done(t.key) for t in trials)

    joint = [t for t in trials if t.joint]
    assert sorted(t.method for t in joint) == ["adapter_m", "full_ft_m", "hyperformer", "hyperformer_pp", "propetl_m"]
    for trial in joint:
        assert trial.task == "joint" and trial.tasks == ("syn_a", "syn_b", "syn_a_low") and trial.stage == 1
        result = store.result(trial.key)
        assert set(result["tasks"]) == set(trial.tasks)
        assert all("accuracy" in result["tasks"][task]["test"] for task in trial.tasks)

    client = MlflowClient(tracking_uri=store.tracking_uri)
    experiment_id = client.get_experiment_by_name("glue-synthetic").experiment_id
    runs = client.search_runs([experiment_id], filter_string=f"tags.`{KEY_TAG}` != ''", max_results=500)
    assert sorted(r.data.tags[KEY_TAG] for r in runs) == sorted(t.key for t in trials)
    hyper = next(r for r in runs if r.data.tags["method"] == "hyperformer")
    assert hyper.data.tags["tasks"] == "syn_a,syn_b,syn_a_low"
    assert {"syn_a/test_accuracy", "syn_a_low/test_accuracy", "syn_b/dev_loss", "dev_loss"} <= set(hyper.data.metrics)

    out = tmp_path / "report"
    assert main(["report", str(experiment), "--store", str(store.root), "--out", str(out), "--format", "json"]) == 0
    report = json.loads((out / "report.json").read_text())
    rows = {row["method"]: row for row in report["tables"][0]["rows"]}
    assert list(rows) == paper_rows  # the paper's order: single-task, joint, two-stage
    for method, row in rows.items():
        assert row["cells"]["syn_a_low"]["n"] == 1, method
    assert rows["hyperformer"]["group"] == "joint" and rows["hyperformer"]["transfer_parameters"] > 0
    figures = {path.name for path in (out / "figures").iterdir()}
    assert {"curves_tiny-bow_syn_a_low.png", "curves_joint_tiny-bow_syn_a_low.png"} <= figures
