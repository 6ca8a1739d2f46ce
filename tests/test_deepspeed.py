"""DeepSpeed in place of the optimizer step, on the CPU over gloo: ZeRO-2 and ZeRO-3 train, save whole
tensors (not the empty shards of PEFT #1328) and reload; one rank matches the plain torch engine."""

import pytest
import torch
from conftest import local_ray
from safetensors.torch import load_file

from scalearn import HeadConfig, get_method, load_encoder
from scalearn.io import load_adapter, load_model_state, load_source_bank
from scalearn.run import train_task

pytest.importorskip("deepspeed")
TINY = "tiny-bert"


def run(cache_dir, **kw):
    kw = {
        "task": "syn_a",
        "model": TINY,
        "seed": 0,
        "batch_size": 8,
        "epochs": 1,
        "max_steps": 6,
        "cache_dir": cache_dir,
        **kw,
    }
    return train_task(**kw)


@pytest.mark.slow
@pytest.mark.parametrize("stage", [2, 3])
def test_zero_trains_saves_whole_tensors_and_matches_torch(stage, cache_dir, sources, tmp_path):
    # ZeRO-3 persistence threshold 0: every parameter is really partitioned, even tiny ones
    zero = {"engine": "deepspeed", "zero_stage": stage, "zero3_persistence_threshold": 0}
    torch_run, torch_model = run(cache_dir, method="scalearn_pp", sources=sources, learning_rate=0.05)
    ds_run, _ = run(
        cache_dir, method="scalearn_pp", sources=sources, learning_rate=0.05, output_dir=tmp_path / "pp", **zero
    )
    assert ds_run.losses == pytest.approx(torch_run.losses, abs=1e-5)
    assert ds_run.parameters == torch_run.parameters  # counted whole (ZeRO-3 had them at 0)
    saved = load_file(tmp_path / "pp" / "model" / "transfer.safetensors")
    assert saved["omega"].shape == (1, 3, 32)
    torch.testing.assert_close(saved["omega"], torch_model.transfer.omega.detach(), atol=1e-5, rtol=1e-5)
    # reload into a fresh model: ω and head come back, the test score is reproduced
    fresh = get_method("scalearn_pp").build(
        load_encoder(TINY), HeadConfig("classification", 32, 2), load_source_bank(sources)
    )
    load_model_state(tmp_path / "pp" / "model", fresh)
    torch.testing.assert_close(fresh.transfer.omega, saved["omega"])

    if stage == 3:  # AdapterFusion's value regulariser read W_V after the forward, where ZeRO-3 had released it
        fusion_ds, _ = run(cache_dir, method="adapterfusion", sources=sources, learning_rate=5e-3, **zero)
        fusion_torch, _ = run(cache_dir, method="adapterfusion", sources=sources, learning_rate=5e-3)
        assert fusion_ds.losses == pytest.approx(fusion_torch.losses, abs=1e-5)

    adapter_run, _ = run(cache_dir, method="adapter", learning_rate=1e-2, output_dir=tmp_path / "a", **zero)
    config, tensors, _ = load_adapter(tmp_path / "a" / "adapter")
    assert tensors["down.weight"].shape == (2, config.bottleneck, 32) and tensors["up.weight"].abs().sum() > 0
    torch_adapter, torch_adapter_model = run(cache_dir, method="adapter", learning_rate=1e-2)
    assert adapter_run.losses == pytest.approx(torch_adapter.losses, abs=1e-5)
    if stage == 2:  # the optimizer offloaded to the CPU: DeepSpeed refused our AdamW there
        offloaded, _ = run(cache_dir, method="adapter", learning_rate=1e-2, offload_optimizer=True, **zero)
        assert offloaded.losses == pytest.approx(torch_adapter.losses, abs=1e-5)
    torch.testing.assert_close(
        tensors["up.weight"], torch_adapter_model.adapters.adapter_state(0)["up.weight"], atol=1e-5, rtol=1e-4
    )


@pytest.mark.slow
def test_an_uneven_accumulation_takes_the_torch_engines_steps(cache_dir):
    """3 micro-batches an epoch, 2 a step: the epoch's last micro-batch steps alone (its flush), on DeepSpeed as
    on torch, so both take the schedule's 2 steps an epoch (DeepSpeed's own counter would step across epochs: 3)."""
    common = dict(method="adapter", learning_rate=1e-2, few_shot_k=24, gradient_accumulation=2, epochs=2)
    torch_run, _ = run(cache_dir, max_steps=None, **common)
    ds_run, _ = run(cache_dir, max_steps=None, engine="deepspeed", zero_stage=2, **common)
    assert torch_run.steps == ds_run.steps == 4
    assert ds_run.losses == pytest.approx(torch_run.losses, abs=1e-5)


@pytest.mark.slow
def test_two_ranks_through_ray_train_equal_one_rank(cache_dir, tmp_path):
    """2 CPU ranks (Ray Train TorchTrainer, gloo, DeepSpeed ZeRO-2), global batch 8 = 2 × 4, against one
    plain-torch rank with batch 8. No dropout anywhere, so the two runs see the same computation."""
    from scalearn.distributed import train_task_distributed

    common = dict(
        task="syn_a",
        method="adapter",
        model="tiny-bert-nodropout",
        seed=0,
        batch_size=8,
        epochs=1,
        max_steps=6,
        learning_rate=0.01,
        cache_dir=cache_dir,
    )
    with pytest.raises(ValueError, match="engine torch: training on several ranks needs engine deepspeed"):
        train_task_distributed(2, engine="torch", **common)  # it would train each rank alone, silently
    local_ray()
    two = train_task_distributed(2, storage_path=str(tmp_path / "ray"), output_dir=tmp_path / "two", **common)
    one, one_model = train_task(**common)
    assert two["provenance"]["world_size"] == 2 and two["provenance"]["engine"] == "deepspeed"
    assert two["losses"] == pytest.approx(one.losses, abs=1e-5)  # the global batch's loss, step by step
    assert two["test"]["loss"] == pytest.approx(one.test["loss"], abs=1e-5)
    _, tensors, _ = load_adapter(tmp_path / "two" / "adapter")
    torch.testing.assert_close(
        tensors["up.weight"], one_model.adapters.adapter_state(0)["up.weight"], atol=1e-5, rtol=1e-4
    )


@pytest.mark.slow
def test_joint_run_matches_torch_under_zero_2(cache_dir):
    """Other tasks' heads step on zero gradients in both engines, so a joint run is the same under ZeRO-2."""
    from scalearn.run import train_joint

    settings = {
        "method": "adapter_m",
        "model": "tiny-bow",
        "max_steps": 6,
        "eval_every_steps": 3,
        "batch_size": 8,
        "cache_dir": cache_dir,
    }
    torch_run, _ = train_joint(["syn_a", "syn_b"], **settings)
    ds_run, _ = train_joint(["syn_a", "syn_b"], engine="deepspeed", zero_stage=2, **settings)
    assert ds_run.losses == pytest.approx(torch_run.losses, abs=1e-5)
    assert ds_run.test["syn_b/loss"] == pytest.approx(torch_run.test["syn_b/loss"], abs=1e-5)
    with pytest.raises(ValueError, match="ZeRO stages 0-2"):
        train_joint(["syn_a", "syn_b"], engine="deepspeed", zero_stage=3, **settings)


@pytest.mark.slow
def test_joint_run_on_two_ranks_equals_one_rank(cache_dir, tmp_path):
    """A joint run on 2 CPU ranks (Ray Train, DeepSpeed ZeRO-2): each task's batch split over the ranks gives the
    losses of one plain-torch rank (tiny-bow has no dropout)."""
    from scalearn.distributed import train_joint_distributed
    from scalearn.run import train_joint

    common = dict(
        tasks=["syn_a", "syn_b"],
        method="adapter_m",
        model="tiny-bow",
        seed=0,
        batch_size=8,
        max_steps=6,
        eval_every_steps=3,
        learning_rate=0.01,
        cache_dir=cache_dir,
    )
    local_ray()
    two = train_joint_distributed(2, storage_path=str(tmp_path / "ray"), **common)
    one, _ = train_joint(**common)
    assert two["provenance"]["world_size"] == 2 and set(two["tasks"]) == {"syn_a", "syn_b"}
    assert two["losses"] == pytest.approx(one.losses, abs=1e-5)
    assert two["test"]["syn_b/loss"] == pytest.approx(one.test["syn_b/loss"], abs=1e-5)


@pytest.mark.parametrize("chosen", [True, False], ids=["TORCH_EXTENSIONS_DIR", "torch's cache"])
def test_a_build_lock_left_by_a_killed_build_is_removed_and_a_live_one_kept(chosen, tmp_path, monkeypatch):
    """torch waits with no end on a JIT build's lock: one left over would hang every DeepSpeed run."""
    import os
    import time

    from scalearn.engines import STALE_BUILD_LOCK_SECONDS, clear_stale_build_locks

    if chosen:  # torch builds in $TORCH_EXTENSIONS_DIR/<op>
        monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
        root = tmp_path
    else:  # else in its cache, under a folder named for the Python and CUDA versions
        monkeypatch.delenv("TORCH_EXTENSIONS_DIR", raising=False)
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
        root = tmp_path / "torch_extensions/py311_cpu"
    left, live = root / "deepspeed_shm_comm/lock", root / "deepspeed_other/lock"
    for lock in (left, live):
        lock.parent.mkdir(parents=True)
        lock.touch()
    old = time.time() - STALE_BUILD_LOCK_SECONDS - 60
    os.utime(left, (old, old))
    assert clear_stale_build_locks() == [left]
    assert not left.exists() and live.exists()
