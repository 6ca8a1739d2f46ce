"""GPU packing: how many trials of one kind share a device, decided from their measured peak memory.

Ray's GPU fractions are bookkeeping only: `num_gpus=0.25` lets four tasks onto a device whether they fit or
not. So with ``resources: {gpus: auto, device_memory_gb: 80}`` the harness measures first:

1. trials are grouped into *kinds*: what sets their memory (model, method, batch size, maximum length,
   precision, engine, source count);
2. a short **probe** of each kind (two optimiser steps, no evaluation, in a fresh worker on a whole device)
   records its peak memory, once: probes are kept in the store (``probes/<kind>.json``);
3. the packer puts ``k = ⌊(device − reserve) / (peak × (1 + margin))⌋`` trials of that kind on a device
   (at least 1, at most ``max_per_device``): Ray fraction 1/k;
4. a trial that still runs out of memory is retried alone on a whole device (`run_trials`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math

from harness.plan import Trial
from harness.store import Store, write_json
from harness.trial import train

MEMORY_KEYS = (
    "batch_size",
    "eval_batch_size",
    "precision",
    "backbone_dtype",
    "engine",
    "zero_stage",
    "offload_optimizer",
    "gradient_checkpointing",
    "gradient_accumulation",
)


def kind_of(trial: Trial) -> str:
    """What decides a trial's memory, hashed: trials of one kind pack the same way. The task too: batches are
    padded to their longest row, so a task of long texts (or of several choices) takes more than one of short."""
    loop = trial.config.loop
    parts = {
        "model": trial.model,
        "method": trial.method,
        "method_config": trial.config.method_config,
        "task": trial.config.tasks or trial.config.task,
        "sources": len(trial.depends_on),
        "max_length": trial.config.data.max_length,
        **{k: getattr(loop, k) for k in MEMORY_KEYS},
    }
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"{trial.model}-{trial.method}-{digest}"


def per_device(
    peak_mb: float, device_mb: float, margin: float = 0.15, reserve_mb: float = 1536.0, max_per_device: int = 8
) -> int:
    """Trials of peak ``peak_mb`` that fit on one device, with a safety margin and the CUDA context reserved."""
    fits = math.floor((device_mb - reserve_mb) / (peak_mb * (1 + margin))) if peak_mb > 0 else max_per_device
    return max(1, min(max_per_device, fits))


def gpu_fraction(count: int) -> float:
    """Ray's fraction for ``count`` trials per device (rounded down to Ray's 1e-4 granularity, so k fit)."""
    return math.floor(10_000 / count) / 10_000


def probe_path(store: Store, kind: str):
    return store.root / "probes" / f"{kind}.json"


class _Enough(Exception):
    """Raised from the training callback once the probe has its steps."""


PROBE_STEPS = 2


def probe_body(trial: Trial, store: Store, *, data_dir=None, cache_dir=None) -> dict:
    """Two optimiser steps of ``trial``'s kind, then stop (nothing evaluated or saved): its peak memory, on
    the GPU when there is one, else the process's peak resident memory."""
    from scalearn.provenance import peak_memory_mb, reset_peak_memory  # torch: only in a probe's worker
    from scalearn.train import default_device

    device = default_device().type
    reset_peak_memory(device)
    for key in trial.depends_on:  # a remote store's source adapters, downloaded to this machine once
        store.pull(key)
    sources = [store.adapter_dir(key) for key in trial.depends_on] or None

    def stop(event: str, data: dict) -> None:
        if event == "step" and data["step"] >= PROBE_STEPS:
            raise _Enough

    with contextlib.suppress(_Enough):
        train(trial, sources, data_dir=data_dir, cache_dir=cache_dir, callback=stop, device=device, log_every_steps=1)
    if device == "cuda":  # what the allocator holds, fragmentation included, is what another process cannot have
        import torch

        return {"peak_mb": torch.cuda.max_memory_reserved() / 2**20, "device": device, "steps": PROBE_STEPS}
    return {"peak_mb": peak_memory_mb(device), "device": device, "steps": PROBE_STEPS}


def measure_kinds(trials: list[Trial], store: Store, options: dict | None = None) -> dict[str, float]:
    """Peak memory (MB) per kind among ``trials``: from the store, else probed on Ray (a whole GPU each, a
    fresh worker process each, so a peak is the probe's own). Probes of a kind run after its sources."""
    import ray

    options = options or {}
    peaks, todo = {}, {}
    for trial in trials:
        kind = kind_of(trial)
        path = probe_path(store, kind)
        if path.exists():
            peaks[kind] = json.loads(path.read_text())["peak_mb"]
        elif kind not in todo and all(store.is_done(k) for k in trial.depends_on):
            todo[kind] = trial
    gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    remote = ray.remote(num_gpus=gpus, max_calls=1)(_probe_task)  # a fresh worker: the peak is the probe's
    refs = {kind: remote.remote(trial, store.location, options) for kind, trial in todo.items()}
    for kind, ref in refs.items():
        measured = ray.get(ref)
        write_json(probe_path(store, kind), {"kind": kind, "trial": todo[kind].summary(), **measured})
        peaks[kind] = measured["peak_mb"]
    return peaks


def _probe_task(trial: Trial, store_location: str, options: dict) -> dict:
    store = Store(store_location)
    return probe_body(trial, store, data_dir=options.get("data_dir"), cache_dir=options.get("cache_dir"))


def trial_gpus(trials: list[Trial], peaks: dict[str, float], device_mb: float, margin: float) -> dict[str, float]:
    """Trial key → Ray GPU fraction; kinds without a probe yet (their sources unfinished) get a whole device."""
    out = {}
    for trial in trials:
        peak = peaks.get(kind_of(trial))
        out[trial.key] = 1.0 if peak is None else gpu_fraction(per_device(peak, device_mb, margin))
    return out


def is_out_of_memory(reason: str) -> bool:
    text = reason.lower()
    return "out of memory" in text or "outofmemoryerror" in text
