"""THE door between the harness and the science: run one planned trial through scalearn.

The only module of harness/ that imports scalearn's training code. Given a trial and the store, it
trains (``scalearn.run.train_task``; ``train_joint`` for a joint trial) with the source adapters of the
trials it consumes, writes the artifacts under the trial's folder (with a figure of the learned mixing for
transfer trials), and returns the result; the caller records it in the store.
"""

from __future__ import annotations

from harness.plan import Trial
from harness.store import Store


def train(
    trial: Trial, sources=None, *, output_dir=None, data_dir=None, cache_dir=None, callback=None, device=None, **extra
):
    """Train ``trial`` from its resolved config (``extra``: loop settings on top); (result, model)."""
    from scalearn.run import train_joint, train_task

    config = trial.config
    overrides = {**config["method_config"], **config["train"], **extra}
    overrides.pop("seed", None)
    common = {
        "method": trial.method,
        "model": trial.model,
        "seed": trial.seed,
        "output_dir": output_dir,
        "few_shot_k": config["data"]["few_shot"],
        "max_length": config["data"]["max_length"],
        "data_dir": data_dir,
        "cache_dir": cache_dir,
        "callback": callback,
        "device": device,
    }
    if trial.joint:
        return train_joint(list(trial.tasks), name=trial.task, **common, **overrides)
    return train_task(trial.task, sources=sources, **common, **overrides)


def run_trial(trial: Trial, store: Store, *, data_dir=None, cache_dir=None, callback=None) -> dict:
    """Train ``trial``; returns its result dict (also written by the caller as the trial's result.json)."""
    sources = [store.trial_dir(key) / "artifacts" / "adapter" for key in trial.depends_on] or None
    result, _ = train(
        trial,
        sources,
        output_dir=store.trial_dir(trial.key) / "artifacts",
        data_dir=data_dir,
        cache_dir=cache_dir,
        callback=callback,
    )
    if trial.depends_on:
        plot_mixing(trial, store.trial_dir(trial.key) / "artifacts" / "model")
    return {"trial": trial.summary(), **result.to_dict()}


def plot_mixing(trial: Trial, model_dir) -> None:
    """omega.png (ScaLearn) or attention.png (AdapterFusion) beside the checkpoint; MLflow logs it with the
    run. A figure that cannot be drawn is reported, never a reason to lose a trained trial."""
    import warnings

    from harness.plots import omega_figure, read_mixing

    try:
        mixing = read_mixing(model_dir)
        if mixing is not None:
            name = "omega.png" if mixing["kind"] == "omega" else "attention.png"
            title = f"{trial.method} · {trial.task} · seed {trial.seed} · {trial.model}"
            omega_figure(mixing, list(trial.source_tasks), trial.task, title, model_dir / name)
    except Exception as error:  # noqa: BLE001 — a figure is never worth a trial
        warnings.warn(f"{model_dir}: no mixing figure ({error})", stacklevel=2)
