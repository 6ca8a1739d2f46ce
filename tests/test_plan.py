"""Content keys: stable for the same trial, different for any change to what a trial computes."""

import json
import subprocess
import sys

import pytest

import scalearn
from harness.plan import expand
from harness.spec import ExperimentSpec

BASE = dict(
    version=1,
    models=["tiny-bert"],
    methods=["adapter", "scalearn"],
    benchmark="synthetic",
    targets=["syn_a_low"],
    sources=["syn_a", "syn_b", "syn_a_low"],
    seeds=2,
    hyperparameters={"all": {"epochs": 1}},
)


def keys(**changes):
    spec = ExperimentSpec.model_validate({**BASE, **changes})
    return {(t.stage, t.method, t.task, t.seed): t.key for t in expand(spec)}


def test_keys_are_stable_across_processes():
    here = keys()
    code = (
        "from harness.plan import expand; from harness.spec import ExperimentSpec; import json; "
        f"s = ExperimentSpec.model_validate(json.loads({json.dumps(BASE)!r})); "
        "print(json.dumps(sorted(t.key for t in expand(s))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert sorted(here.values()) == json.loads(out)


@pytest.mark.parametrize(
    "change",
    [
        {"models": ["tiny-roberta"]},
        {"hyperparameters": {"all": {"epochs": 2}}},
        {"hyperparameters": {"all": {"epochs": 1, "learning_rate": 0.1}}},
        {"hyperparameters": {"all": {"epochs": 1, "batch_size": 16}}},
        {"hyperparameters": {"all": {"epochs": 1, "precision": "bf16"}}},
        {"hyperparameters": {"all": {"epochs": 1, "engine": "deepspeed"}}},
        {"hyperparameters": {"all": {"epochs": 1, "patience": 2}}},
        {"hyperparameters": {"all": {"epochs": 1}, "scalearn": {"omega_dropout": 0.1}}},
        {"data": {"max_length": 64}},
        {"data": {"few_shot": 16}},
        {"source_seed": 1},
    ],
)
def test_every_config_field_changes_the_keys_it_touches(change):
    before, after = keys(), keys(**change)
    transfer = (2, "scalearn", "syn_a_low", 0)
    assert before[transfer] != after[transfer], change  # a transfer trial sees changes to itself or its sources


def test_a_method_only_change_keeps_the_other_methods_keys():
    before, after = keys(), keys(hyperparameters={"all": {"epochs": 1}, "scalearn": {"omega_dropout": 0.1}})
    assert before[(1, "adapter", "syn_a", 0)] == after[(1, "adapter", "syn_a", 0)]  # sources reused
    assert before[(2, "scalearn", "syn_a_low", 1)] != after[(2, "scalearn", "syn_a_low", 1)]


def test_source_set_and_order_are_part_of_the_key():
    before = keys()
    fewer = keys(sources=["syn_a", "syn_a_low"])
    reordered = keys(sources=["syn_b", "syn_a", "syn_a_low"])
    transfer = (2, "scalearn", "syn_a_low", 0)
    assert len({before[transfer], fewer[transfer], reordered[transfer]}) == 3


def test_core_version_is_part_of_the_key(monkeypatch):
    before = keys()
    monkeypatch.setattr(scalearn, "CORE_VERSION", scalearn.CORE_VERSION + 1)
    assert set(keys().values()).isdisjoint(before.values())


def test_resources_and_retries_do_not_change_keys():
    assert keys() == keys(resources={"cpus": 2}, retries=5)


def test_adding_a_seed_adds_only_new_trials():
    before, after = keys(), keys(seeds=3)
    assert set(before.values()) < set(after.values())
    new = {k for k, v in after.items() if v not in before.values()}
    assert new == {(1, "adapter", "syn_a_low", 2), (2, "scalearn", "syn_a_low", 2)}


def test_seed_zero_adapter_baseline_is_the_source_adapter():
    trials = expand(ExperimentSpec.model_validate(BASE))
    adapters = [t for t in trials if t.method == "adapter" and t.task == "syn_a_low" and t.seed == 0]
    assert len(adapters) == 1
    assert all(adapters[0].key in t.depends_on for t in trials if t.stage == 2)


def test_data_sample_keys_only_the_trials_it_changes():
    """`data.sample: spread` re-keys the trials whose rows it picks (the 100-shot targets and their own source
    adapter); the full-data sources keep their keys, and the default keeps every key as it was."""
    from pathlib import Path

    from harness.spec import load_spec

    spec = load_spec(Path(__file__).resolve().parent.parent / "experiments" / "offline-study.yaml")
    as_was = {t.key: t for t in expand(spec)}

    def sampled(sample):
        changed = spec.model_copy(update={"data": spec.data.model_copy(update={"sample": sample})})
        return {t.key: t for t in expand(changed)}

    assert set(sampled("first")) == set(as_was)
    spread = sampled("spread")
    kept = {key for key in spread if key in as_was}
    assert kept and all(as_was[key].config.data.few_shot is None for key in kept)
    assert all(t.config.data.sample == "spread" for t in spread.values() if t.config.data.few_shot)
