"""One trial on several processes (GPUs on a cluster, CPU ranks here) through Ray Train's TorchTrainer.

Ray starts the ranks and their process group (gloo on CPUs, NCCL on GPUs); each rank runs the same
``train_task`` (or ``train_joint``) with the DeepSpeed engine, which shards every global batch over the
ranks. Rank 0 saves and reports. The global batch stays ``batch_size``, so N ranks train on the same
batches as one.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path


def _worker(config: dict) -> None:
    import ray.train

    from scalearn.run import train_joint, train_task

    result_path = Path(config.pop("result_path"))
    result, _ = (train_joint if config.pop("joint") else train_task)(**config)
    if ray.train.get_context().get_world_rank() == 0:
        result_path.write_text(json.dumps(result.to_dict(), default=str))


def train_task_distributed(num_workers: int, use_gpu: bool = False, storage_path: str | None = None, **kwargs):
    """``train_task(**kwargs)`` on ``num_workers`` ranks (engine deepspeed); returns rank 0's result dict.

    The ranks must share a filesystem with the caller (the result comes back as a file; on a cluster,
    ``storage_path`` and the output folder live on the shared store)."""
    return _on_ranks(num_workers, use_gpu, storage_path, {**kwargs, "joint": False})


def train_joint_distributed(num_workers: int, use_gpu: bool = False, storage_path: str | None = None, **kwargs):
    """``train_joint(**kwargs)`` (a joint multi-task run) on ``num_workers`` ranks, as train_task_distributed."""
    return _on_ranks(num_workers, use_gpu, storage_path, {**kwargs, "joint": True})


def _on_ranks(num_workers: int, use_gpu: bool, storage_path: str | None, kwargs: dict) -> dict:
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    storage = Path(storage_path or tempfile.mkdtemp(prefix="scalearn-ray-"))
    if kwargs.get("engine", "deepspeed") != "deepspeed":  # the torch engine never averages gradients across ranks
        raise ValueError(f"engine {kwargs['engine']}: training on several ranks needs engine deepspeed")
    config = {"engine": "deepspeed", **{k: (str(v) if isinstance(v, Path) else v) for k, v in kwargs.items()}}
    if config.get("sources"):
        config["sources"] = [str(s) for s in config["sources"]]
    config["result_path"] = str(storage / "result.json")
    trainer = TorchTrainer(
        _worker,
        train_loop_config=config,
        scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=use_gpu),
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        run_config=RunConfig(storage_path=str(storage)),
    )
    outcome = trainer.fit()
    if outcome.error is not None:
        raise outcome.error
    return json.loads((storage / "result.json").read_text())
