"""THE door between the harness and the science: run one planned trial through scalearn.

The only module of harness/ that imports scalearn's training code. It hands the trial's typed
``TrialConfig`` unchanged to ``scalearn.run.run``, with the source adapters of the trials it consumes,
writes the artifacts under the trial's folder (with a figure of the learned mixing for transfer trials),
and returns the result; the caller records it in the store.
"""

from __future__ import annotations

import time
import warnings

from harness.plan import Trial
from harness.plots import mixing_record, omega_figure
from harness.store import Store
from scalearn.atomic import write_json
from scalearn.layout import read_mixing


def train(
    trial: Trial,
    sources=None,
    *,
    output_dir=None,
    data_dir=None,
    cache_dir=None,
    callback=None,
    device=None,
    write_result=True,
    checkpoint_dir=None,
    pause_at=None,
    checkpoint_every=1,
    **loop,
):
    """Train ``trial`` from its config (``loop``: loop settings on top, e.g. a probe's logging); (result, model).
    ``checkpoint_dir``, ``checkpoint_every`` and ``pause_at``: where and how often it checkpoints, and successive
    halving's rung (`scalearn.train.fit`)."""
    from scalearn.run import run  # torch: only in the worker that trains

    config = trial.config.with_loop(**loop) if loop else trial.config
    options = {"data_dir": data_dir, "cache_dir": cache_dir, "callback": callback, "device": device}
    options.update(checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every, pause_at=pause_at)
    return run(config, sources, output_dir, write_result=write_result, **options)


def run_trial(trial: Trial, store: Store, *, data_dir=None, cache_dir=None, callback=None) -> dict:
    """Train ``trial``; returns its result dict (also written by the caller as the trial's result.json)."""
    if trial.imported is not None:
        return install(trial, store)
    sources = [store.adapter_dir(key) for key in trial.depends_on] or None
    options = {"data_dir": data_dir, "cache_dir": cache_dir, "callback": callback}
    checkpoint = store.checkpoint_dir(trial.key)
    # each evaluation checkpoints (or each `checkpoint_every`-th): a trial stopped midway (Ctrl-C, a dead node)
    # goes on from its last one, on the same curve; successive halving's rung trials go on from where they
    # paused, to their rung's pause or end
    if trial.config.loop.engine == "torch" or trial.rung is not None:
        options.update(checkpoint_dir=checkpoint, checkpoint_every=trial.checkpoint_every)
    if trial.rung is not None:
        options.update(pause_at=trial.budget if trial.budget < 1 else None)
        store.pull_checkpoint(trial.key)  # paused on another node of a remote store: go on from there
    # the result is stored once, by the caller, as the trial's result.json (not again among the artifacts)
    result, _ = train(trial, sources, output_dir=store.artifacts_dir(trial.key), write_result=False, **options)
    if result.paused_at is not None:  # the caller stores it as the trial's record at this rung
        return {"trial": trial.summary(), "paused": True, "rung": trial.rung, "share": trial.budget, **result.to_dict()}
    # its checkpoint stays until the caller has stored the result (`Store.write_result` removes it then)
    if trial.depends_on:
        plot_mixing(trial, store.model_dir(trial.key))
    record = {"trial": trial.summary(), **result.to_dict()}
    origins = {key: store.result(key).get("imported") for key in trial.depends_on if store.is_done(key)}
    if any(origins.values()):  # where each source came from: trained in this store, or given from outside
        record["source_origins"] = [origins.get(key) or {"trial": key} for key in trial.depends_on]
    return record


CHECKS = ("constant_dev_loss", "source_scales", "adapter_scale")
"""What a trial records about whether it learned anything, and `harness measure` adds to one recorded before."""


def remeasure_trial(trial: Trial, store: Store, *, data_dir=None, cache_dir=None) -> dict:
    """The `CHECKS` that ``trial``'s record lacks, measured from its config and stored artifacts
    (`scalearn.run.remeasure`): what it would have recorded had it run with this code. Nothing for an imported
    source (it trained elsewhere)."""
    from scalearn.run import remeasure  # torch: only where a trial is measured

    if trial.imported is not None:
        return {}
    record = store.result(trial.key)
    sources = [store.adapter_dir(key) for key in trial.depends_on] or None
    found = remeasure(trial.config, sources, store.model_dir(trial.key), data_dir=data_dir, cache_dir=cache_dir)
    return {name: value for name, value in found.items() if value and not record.get(name)}


def install(trial: Trial, store: Store) -> dict:
    """An import trial: the external source adapter becomes the trial's stage-1 artifact; nothing trains."""

    from scalearn.interop.sources import install_source  # torch: only for an import trial

    start = time.perf_counter()
    provenance = install_source(trial.imported, trial.config.model, store.adapter_dir(trial.key), trial.task)
    return {
        "trial": trial.summary(),
        "task": trial.task,
        "imported": provenance,
        "steps": 0,
        "wall_seconds": time.perf_counter() - start,
        "provenance": {"source_adapter": provenance},
    }


def plot_mixing(trial: Trial, model_dir) -> None:
    """omega.png and omega.json (ScaLearn) or attention.png (AdapterFusion, beside its attention.json) by the
    checkpoint; MLflow logs them with the run. A figure that cannot be drawn is reported, never a reason to lose
    a trained trial."""
    try:
        mixing = read_mixing(model_dir)
        if mixing is not None:
            name = "omega.png" if mixing["kind"] == "omega" else "attention.png"
            title = f"{trial.method} · {trial.task} · seed {trial.seed} · {trial.model}"
            omega_figure(mixing, list(trial.source_tasks), trial.task, title, model_dir / name)
            if mixing["kind"] == "omega":  # AdapterFusion's numbers are its attention.json already
                write_json(model_dir / "omega.json", mixing_record(mixing, list(trial.source_tasks), trial.task))
    except Exception as error:  # noqa: BLE001 — a figure is never worth a trial
        warnings.warn(f"{model_dir}: no mixing figure ({error})", stacklevel=2)
