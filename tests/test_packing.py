"""GPU packing: the fit arithmetic, trial kinds, a real probe's peak memory (kept in the store), and a
packed trial that runs out of memory retried alone on a whole device. Ray runs with one *logical* GPU
(Ray's GPUs are bookkeeping, which is the point of measuring), so this runs without one."""

import json
import os

import pytest

from harness.packing import gpu_fraction, is_out_of_memory, kind_of, measure_kinds, per_device, probe_path
from harness.plan import expand
from harness.scheduler import run_trials
from harness.spec import ExperimentSpec
from harness.store import Store

SPEC = dict(
    version=1,
    models=["tiny-bert"],
    methods=["adapter", "scalearn"],
    benchmark="synthetic",
    targets=["syn_a_low"],
    sources=["syn_a", "syn_a_low"],
    seeds=2,
    hyperparameters={"all": {"epochs": 1, "max_steps": 3, "batch_size": 8}},
)


def test_how_many_fit_on_a_device():
    device = 80 * 1024
    assert per_device(10_000, device) == 6  # ⌊(81920 − 1536) / (10000 × 1.15)⌋
    assert per_device(10_000, device, margin=0.0) == 8
    assert per_device(90_000, device) == 1  # never less than one: too big means a device of its own
    assert per_device(100, device) == 8  # capped: compute, not memory, limits tiny trials
    for count in range(1, 9):
        assert count * gpu_fraction(count) <= 1.0 and gpu_fraction(count) > 1 / count - 1e-4
    assert is_out_of_memory("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB")
    assert not is_out_of_memory("RuntimeError: boom")


def test_kinds_group_what_shares_a_memory_footprint():
    trials = expand(ExperimentSpec.model_validate(SPEC))
    transfer = [t for t in trials if t.method == "scalearn"]
    assert len({kind_of(t) for t in transfer}) == 1  # seeds differ, memory does not
    adapters = [t for t in trials if t.method == "adapter"]
    assert kind_of(adapters[0]) != kind_of(transfer[0])
    bigger = dict(SPEC, hyperparameters={"all": {"epochs": 1, "max_steps": 3, "batch_size": 16}})
    other = [t for t in expand(ExperimentSpec.model_validate(bigger)) if t.method == "scalearn"][0]
    assert kind_of(other) != kind_of(transfer[0])
    # what else decides memory: a bf16 backbone (half its weights), the evaluation batch, the method's own sizes
    for setting in ({"backbone_dtype": "bf16", "precision": "bf16"}, {"eval_batch_size": 256}, {"shape": "scalar"}):
        changed = dict(SPEC, hyperparameters={"all": {"epochs": 1, "max_steps": 3, "batch_size": 8, **setting}})
        other = [t for t in expand(ExperimentSpec.model_validate(changed)) if t.method == "scalearn"][0]
        assert kind_of(other) != kind_of(transfer[0]), setting


@pytest.fixture(scope="module")
def ray_one_gpu():
    from conftest import local_ray

    return local_ray(num_cpus=2, num_gpus=1)


def test_a_probe_measures_once_and_is_kept_in_the_store(ray_one_gpu, tmp_path):
    trials = expand(ExperimentSpec.model_validate(SPEC))
    store = Store(tmp_path / "store")
    stage1 = [t for t in trials if t.stage == 1 and t.task == "syn_a_low"]  # one kind (a task is part of it)
    peaks = measure_kinds(stage1, store)
    assert set(peaks) == {kind_of(stage1[0])} and peaks[kind_of(stage1[0])] > 50  # MB: a real process's peak
    path = probe_path(store, kind_of(stage1[0]))
    record = json.loads(path.read_text())
    assert record["steps"] == 2 and record["device"] == "cpu"
    before = path.stat().st_mtime_ns
    assert measure_kinds(stage1, store) == peaks and path.stat().st_mtime_ns == before  # not probed again
    transfer = [t for t in trials if t.stage == 2]
    assert measure_kinds(transfer, store) == {}  # its sources are not trained yet: nothing to probe


def test_a_packed_trial_out_of_memory_is_retried_alone_on_a_whole_gpu(ray_one_gpu, tmp_path):
    trials = expand(ExperimentSpec.model_validate(SPEC))
    store = Store(tmp_path / "store")
    victim = next(t for t in trials if t.method == "scalearn")

    def body(trial, store, **_):
        import ray

        gpu = ray.get_runtime_context().get_assigned_resources().get("GPU", 0)
        if trial.key == victim.key and gpu < 1:
            raise RuntimeError("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.00 GiB")
        return {"trial": trial.summary(), "test": {}, "gpu": gpu, "worker": os.getpid()}

    packed = {t.key: 0.25 for t in trials}
    outcome = run_trials(
        trials, store, resources={"cpus": 0.25, "gpus": 0.25}, retries=0, options={"body": body}, trial_gpus=packed
    )
    assert outcome.retried_alone == [victim.key] and not outcome.failed
    assert store.result(victim.key)["gpu"] == 1.0 and store.failure(victim.key) is None
    assert all(store.result(t.key)["gpu"] == 0.25 for t in trials if t.key != victim.key)
    # each GPU trial in a worker of its own: a reused one would keep its first device's CUDA context and memory
    workers = [store.result(t.key)["worker"] for t in trials]
    assert len(set(workers)) == len(workers)
