"""Figures of a sweep: where ScaLearn puts its weight, where AdapterFusion attends, and how training went.

- ω of one trial (``omega_figure``): heatmap of layers × sources (for vector ω the mean over dimensions,
  beside it the spread), and per layer Σ_s ω and the weight on the target's own adapter (the last source).
- AdapterFusion's mean attention per layer and source, when the trial recorded it (``attention.json``).
- Across targets (``summary_figure``): for each (method, target) the share of the total |ω| (or attention)
  each source gets, averaged over layers and seeds: which sources each target leans on.
- Learning curves (``curves_figure``): dev metric per epoch, one line per method (mean over seeds).

Everything is read from a trial's artifacts (safetensors, read as numpy, never unpickled) and written as
PNG with matplotlib's Agg backend, atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.plan import finals
from scalearn.atomic import atomic_write
from scalearn.layout import read_mixing
from scalearn.tasks import get_task

OWN = "(own)"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: Path) -> Path:
    """PNG at 110 dpi. A figure laid out when it was made (``layout="constrained"``) is drawn once; any other
    is cropped to what it holds (a second pass)."""
    crop = None if figure.get_layout_engine() is not None else "tight"
    try:
        atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=110, bbox_inches=crop))
    finally:
        _pyplot().close(figure)
    return path


def source_labels(source_tasks: list[str], target: str) -> list[str]:
    """Source names for axes; the target's own adapter (last, as the paper orders them) is marked."""
    return [
        f"{task} {OWN}" if task == target and i == len(source_tasks) - 1 else task
        for i, task in enumerate(source_tasks)
    ]


def layer_source_matrix(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[L', S, d'] → (mean over d', sd over d') as [L', S] each (sd zero for scalar ω)."""
    return weights.mean(-1), weights.std(-1) if weights.shape[-1] > 1 else np.zeros(weights.shape[:2])


CENTRED_SPAN = 0.25
"""A heatmap centred on a value shows at least ±25% of it: a ±1% drift from where ω started stays pale."""


def centred_limits(matrix: np.ndarray, centre: float) -> tuple[float, float]:
    """Colour limits symmetric about ``centre``: the largest distance from it, or CENTRED_SPAN of it if larger."""
    finite = matrix[np.isfinite(matrix)]
    reach = float(np.max(np.abs(finite - centre))) if finite.size else 0.0
    span = max(reach, CENTRED_SPAN * abs(centre) or CENTRED_SPAN)
    return centre - span, centre + span


def _heatmap(axis, matrix, rows: list[str], columns: list[str], title: str, label: str, centre=None, limits=None):
    """``centre``: where the weights started (or a uniform share); a diverging scale about it, so the colour says
    which way and how far each weight moved. Otherwise viridis over ``limits``, or over the values' own range."""
    if centre is None:
        low, high = limits or (None, None)
        image = axis.imshow(matrix, aspect="auto", cmap="viridis", vmin=low, vmax=high)
        text_colour = "white"
    else:
        low, high = centred_limits(matrix, centre)
        image = axis.imshow(matrix, aspect="auto", cmap="RdBu_r", vmin=low, vmax=high)
        text_colour = None  # dark on the pale middle of the scale, light on its deep ends
    axis.set_xticks(range(len(columns)), columns, rotation=35, ha="right")
    axis.set_yticks(range(len(rows)), rows)
    axis.set_xlabel("source adapter")
    axis.set_ylabel("layer")
    axis.set_title(title)
    if matrix.size <= 200:
        finite = matrix[np.isfinite(matrix)]
        digits = 3 if finite.size and np.ptp(finite) < 0.05 else 2  # small differences still readable
        for (i, j), value in np.ndenumerate(matrix):
            colour = text_colour or ("white" if abs(value - centre) > 0.6 * (high - centre) else "black")
            axis.text(j, i, f"{value:.{digits}f}", ha="center", va="center", fontsize=7, color=colour)
    axis.figure.colorbar(image, ax=axis, label=label)
    return image


def mixing_figure(mixing: dict, source_tasks: list[str], target: str, title: str):
    """The per-trial figure (not saved): heatmap(s) of the mixing weights and their per-layer sums."""
    plt = _pyplot()
    mean, spread = layer_source_matrix(mixing["weights"])
    labels = source_labels(source_tasks, target)
    layers = ["all (shared)"] if mixing["shared"] else [str(i) for i in range(mean.shape[0])]
    is_vector = mixing["kind"] == "omega" and mixing["weights"].shape[-1] > 1
    what = "ω" if mixing["kind"] == "omega" else "attention"
    panels = 3 if is_vector else 2
    size = (4.2 * panels + 1, 0.45 * len(layers) + 2.8)
    figure, axes = plt.subplots(1, panels, figsize=size, layout="constrained")  # laid out once, as it is drawn
    label = f"{what} (centred on its start, {mixing['initial']:.3g})" if "initial" in mixing else what
    title_0 = f"{what}: mean over dimensions" if is_vector else what
    _heatmap(axes[0], mean, layers, labels, title_0, label, centre=mixing.get("initial"))
    if is_vector:  # from 0, on the same reach as the mean's scale: a spread of 1% of ω stays dark
        reach = centred_limits(mean, mixing["initial"])[1] - mixing["initial"] if "initial" in mixing else None
        limits = (0.0, max(float(np.nanmax(spread)), reach)) if reach is not None else None
        _heatmap(axes[1], spread, layers, labels, "ω: sd over dimensions", "sd", limits=limits)
    axis = axes[-1]
    x = np.arange(len(layers))
    axis.plot(x, mean.sum(1), marker="o", label=f"Σ_s {what}")
    axis.plot(x, mean[:, -1], marker="s", label=f"{what} on the target's own adapter")
    axis.set_xticks(x, layers)
    axis.set_xlabel("layer")
    axis.set_ylabel(what)
    axis.set_title("per layer")
    axis.legend(fontsize=8)
    figure.suptitle(title)
    return figure


def omega_figure(mixing: dict, source_tasks: list[str], target: str, title: str, path: str | Path) -> Path:
    """`mixing_figure`, saved as PNG."""
    return _save(mixing_figure(mixing, source_tasks, target, title), Path(path))


def mixing_record(mixing: dict, source_tasks: list[str], target: str) -> dict:
    """What the mixing figure shows, as numbers (omega.json beside omega.png): per layer × source the mean and
    sd over dimensions, per layer the sum over sources and the weight on the target's own adapter."""
    mean, spread = layer_source_matrix(mixing["weights"])
    return {
        "kind": mixing["kind"],
        "shared": mixing["shared"],
        "initial": mixing.get("initial"),
        "sources": source_labels(source_tasks, target),
        "mean": mean.round(6).tolist(),
        "sd": spread.round(6).tolist(),
        "sum_over_sources": mean.sum(1).round(6).tolist(),
        "own": mean[:, -1].round(6).tolist(),
    }


def source_shares(mixing: dict) -> np.ndarray:
    """[S]: each source's share of the total |weight|, averaged over layers (sums to 1)."""
    mean, _ = layer_source_matrix(np.abs(mixing["weights"]))
    per_layer = mean / np.clip(mean.sum(1, keepdims=True), 1e-12, None)
    return per_layer.mean(0)


def mixing_moved(mixing: dict) -> float | None:
    """How far the mixing moved from where it started: the mean over layers, sources and dimensions of
    |weight − start|, over the start (0: untouched; 1: moved by as much as it started at). None without a start."""
    initial = mixing.get("initial")
    if not initial:
        return None
    return float(np.mean(np.abs(np.asarray(mixing["weights"]) - initial)) / abs(initial))


def summary_figure(shares: dict[str, np.ndarray], source_names: list[str], title: str, path: str | Path) -> Path:
    """Rows "method · target", columns sources (own adapter last): which sources each target leans on."""
    plt = _pyplot()
    rows = list(shares)
    matrix = np.stack([shares[row] for row in rows])
    figure, axis = plt.subplots(figsize=(1.2 * len(source_names) + 3, 0.5 * len(rows) + 2.5))
    uniform = 1.0 / len(source_names)  # every source weighted alike
    _heatmap(axis, matrix, rows, source_names, title, f"share of |weight| (centred on 1/S = {uniform:.3g})", uniform)
    axis.set_ylabel("method · target")
    return _save(figure, Path(path))


def curves_figure(
    curves: dict[str, dict[int, list[float]]], metric: str, title: str, path: str | Path, x_label: str = "epoch"
) -> Path:
    """``curves``: method → epoch (or step) → the seeds' dev values; a line per method (mean), a band for min–max."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 4))
    for method, by_epoch in curves.items():
        epochs = sorted(by_epoch)
        values = [by_epoch[e] for e in epochs]
        axis.plot(epochs, [np.mean(v) for v in values], marker="o", label=method)
        axis.fill_between(epochs, [min(v) for v in values], [max(v) for v in values], alpha=0.15)
    axis.set_xlabel(x_label)
    axis.set_ylabel(f"dev {metric}")
    axis.set_title(title)
    axis.legend(fontsize=8)
    return _save(figure, Path(path))


def dev_curves(groups: dict[str, list], store, metric: str) -> tuple[dict[str, dict[int, list[float]]], str]:
    """Method → x → its seeds' dev ``metric`` values, and x: "epoch", or "step" when any trial evaluates within
    epochs (by epoch, an epoch's evaluations would merge into one point)."""
    x = "step" if any(t.config.loop.eval_every_steps for group in groups.values() for t in group) else "epoch"
    curves: dict[str, dict[int, list[float]]] = {}
    for method, group in groups.items():
        for trial in group:
            for row in store.result(trial.key).get("history", []):
                if f"dev_{metric}" in row:
                    curves.setdefault(method, {}).setdefault(int(row[x]), []).append(row[f"dev_{metric}"])
    return curves, x


def report_figures(
    trials, store, targets: list[str], out_dir: str | Path, few_shot: int | None = None
) -> dict[str, list[Path]]:
    """The figures of `harness report --out`: for each model, the ω / attention summary across targets and
    each (method, target)'s seed-averaged mixing; for each target, the learning curves per method (the joint
    methods apart, by training step).

    Returns {"sweep": [...], "<stage2 group>": [...]} — the MLflow run each figure belongs on: the sweep's
    report run, or the parent run of that (stage, method, task, model)."""

    trials = finals(trials, few_shot)  # in a few-shot sweep (``few_shot``: its k), a target's k-shot trials alone
    out = Path(out_dir) / "figures"
    grouped: dict[tuple, list] = {}
    for trial in trials:
        if trial.task in targets and store.is_done(trial.key):
            grouped.setdefault((trial.model, trial.method, trial.task), []).append(trial)
    figures: dict[str, list[Path]] = {"sweep": []}
    shares: dict[str, dict[str, np.ndarray]] = {}
    names: dict[str, list[str]] = {}
    row_sources: dict[tuple[str, str], list[str]] = {}
    for (model, method, task), group in grouped.items():
        transfers = [t for t in group if t.depends_on]
        for trial in transfers:  # a remote store's checkpoints, downloaded once
            store.pull(trial.key)
        mixings = [m for m in (read_mixing(store.model_dir(t.key)) for t in transfers) if m is not None]
        if not mixings:
            continue
        sources = list(group[0].source_tasks)
        mean = {
            "kind": mixings[0]["kind"],
            "shared": mixings[0]["shared"],
            "weights": np.mean([m["weights"] for m in mixings], axis=0),
            **({"initial": mixings[0]["initial"]} if "initial" in mixings[0] else {}),
        }
        title = f"{method} · {task} · {model} · mean of {len(mixings)} seed(s)"
        path = omega_figure(mean, sources, task, title, out / f"mixing_{model}_{method}_{task}.png")
        figures.setdefault(f"stage{group[0].stage}/{method}/{task}/{model}", []).append(path)
        figures["sweep"].append(path)
        own = [s if s != task else OWN for s in sources[:-1]] + [OWN]
        shares.setdefault(model, {})[f"{method} · {task}"] = np.mean([source_shares(m) for m in mixings], axis=0)
        row_sources[(model, f"{method} · {task}")] = own
        known = names.setdefault(model, [])
        known.extend(n for n in own if n not in known)
    for model, rows in shares.items():
        # sources may differ per target (its own adapter): align on names, the own adapter last
        columns = [n for n in names[model] if n != OWN] + [OWN]
        aligned = {}
        for label, share in rows.items():
            by_name = dict(zip(row_sources[(model, label)], share, strict=True))
            aligned[label] = np.array([by_name.get(c, np.nan) for c in columns])
        title = f"which sources each target leans on · {model}"
        figures["sweep"].append(summary_figure(aligned, columns, title, out / f"omega_summary_{model}.png"))
    for model in sorted({m for m, _, _ in grouped}):
        for task in targets:
            metric = get_task(task).metric
            mine = {method: g for (m, method, t), g in grouped.items() if m == model and t == task}
            curves, x = dev_curves(mine, store, metric)
            if curves:
                path = out / f"curves_{model}_{task}.png"
                figures["sweep"].append(curves_figure(curves, metric, f"{task} · {model}", path, x_label=x))
    joint: dict[tuple[str, str], dict[str, dict[int, list[float]]]] = {}
    for trial in trials:
        if not trial.joint or not store.is_done(trial.key):
            continue
        for row in store.result(trial.key).get("history", []):
            for task in targets:
                value = row.get(f"dev_{task}/{get_task(task).metric}")
                if value is not None:
                    by_step = joint.setdefault((trial.model, task), {}).setdefault(trial.method, {})
                    by_step.setdefault(int(row["step"]), []).append(value)
    for (model, task), curves in sorted(joint.items()):
        path = out / f"curves_joint_{model}_{task}.png"
        title = f"{task} · {model} · joint methods"
        figures["sweep"].append(curves_figure(curves, get_task(task).metric, title, path, x_label="training step"))
    return figures
