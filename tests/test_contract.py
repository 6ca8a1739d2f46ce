"""The typed trial contract and the doors around it: TrialConfig (built, checked, hashed, round-tripped),
the method registry's capability flags and hooks, the one loop's two schedules, the store's layout, and the
programmatic `harness.submit`."""

import json
from pathlib import Path

import pytest
import yaml

import harness
from harness.plan import expand, trial_key
from harness.spec import SpecError, load_spec
from harness.store import Store
from scalearn.config import LoopConfig, TrialConfig
from scalearn.methods import METHODS, get_method, method_class
from scalearn.resolve import checked, create_config, key_fields

TINY = Path(__file__).resolve().parent.parent / "experiments" / "tiny.yaml"


def test_create_fills_every_default_and_splits_method_from_loop():
    config = create_config("scalearn_pp", "syn_a", model="minilm", seed=3, overrides={"learning_rate": "1e-3"})
    assert config.model == "sentence-transformers/all-MiniLM-L6-v2"  # canonical name
    assert config.method_config == {"shape": "vector", "shared": True, "omega_dropout": 0.3, "omega_init_scale": 2.0}
    assert config.loop.learning_rate == 0.001 and config.loop.patience == 30  # the method's default, then ours
    assert config.data.max_length == 128 and config.task_versions == {"syn_a": 1} and config.seed == 3
    joint = create_config("adapter_m", tasks=["syn_a", "syn_b"], label="synthetic", model="tiny-bow")
    assert joint.joint and joint.task == "synthetic" and joint.loop.max_steps == 375_000


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: create_config("adapter", "syn_a", model="m", overrides={"epochs": 0}), "epochs: must be"),
        (lambda: create_config("adapter", "syn_a", model="m", overrides={"omega": [1]}), "no hyper-parameter"),
        (lambda: create_config("adapter_m", "syn_a", model="m"), "give `tasks`"),
        (lambda: create_config("adapter", tasks=["syn_a"], model="m"), "trains one task"),
        (lambda: create_config("adapter_m", tasks=["syn_a", "syn_a"], model="m"), "distinct tasks"),
    ],
)
def test_create_refuses_what_cannot_be_trained(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_a_stored_config_round_trips_to_the_same_key_and_is_checked_again():
    config = create_config("adapterfusion", "syn_a_low", model="tiny-bert", sources=["syn_a", "syn_a_low"])
    stored = json.loads(json.dumps(config.model_dump(mode="json")))
    again = checked(stored)
    assert again == config and trial_key(again, ("k",)) == trial_key(config, ("k",))
    stored["method_config"]["reg_weight"] = -1
    with pytest.raises(ValueError, match="reg_weight: must be a number ≥ 0"):
        checked(stored)
    with pytest.raises(ValueError, match="version"):
        TrialConfig(**{**config.model_dump(), "version": 2})


def test_the_key_leaves_out_only_what_does_not_change_training():
    config = create_config("adapter", "syn_a", model="tiny-bert")
    assert trial_key(config.with_loop(log_every_steps=1), ()) == trial_key(config, ())
    for change in ({"eval_batch_size": 8}, {"learning_rate": 1e-3}, {"zero_stage": 3}):
        assert trial_key(config.with_loop(**change), ()) != trial_key(config, ())
    assert trial_key(config.model_copy(update={"seed": 1}), ()) != trial_key(config, ())
    assert "log_every_steps" not in key_fields(config)["loop"]


# The key of one plain trial, pinned: a change here reruns every store's trials (say so where you change it).
PINNED_KEY = ("adapter", "syn_a", "tiny-bert", "5992754b75c0f6aff0daba95")


def test_a_setting_added_later_stays_out_of_old_keys_at_its_default():
    method, task, model, key = PINNED_KEY
    config = create_config(method, task, model=model)
    assert trial_key(config, ()) == key
    assert trial_key(config.with_loop(backbone_dtype="fp32"), ()) == key  # said out loud, still the default
    assert "backbone_dtype" not in key_fields(config)["loop"]
    frozen_bf16 = config.with_loop(precision="bf16", backbone_dtype="bf16")
    assert key_fields(frozen_bf16)["loop"]["backbone_dtype"] == "bf16"
    assert trial_key(frozen_bf16, ()) != trial_key(config.with_loop(precision="bf16"), ())
    with pytest.raises(ValueError, match="backbone_dtype bf16 needs precision bf16"):
        config.with_loop(backbone_dtype="bf16")


def test_every_method_declares_its_capabilities_on_the_base_class():
    for name, (cls, _) in METHODS.items():
        method = get_method(name)
        assert isinstance(method.joint, bool) and isinstance(method.uses_sources, bool), name
        assert not (method.joint and method.uses_sources), name
        assert set(method.settings()) | set(LoopConfig.model_fields) == set(cls.model_fields), name
        assert method.loop_config() == LoopConfig(**method.model_dump(include=set(LoopConfig.model_fields)))
    assert method_class("hyperformer").group == "joint" and method_class("probe").group == "two-stage"
    # a method's own hooks: the probe fills ω for a count, the others are themselves
    assert get_method("probe").for_counting(3).omega == [1.0, 1.0, 1.0]
    adapter = get_method("adapter")
    assert adapter.for_counting(3) is adapter and adapter.prepare("syn_a", []) is adapter


def test_method_registry_imports_no_torch():
    import subprocess
    import sys

    script = "import sys, scalearn.methods, scalearn.config, harness.plan; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_tasks_select_and_score_through_their_specs():
    from scalearn.tasks import get_task

    assert get_task("sectors").select_by == "metric" and get_task("rte").select_by == "loss"
    assert get_task("record").scoring == "record_query" and get_task("multirc").scoring == "multirc_question"
    assert get_task("sst2").scoring == "per_example"


def test_store_owns_its_layout(tmp_path):
    store = Store(tmp_path / "s")
    assert store.adapter_dir("k") == store.trial_dir("k") / "artifacts" / "adapter"
    assert store.model_dir("k").parent == store.artifacts_dir("k")
    assert store.tracking_uri == f"sqlite:///{store.root / 'mlflow.db'}" and not store.has_tracking


def test_harness_submit_is_the_command_line_without_printing(ray_local, tmp_path):
    """The API returns the outcome; a second submit runs nothing; a bad file raises the one-line error."""
    store = tmp_path / "store"
    said = []
    outcome = harness.submit(TINY, store=store, num_cpus=2, say=said.append)
    trials = expand(load_spec(TINY))
    assert outcome.ok and sorted(outcome.ran) == sorted(t.key for t in trials) and outcome.already_done == 0
    assert said == [f"tiny: {len(trials)} trials, 0 already done, {len(trials)} to run"]
    for trial in trials:  # what crossed the door is the plan's config, unchanged
        assert json.loads((Store(store).trial_dir(trial.key) / "trial.json").read_text())["config"] == (
            trial.config.model_dump(mode="json")
        )
    again = harness.submit(TINY, store=store, say=lambda line: None)
    assert again.ok and again.ran == [] and again.already_done == len(trials)

    bad = tmp_path / "bad.yaml"
    content = yaml.safe_load(TINY.read_text())
    content["hyperparameters"]["adapter"] = {"epochs": -1}
    bad.write_text(yaml.safe_dump(content))

    with pytest.raises(SpecError, match="hyperparameters.adapter.epochs: must be a whole number ≥ 1"):
        harness.submit(bad, store=store)


def test_the_loop_trains_in_train_mode_after_a_mid_epoch_evaluation(cache_dir):
    """Dropout stays on for the rest of an epoch after an evaluation every N steps (it was off until the next
    epoch before CORE_VERSION 2)."""
    from scalearn import HeadConfig, load_encoder, load_tokenizer
    from scalearn.data import tokenized_task
    from scalearn.tasks import get_task
    from scalearn.train import fit

    encoder = load_encoder("tiny-bert")
    model = get_method("adapter").build(encoder, HeadConfig("classification", 32, 2))
    data = tokenized_task(get_task("syn_a"), load_tokenizer("tiny-bert"), few_shot_k=64, cache_dir=cache_dir)
    modes = []

    def callback(event, payload):
        if event == "step":
            modes.append(model.training)

    config = get_method("adapter", epochs=1, batch_size=8, eval_every_steps=2, log_every_steps=1).loop_config()
    result = fit(model, get_task("syn_a"), data, config, callback=callback)
    assert result.steps == 8 and [row["step"] for row in result.history] == [2, 4, 6, 8]
    assert modes == [True] * 8


def test_the_dev_cap_cuts_only_the_dev_split_and_enters_keys_only_when_set(tmp_path):
    """data.max_dev_examples (the paper's few-shot runs select on at most 5,000 dev rows, docs/method.md §4.5)."""
    from harness.plan import expand
    from harness.spec import load_spec
    from scalearn.backbones import load_tokenizer
    from scalearn.data import tokenized_task
    from scalearn.tasks import get_task

    tokenizer = load_tokenizer("tiny-bert")
    whole = tokenized_task(get_task("syn_a"), tokenizer, few_shot_k=64, cache_dir=tmp_path)
    capped = tokenized_task(get_task("syn_a"), tokenizer, few_shot_k=64, cache_dir=tmp_path, max_dev=100)
    assert len(whole.splits["dev"]) == 256 and len(capped.splits["dev"]) == 100
    assert capped.splits["dev"]["input_ids"] == whole.splits["dev"]["input_ids"][:100]  # the first rows
    assert len(capped.splits["test"]) == len(whole.splits["test"]) and capped.key != whole.key

    method, task, model, key = PINNED_KEY
    assert trial_key(create_config(method, task, model=model, max_dev_examples=None), ()) == key
    assert trial_key(create_config(method, task, model=model, max_dev_examples=100), ()) != key
    experiment = tmp_path / "capped.yaml"
    text = "version: 1\nmodels: [tiny-bert]\nmethods: [adapter]\nbenchmark: synthetic\ntargets: [syn_a]\n"
    experiment.write_text(text + "data: {max_dev_examples: 100}\n")
    (trial,) = expand(load_spec(experiment))
    assert trial.config.data.max_dev_examples == 100


def test_lora_targets_enter_the_key_only_when_not_the_default():
    default = create_config("lora", "syn_a", model="tiny-llama")
    said = create_config("lora", "syn_a", model="tiny-llama", overrides={"targets": ["query", "value"]})
    wider = create_config("lora", "syn_a", model="tiny-llama", overrides={"targets": ["query", "value", "ffn_up"]})
    assert "targets" not in key_fields(default)["method_config"]
    assert trial_key(said, ()) == trial_key(default, ())
    assert trial_key(wider, ()) != trial_key(default, ())
    with pytest.raises(ValueError, match="targets"):
        create_config("lora", "syn_a", model="tiny-llama", overrides={"targets": ["nowhere"]})
