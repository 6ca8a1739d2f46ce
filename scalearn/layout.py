"""The files of an artifact folder, named once, and the torch-free reader of what analysis needs from them.

    adapter folder   adapter.safetensors + adapter.json (the manifest, written last)
    model folder     head.safetensors, transfer.safetensors, adapter.safetensors, tuner.safetensors,
                     encoder.safetensors (what the method trained), attention.json (AdapterFusion's attention
                     recorded on the test split) + model.json (the manifest, written last)

``scalearn.io`` writes and loads these (with torch); ``read_mixing`` reads the learned mixing of a transfer
trial with numpy alone, for figures and reports.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1
ADAPTER_WEIGHTS, ADAPTER_MANIFEST = "adapter.safetensors", "adapter.json"
MODEL_MANIFEST = "model.json"
TRANSFER_WEIGHTS = "transfer.safetensors"
TUNER_WEIGHTS = "tuner.safetensors"
ATTENTION = "attention.json"
LAST_CHECKPOINT, CHECKPOINT_MANIFEST = "last", "checkpoint.json"  # a run's resumable state: <dir>/last/checkpoint.json
LIVE_PROGRESS = "progress.json"  # how far a run got at its last evaluation, checkpointed or not: <dir>/progress.json


def read_progress(checkpoint_dir: str | Path) -> dict | None:
    """How far a run got by its last checkpoint (``scalearn.train.fit``'s RunState: step, evaluations, best,
    history, …), read without torch; None before its first evaluation, or while a new checkpoint replaces it."""
    try:
        meta = json.loads((Path(checkpoint_dir) / LAST_CHECKPOINT / CHECKPOINT_MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return meta.get("progress")


def read_live_progress(checkpoint_dir: str | Path) -> dict | None:
    """How far a running run got at its last evaluation, whether or not that evaluation wrote a checkpoint
    (``checkpoint_every``): {"step", "evaluations", "best", "evaluation_time", "checkpointed_at" (the evaluations
    its last checkpoint holds; None: none yet)}. None before its first evaluation."""
    try:
        return json.loads((Path(checkpoint_dir) / LIVE_PROGRESS).read_text())
    except (OSError, ValueError):
        return None


def read_mixing(model_dir: str | Path) -> dict | None:
    """The learned mixing of a transfer trial: {"kind", "weights" [L', S, d'], "shared", "initial" (the value every
    weight starts near)}; None if it has none.

    ScaLearn: ω from transfer.safetensors ([1, S, ·] for the layer-shared ++ variants). ScaLearn over LoRA
    sources: the ω of each adapted projection from tuner.safetensors, side by side along the last axis
    ([L', S, d'_query + d'_value …]). AdapterFusion: the recorded mean attention [L, S, 1] from attention.json."""
    from safetensors.numpy import load_file

    model_dir = Path(model_dir)
    manifest_path = model_dir / MODEL_MANIFEST
    if not manifest_path.exists():
        return None
    transfer = json.loads(manifest_path.read_text()).get("transfer") or {}
    if transfer.get("kind") == "scalearn" and (model_dir / TRANSFER_WEIGHTS).exists():
        omega = load_file(str(model_dir / TRANSFER_WEIGHTS))["omega"].astype(np.float64)
        sources = omega.shape[1]
        initial = float(transfer.get("init_scale", 2.0)) / sources  # ω starts at init_scale / S (§1.3)
        return {"kind": "omega", "weights": omega, "shared": bool(transfer.get("shared")), "initial": initial}
    tuner = json.loads(manifest_path.read_text()).get("tuner") or {}
    if str(tuner.get("kind", "")).startswith("scalearn_lora") and (model_dir / TUNER_WEIGHTS).exists():
        weights = load_file(str(model_dir / TUNER_WEIGHTS))
        omega = np.concatenate([weights[f"{t}_omega"].astype(np.float64) for t in tuner["targets"]], axis=-1)
        initial = float(tuner.get("init_scale", 2.0)) / omega.shape[1]
        return {"kind": "omega", "weights": omega, "shared": bool(tuner.get("shared")), "initial": initial}
    if (model_dir / ATTENTION).exists():
        attention = np.asarray(json.loads((model_dir / ATTENTION).read_text())["mean_attention"])
        initial = 1.0 / attention.shape[1]  # V = I and near-equal scores at the start: uniform attention
        return {"kind": "attention", "weights": attention[..., None], "shared": False, "initial": initial}
    return None
