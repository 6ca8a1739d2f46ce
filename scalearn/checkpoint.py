"""The state a run carries: trainable tensors (gathered under ZeRO-3), and resumable checkpoints.

A checkpoint holds what training changed and nothing it loaded: trainable parameters, the best state so
far, the optimizer's moments, the schedule, the RNG states and the run's progress. Tensors go to
safetensors, the rest to JSON; a checkpoint folder is written aside and renamed over the last one.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from scalearn.layout import CHECKPOINT_MANIFEST
from scalearn.model import TransferModel


def trainable_state(model: TransferModel, engine=None) -> dict[str, torch.Tensor]:
    """Everything training changes: trainable parameters (gathered whole under ZeRO-3) and the transfer
    layer's buffers."""
    parameters = model.trainable_parameters()
    with engine.gathered(parameters.values()) if engine is not None else contextlib.nullcontext():
        state = {name: p.detach().clone() for name, p in parameters.items()}
    if model.transfer is not None:
        state.update({f"transfer.{n}": b.detach().clone() for n, b in model.transfer.named_buffers()})
    return state


@torch.no_grad()
def load_trainable_state(model: TransferModel, state: dict[str, torch.Tensor], engine=None) -> None:
    own = dict(model.named_parameters()) | dict(model.named_buffers())
    targets = [own[name] for name in state if isinstance(own[name], torch.nn.Parameter)]
    with engine.gathered(targets, modify=True) if engine is not None else contextlib.nullcontext():
        for name, tensor in state.items():
            own[name].copy_(tensor)


# -- checkpoints for resuming -----------------------------------------------------------------------


def _flatten_optimizer(optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{index}.{key}"] = value
            else:
                scalars[f"{index}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict, meta: dict) -> dict:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    for name, value in meta["scalars"].items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(directory: Path, model, optimizer, scheduler, progress: dict, best_state) -> None:
    """Write a resumable checkpoint atomically (temp folder, then rename over the old one)."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}."))
    optimizer_tensors, optimizer_meta = _flatten_optimizer(optimizer)
    np_state = np.random.get_state()
    tensors = {
        **{f"model.{k}": v for k, v in trainable_state(model).items()},
        **{f"best.{k}": v for k, v in (best_state or {}).items()},
        **optimizer_tensors,
        "rng.torch": torch.get_rng_state(),
        "rng.numpy": torch.from_numpy(np_state[1].astype(np.int64)),
    }
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(staging / "state.safetensors"))
    meta = {
        "progress": progress,
        "optimizer": optimizer_meta,
        "scheduler": scheduler.state_dict(),
        "rng_python": random.getstate()[1],
        "rng_numpy": [np_state[0], int(np_state[2]), int(np_state[3]), float(np_state[4])],
    }
    (staging / CHECKPOINT_MANIFEST).write_text(json.dumps(meta, default=str))
    old = directory.with_name(f".{directory.name}.old")
    if directory.exists():
        os.rename(directory, old)
    os.rename(staging, directory)
    shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(directory: Path, model, optimizer, scheduler) -> tuple[dict, dict | None]:
    meta = json.loads((directory / CHECKPOINT_MANIFEST).read_text())
    tensors = load_file(str(directory / "state.safetensors"))
    load_trainable_state(model, {k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")} or None
    optimizer.load_state_dict(_unflatten_optimizer(tensors, meta["optimizer"]))
    scheduler.load_state_dict(meta["scheduler"])
    torch.set_rng_state(tensors["rng.torch"])
    kind, pos, has_gauss, gauss = meta["rng_numpy"]
    np.random.set_state((kind, tensors["rng.numpy"].numpy().astype(np.uint32), pos, has_gauss, gauss))
    random.setstate((3, tuple(meta["rng_python"]), None))
    return meta["progress"], best
