"""The state a run carries: trainable tensors (gathered under ZeRO-3), and resumable checkpoints.

A checkpoint holds what training changed and nothing it loaded: trainable parameters, the best state so
far, the optimizer's moments, the schedule, the RNG states and the run's progress. Tensors go to
safetensors, the rest to JSON; a checkpoint folder is written aside and renamed over the last one.
"""

from __future__ import annotations

import contextlib
import json
import logging
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

logger = logging.getLogger(__name__)


def trainable_state(model: TransferModel, engine=None) -> dict[str, torch.Tensor]:
    """Everything training changes: trainable parameters (gathered whole under ZeRO-3) and the transfer
    layer's buffers, copied to the CPU (a best state kept on a GPU would hold a second copy of full fine-tuning's
    weights there)."""
    parameters = model.trainable_parameters()
    with engine.gathered(parameters.values()) if engine is not None else contextlib.nullcontext():
        state = {name: p.detach().to("cpu", copy=True) for name, p in parameters.items()}
    if model.transfer is not None:
        state.update({f"transfer.{n}": b.detach().to("cpu", copy=True) for n, b in model.transfer.named_buffers()})
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


def save_checkpoint(directory: Path, model, optimizer, scheduler, progress: dict, best_state, scaler=None) -> None:
    """Write a resumable checkpoint atomically: into a staging folder, then renamed over the old one (moved
    aside under a name of its own, then removed). Leftovers of a save that was killed are cleared first."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    for leftover in directory.parent.glob(f".{directory.name}.*"):  # a killed save's staging or old folder
        shutil.rmtree(leftover, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}."))
    try:
        _write_checkpoint(staging, model, optimizer, scheduler, progress, best_state, scaler)
        old = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.old."))
        if directory.exists():
            os.replace(directory, old)  # an empty folder is replaced
        os.rename(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)  # what stays (a file still open on NFS) goes at the next save


def _write_checkpoint(folder: Path, model, optimizer, scheduler, progress: dict, best_state, scaler) -> None:
    optimizer_tensors, optimizer_meta = _flatten_optimizer(optimizer)
    np_state = np.random.get_state()
    python_state = random.getstate()
    tensors = {
        **{f"model.{k}": v for k, v in trainable_state(model).items()},
        **{f"best.{k}": v for k, v in (best_state or {}).items()},
        **optimizer_tensors,
        "rng.torch": torch.get_rng_state(),
        "rng.numpy": torch.from_numpy(np_state[1].astype(np.int64)),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():  # dropout on a GPU draws from its own generator
        tensors.update({f"rng.cuda.{i}": state for i, state in enumerate(torch.cuda.get_rng_state_all())})
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(folder / "state.safetensors"))
    meta = {
        "progress": progress,
        "optimizer": optimizer_meta,
        "scheduler": scheduler.state_dict(),
        "rng_python": python_state[1],
        "rng_python_gauss": python_state[2],
        "rng_numpy": [np_state[0], int(np_state[2]), int(np_state[3]), float(np_state[4])],
    }
    if scaler is not None:  # fp16's loss scale and its growth count: a resumed run skips the steps this one would
        meta["scaler"] = scaler.state_dict()
    (folder / CHECKPOINT_MANIFEST).write_text(json.dumps(meta, default=str))


def read_checkpoint(directory: Path) -> tuple[dict, dict[str, torch.Tensor]] | None:
    """The checkpoint a run goes on from: ``directory``, or the one a save killed between its two renames left
    aside. None when there is none, or none that reads whole (a kill while it was being removed): the run
    then starts again, with a warning, rather than failing at every retry."""
    candidates = [directory, *sorted(directory.parent.glob(f".{directory.name}.old.*"))]
    for folder in candidates:
        if not (folder / CHECKPOINT_MANIFEST).exists():
            continue
        try:
            meta = json.loads((folder / CHECKPOINT_MANIFEST).read_text())
            # copies: a memory-mapped file stays open as long as its tensors live (on NFS its folder could not go)
            tensors = {k: v.clone() for k, v in load_file(str(folder / "state.safetensors")).items()}
            if "rng.torch" not in tensors or not {"progress", "optimizer", "scheduler"} <= meta.keys():
                raise ValueError("incomplete")
        except Exception as error:  # noqa: BLE001 - any unreadable checkpoint is one to start again without
            logger.warning("%s: checkpoint unreadable (%s); the run starts again", folder, error)
            continue
        return meta, tensors
    return None


def restore_checkpoint(saved, model, optimizer, scheduler, scaler=None) -> tuple[dict, dict | None]:
    """Put a read checkpoint's state back: the run's progress and its best state so far."""
    meta, tensors = saved
    load_trainable_state(model, {k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")} or None
    optimizer.load_state_dict(_unflatten_optimizer(tensors, meta["optimizer"]))
    scheduler.load_state_dict(meta["scheduler"])
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[f"rng.cuda.{i}"] for i in range(sum(k.startswith("rng.cuda.") for k in tensors))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])
    kind, pos, has_gauss, gauss = meta["rng_numpy"]
    np.random.set_state((kind, tensors["rng.numpy"].numpy().astype(np.uint32), pos, has_gauss, gauss))
    random.setstate((3, tuple(meta["rng_python"]), meta.get("rng_python_gauss")))
    if scaler is not None and "scaler" in meta:
        scaler.load_state_dict(meta["scaler"])
    return meta["progress"], best
