"""THE door between the harness and the science: run one planned trial through scalearn.

The only module of harness/ that imports scalearn's training code. Given a trial and the store, it
trains (``scalearn.run.train_task``) with the source adapters of the trials it consumes, writes the
artifacts under the trial's folder, and returns the result; the caller records it in the store.
"""

from __future__ import annotations

from harness.plan import Trial
from harness.store import Store


def run_trial(trial: Trial, store: Store, *, data_dir=None, cache_dir=None, callback=None) -> dict:
    """Train ``trial``; returns its result dict (also written by the caller as the trial's result.json)."""
    from scalearn.run import train_task

    config = trial.config
    overrides = {**config["method_config"], **config["train"]}
    overrides.pop("seed", None)
    sources = [store.trial_dir(key) / "artifacts" / "adapter" for key in trial.depends_on] or None
    result, _ = train_task(
        trial.task,
        method=trial.method,
        model=trial.model,
        seed=trial.seed,
        sources=sources,
        output_dir=store.trial_dir(trial.key) / "artifacts",
        few_shot_k=config["data"]["few_shot"],
        max_length=config["data"]["max_length"],
        data_dir=data_dir,
        cache_dir=cache_dir,
        callback=callback,
        **overrides,
    )
    return {"trial": trial.summary(), **result.to_dict()}
