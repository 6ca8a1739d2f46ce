"""One typed result for every run: a single-task run's result has the shape of a joint run's, an old store's
results read in the current shape (migrated on read), and the store reads each result once."""

import json
from pathlib import Path

import pytest

from harness.plan import task_results
from harness.store import Store
from scalearn.result import RESULT_VERSION, TrialResult, read, upgrade
from scalearn.run import train_joint, train_task

VERSION_1_SINGLE = {  # as a single-task trial wrote it before the result had a version
    "task": "rte",
    "best_dev": {"loss": 0.61, "accuracy": 0.66},
    "test": {"loss": 0.63, "accuracy": 0.64},
    "history": [{"epoch": 0, "step": 7, "dev_loss": 0.61, "dev_accuracy": 0.66}],
    "best_step": 7,
    "trial": {"key": "k1"},
    "finished_at": 1.0,
}
VERSION_1_JOINT = {
    "task": "joint",
    "best_dev": {"loss": 0.5, "score": 0.7},
    "test": {"rte/accuracy": 0.64, "cb/f1": 0.8},
    "tasks": {
        "rte": {"metric": "accuracy", "best_dev": {"accuracy": 0.6}, "test": {"accuracy": 0.64}},
        "cb": {"metric": "f1", "best_dev": {"f1": 0.7}, "test": {"f1": 0.8}},
    },
}


def test_an_old_single_task_result_reads_as_a_joint_run_of_one_task():
    upgraded = upgrade(VERSION_1_SINGLE)
    assert upgraded["version"] == RESULT_VERSION and "version" not in VERSION_1_SINGLE  # the record is not changed
    assert upgraded["tasks"] == {
        "rte": {"metric": "accuracy", "best_dev": VERSION_1_SINGLE["best_dev"], "test": VERSION_1_SINGLE["test"]}
    }
    assert upgrade(VERSION_1_JOINT)["tasks"] == VERSION_1_JOINT["tasks"]  # a joint one had it already
    imported = upgrade({"task": "rte", "imported": {"format": "adapterhub"}, "steps": 0})
    assert "tasks" not in imported or imported["tasks"] == {}  # nothing trained, nothing scored
    current = read(upgrade(VERSION_1_SINGLE))
    assert upgrade(current) is current  # the current version comes back as it is
    assert current["trial"] == {"key": "k1"} and current["finished_at"] == 1.0  # the harness's keys pass through
    assert task_results(current) == [("rte", current["tasks"]["rte"])]


def test_a_result_that_does_not_fit_the_schema_is_refused():
    with pytest.raises(ValueError, match="best_step"):
        read({**VERSION_1_SINGLE, "best_step": "seven"})
    with pytest.raises(ValueError, match="metric"):
        read({**VERSION_1_JOINT, "tasks": {"rte": {"test": {}, "best_dev": {}}}})


def test_the_store_migrates_on_read_and_reads_each_result_once(tmp_path):
    store = Store(tmp_path / "store")
    store.write_result("k1", VERSION_1_SINGLE)
    first = store.result("k1")
    assert first["tasks"]["rte"]["test"] == {"loss": 0.63, "accuracy": 0.64}
    on_disk = json.loads((store.trial_dir("k1") / "result.json").read_text())
    assert "version" not in on_disk  # migrated on read, never rewritten
    (store.trial_dir("k1") / "result.json").write_text("{}")  # a second read would see this
    assert store.result("k1") is first
    assert Store(tmp_path / "store").result("k1")["tasks"] == {}  # a new reader reads the file again


def test_single_task_and_joint_runs_give_one_shape(tmp_path):
    common = {"model": "tiny-bow", "seed": 0, "max_steps": 4, "eval_every_steps": 2, "batch_size": 16}
    single, _ = train_task("syn_a", method="adapter", output_dir=tmp_path / "single", **common)
    joint, _ = train_joint(["syn_a", "syn_b"], method="adapter_m", name="pair", **common)
    for result in (single, joint):
        assert isinstance(result, TrialResult) and result.version == RESULT_VERSION
        for scores in result.tasks.values():
            assert set(scores) == {"metric", "best_dev", "test"} and "loss" in scores["test"]
    assert list(single.tasks) == ["syn_a"] and single.tasks["syn_a"]["test"] == single.test
    assert single.tasks["syn_a"]["best_dev"] == single.best_dev
    assert list(joint.tasks) == ["syn_a", "syn_b"]
    assert joint.test["syn_b/loss"] == joint.tasks["syn_b"]["test"]["loss"]
    written = json.loads((tmp_path / "single" / "result.json").read_text())  # the core alone still writes it
    assert read(written)["tasks"] == json.loads(json.dumps(single.tasks))


def test_a_run_whose_best_evaluation_was_its_last_ended_still_improving():
    from scalearn.result import ended_improving

    history = [{"epoch": 0, "step": 7}, {"epoch": 1, "step": 14}, {"epoch": 2, "step": 21}]
    assert ended_improving({"history": history, "best_step": 21})
    assert not ended_improving({"history": history, "best_step": 14})  # dev turned before the end
    assert not ended_improving({"history": history[:1], "best_step": 7})  # one evaluation says nothing
    assert not ended_improving({"steps": 0, "imported": {}})  # an imported adapter never trained here


def test_a_trial_whose_dev_loss_is_not_below_a_constants_learned_nothing():
    from scalearn.result import learned_nothing

    single = {"task": "vader_tweets", "best_dev": {"loss": 2.6588}, "constant_dev_loss": {"vader_tweets": 2.6502}}
    assert learned_nothing(single) == ["vader_tweets"]  # MPNet's ScaLearn behind a diverged source, in the study
    assert learned_nothing({**single, "best_dev": {"loss": 0.4024}}) == []  # its adapter
    joint = {
        "task": "joint",
        "tasks": {"a": {"best_dev": {"loss": 0.70}}, "b": {"best_dev": {"loss": 0.20}}},
        "constant_dev_loss": {"a": 0.69, "b": 0.69},
    }
    assert learned_nothing(joint) == ["a"]
    assert learned_nothing({"task": "x", "best_dev": {"loss": 9.0}}) == []  # recorded before the floor was


def test_a_groups_description_counts_epochs_from_1_and_marks_a_seed_still_improving():
    from harness.plan import expand
    from harness.spec import load_spec
    from harness.tracking.summaries import group_summary

    spec = load_spec(Path(__file__).resolve().parent.parent / "experiments" / "tiny.yaml")
    seeds = [t for t in expand(spec) if t.method == "scalearn"][:2]
    history = [{"epoch": 0, "step": 3}, {"epoch": 1, "step": 6}]
    results = {
        seeds[0].key: {**VERSION_1_SINGLE, "history": history, "best_step": 6, "best_epoch": 1},
        seeds[1].key: {**VERSION_1_SINGLE, "history": history, "best_step": 3, "best_epoch": 0},
    }
    _, lines = group_summary(seeds, results)
    rows = [line for line in lines if line.startswith(f"| {seeds[0].seed}") or line.startswith(f"| {seeds[1].seed}")]
    assert rows[0].startswith(f"| {seeds[0].seed} ↑ | 6 | 2 |") and rows[1].startswith(f"| {seeds[1].seed} | 3 | 1 |")
    assert any(line.startswith(f"↑ seed {seeds[0].seed}: the best evaluation was the last one") for line in lines)
