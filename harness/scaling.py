"""The scaling report of a sweep over several backbones: score against backbone size, score against trainable
transfer parameters (Pareto), and what each model × method cost.

- ``scaling_<experiment>.png``: test score (mean ± sd over seeds) against the backbone's parameters (log
  scale; the backbone as trained here: no pooler, no LM head), a colour per method, its encoders joined by a
  solid line and its decoders by a dashed one (never an encoder to a decoder); one panel for the average over
  the targets, one per target.
- ``cost_<experiment>.png``: per backbone, a bar per method for the training step, the inference time per example
  (a transfer model runs every source there) and the peak memory, from the trials' records (log scale).
- ``pareto_<experiment>.png``: the average test score against the trainable transfer parameters per target
  (log scale, the paper's count: head excluded), one point per model × method, and the frontier of the
  points no other point beats with fewer parameters.
- The cost table (``scaling.md``, ``.tex``, ``.csv``, ``.json``): per model × method, from the trials'
  records — trials, median wall time and seconds per optimizer step, total wall hours, device hours
  (wall time × processes, on the device the trials ran on) and peak memory; for a mixing method, how far its
  learned mixing moved from its start (ScaLearn's ω, AdapterFusion's attention: `harness.plots.mixing_moved`).

Scores are the report's (test ×100, harness/report/); the average of a seed is its mean over the targets,
so its sd is the spread of the seeds' averages, and only seeds with a score on every target count.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness import stats
from harness.plan import Trial, finals, trained_record
from harness.plots import _pyplot, _save, mixing_moved
from harness.report.model import MISSING, Report
from harness.report.render import latex_escape
from harness.store import Store
from scalearn.atomic import atomic_write
from scalearn.layout import read_mixing

AVERAGE = "Avg"


@dataclass
class Point:
    """One model × method: its scores and what it cost."""

    model: str
    method: str
    size: int
    """Backbone parameters."""
    transfer_parameters: int | None
    scores: dict[str, dict[int, float]]
    """Target (and AVERAGE) → seed → test score ×100."""
    cost: dict = field(default_factory=dict)
    moved: float | None = None
    """The mean relative move of the learned mixing from its start over the final seeds and targets (None: no
    mixing)."""
    earlier: str | None = None
    """The folder of the earlier report this point was read from (`harness report --earlier`); None: this store."""

    def summary(self, task: str) -> stats.Summary | None:
        values = list(self.scores.get(task, {}).values())
        return stats.summarize(values) if values else None


def scaling_points(report: Report, trials: list[Trial], store: Store) -> list[Point]:
    """A point per model × method of the report's tables, largest backbones last."""
    from scalearn.params import backbone_size  # torch (meta device): only for a scaling report

    points = []
    for table in report.tables:
        size = backbone_size(table.model)["parameters"]
        for row in table.rows:
            scores = {task: dict(cell.scores) for task, cell in row.cells.items() if cell.scores}
            seeds = set.intersection(*(set(s) for s in scores.values())) if len(scores) == len(row.cells) else set()
            if seeds:
                scores[AVERAGE] = {seed: statistics.fmean(scores[t][seed] for t in row.cells) for seed in sorted(seeds)}
            mine = [t for t in trials if t.model == table.model and t.method == row.method]
            cost = trial_cost(mine, store, targets=set(row.cells), few_shot=report.few_shot)
            point = Point(table.model, row.method, size, row.transfer_parameters, scores, cost)
            point.moved = mixing_moved_of([t for t in mine if t.task in row.cells], store)
            points.append(point)
    return sorted(points, key=lambda p: p.size)


def scored_models(report: Report) -> set[str]:
    """The backbones of which this store holds a test score: a table the experiment file lists but no trial
    scored (its backbone run elsewhere, or not yet) is not this store's."""
    return {t.model for t in report.tables if any(c.scores for row in t.rows for c in row.cells.values())}


def earlier_points(folder: str | Path, report: Report) -> list[Point]:
    """The scaling points of an earlier report of the same experiment (its ``--out`` folder) for the backbones
    ``report`` has no table of: a study whose backbones ran in different stores (clusters, or a store lost after
    its report was written) reports as one. Its scores and costs are taken as that report recorded them."""
    folder = Path(folder)
    flag = f"--earlier {folder}"
    loaded = {}
    for name in ("report.json", "scaling.json"):
        try:
            loaded[name] = json.loads((folder / name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ValueError(
                f"{flag}: no {name} there (expected the --out folder of a `harness report` over several backbones)"
            ) from None
        except json.JSONDecodeError as error:
            raise ValueError(f"{flag}: {name} is not JSON ({error.msg}, line {error.lineno})") from None
    experiment = loaded["report.json"].get("experiment")
    if experiment != report.experiment:
        raise ValueError(f"{flag}: a report of experiment {experiment!r}, not of {report.experiment!r}")

    ours = {(tuple(t.tasks), tuple(sorted(t.metrics.items()))) for t in report.tables}
    theirs = {(tuple(t["tasks"]), tuple(sorted(t["metrics"].items()))) for t in loaded["report.json"].get("tables", [])}
    if ours and theirs and ours != theirs:
        raise ValueError(f"{flag}: its targets and metrics {sorted(theirs)} are not this report's {sorted(ours)}")
    fields = {f.name for f in dataclasses.fields(Point)}
    mine = scored_models(report)
    points = []
    for entry in loaded["scaling.json"]:
        if entry["model"] in mine:
            continue  # this store's own trials win
        entry = {key: value for key, value in entry.items() if key in fields}
        entry["scores"] = {task: {int(seed): v for seed, v in seeds.items()} for task, seeds in entry["scores"].items()}
        entry["earlier"] = entry.get("earlier") or str(folder)  # where it was first read, across several hops
        if entry.get("cost") and "peak_memory_bound" not in entry["cost"]:  # written before trials kept their own
            entry["cost"] = {**entry["cost"], "peak_memory_bound": entry["cost"].get("peak_memory_mb") is not None}
        if entry.get("cost") and "inference_from" not in entry["cost"]:  # before it was the targets' alone
            entry["cost"] = {**entry["cost"], "inference_from": "all trials"}
        points.append(Point(**entry))
    return points


def trial_cost(trials: list[Trial], store: Store, targets: set[str] | None = None, few_shot: int | None = None) -> dict:
    """What ``trials`` cost, from their records: finished ones, search points included (they ran), and points
    successive halving stopped at a rung, counted for the steps they trained. The inference time per example is
    the ``targets``' trials' alone where given (`inference_from`): the adapter's row also holds the source tasks'
    trials, whose test sets are others, and time per example follows the texts' lengths (in a few-shot sweep,
    ``few_shot``, a target's full-data source adapter is left out of it too)."""
    pairs = [(t, record) for t in trials if (record := trained_record(t.key, store)) is not None]
    records = [record for _, record in pairs]
    if not records:
        return {}
    walls = [float(r.get("wall_seconds") or 0.0) for r in records]
    per_step = [w / r["steps"] for w, r in zip(walls, records, strict=True) if r.get("steps")]
    processes = [int(r.get("provenance", {}).get("world_size") or 1) for r in records]
    devices = sorted({str(r.get("provenance", {}).get("hardware", {}).get("device", "?")) for r in records})
    # 0 is no measurement: a rung's pause recorded none before pauses measured their stretch
    measured = [r for r in records if r.get("peak_memory_mb")]
    peaks = [float(r["peak_memory_mb"]) for r in measured]
    # a trial's own peak where it recorded one (`provenance.peak_memory_from`); earlier records hold their Ray
    # worker's lifetime peak, which may be a larger trial's: only an upper bound
    own = [float(r["peak_memory_mb"]) for r in measured if r.get("provenance", {}).get("peak_memory_from") == "trial"]
    # one optimizer step: the median gap between consecutive steps (the few gaps that hold an evaluation fall out)
    gaps = [
        statistics.median(b - a for a, b in itertools.pairwise(r["step_times"]))
        for r in records
        if len(r.get("step_times") or ()) > 1
    ]
    tested = [r for t, r in pairs if (targets is None or t.task in targets) and t in finals([t], few_shot)]
    inference = [float(r["test_seconds_per_example"]) for r in tested if r.get("test_seconds_per_example")]
    return {
        "trials": len(records),
        "median_wall_s": statistics.median(walls),
        "median_step_s": statistics.median(per_step) if per_step else None,
        "wall_h": sum(walls) / 3600,
        "device_h": sum(w * n for w, n in zip(walls, processes, strict=True)) / 3600,
        "device": ",".join(devices),
        "peak_memory_mb": max(own or peaks) if peaks else None,
        "peak_memory_bound": bool(peaks) and not own,
        "train_step_s": statistics.median(gaps) if gaps else None,
        "inference_s_per_example": statistics.median(inference) if inference else None,
        "inference_from": "all trials" if targets is None else "targets",
    }


def mixing_moved_of(trials: list[Trial], store: Store) -> float | None:
    """The mean `mixing_moved` of the finished final transfer trials among ``trials`` that learned a mixing."""
    moved = []
    for trial in finals(trials):
        if trial.depends_on and store.is_done(trial.key):
            store.pull(trial.key)  # a remote store's checkpoint, downloaded once
            mixing = read_mixing(store.model_dir(trial.key))
            if mixing is not None and (value := mixing_moved(mixing)) is not None:
                moved.append(value)
    return statistics.fmean(moved) if moved else None


# -- figures ----------------------------------------------------------------------------------------


def scaling_figure(points: list[Point], tasks: list[str], title: str):
    """Score against backbone size: a panel for the average (with several targets) and one per target."""

    plt = _pyplot()
    panels = [AVERAGE, *tasks] if len(tasks) > 1 else list(tasks)
    columns = min(3, len(panels))
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.6 * rows), squeeze=False)
    methods = list(dict.fromkeys(p.method for p in points))
    colours = {method: f"C{i % 10}" for i, method in enumerate(methods)}
    kinds = {p.model: _kind(p.model) for p in points}
    for axis, panel in zip(axes.flat, panels, strict=False):
        for method, kind in itertools.product(methods, KINDS):
            mine = [
                (p.size, p.summary(panel))
                for p in points
                if p.method == method and kinds[p.model] == kind and p.summary(panel)
            ]
            if not mine:
                continue
            x = [size for size, _ in mine]
            y = [s.mean for _, s in mine]
            err = [s.sd or 0.0 for _, s in mine]
            style = KINDS[kind]
            axis.errorbar(x, y, yerr=err, capsize=3, label=method, color=colours[method], **style)
        axis.set_xscale("log")
        _model_ticks(axis, points)
        axis.set_title("average over targets" if panel == AVERAGE else panel, fontsize=10)
        axis.set_xlabel("backbone parameters")
        axis.set_ylabel("test score ×100")
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(panels) :]:
        axis.set_visible(False)
    handles = [plt.Line2D([], [], color=colours[m], marker="o", label=m) for m in methods]
    if len(set(kinds.values())) > 1:  # the styles say which points are encoders and which decoders
        handles += [plt.Line2D([], [], color="grey", label=kind, **KINDS[kind]) for kind in KINDS]
    axes.flat[0].legend(handles=handles, fontsize=7)
    figure.suptitle(title)
    return figure


# an encoder's points and a decoder's are joined only to their own kind: a line from MPNet to SmolLM2 would
# read as a trend in size where the architecture changed too
KINDS = {
    "encoder": {"linestyle": "-", "marker": "o"},
    "decoder": {"linestyle": "--", "marker": "s", "markerfacecolor": "white"},
}


def _kind(model: str) -> str:
    from scalearn.backbones import DECODER_TYPES
    from scalearn.params import backbone_size  # torch (meta device): only for a scaling report

    return "decoder" if backbone_size(model)["family"] in DECODER_TYPES else "encoder"


def _model_ticks(axis, points: list[Point]) -> None:
    """One x tick per backbone, at its size, named by it (log scale's own minor labels would overlap)."""
    from matplotlib.ticker import NullFormatter, NullLocator

    from scalearn.params import human_count  # torch (meta device): only for a scaling report

    names: dict[int, list[str]] = {}
    for p in points:
        if p.model not in names.setdefault(p.size, []):
            names[p.size].append(p.model)
    sizes = sorted(names)
    axis.xaxis.set_minor_locator(NullLocator())
    axis.xaxis.set_minor_formatter(NullFormatter())
    labels, lowered = [], False
    for previous, size in zip([None, *sizes], sizes, strict=False):
        # a backbone within 1.6× of the one before it would print over it: its label goes a line lower
        lowered = previous is not None and size / previous < 1.6 and not lowered
        labels.append(("\n\n" if lowered else "") + f"{'/'.join(names[size])}\n{human_count(size)}")
    axis.set_xticks(sizes, labels)
    axis.tick_params(axis="x", labelsize=7, labelrotation=30)


def pareto_frontier(pairs: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (parameters, score) pairs no other pair beats with as few or fewer parameters, by parameters."""
    frontier, best = [], float("-inf")
    for params, score in sorted(pairs, key=lambda p: (p[0], -p[1])):
        if score > best:
            frontier.append((params, score))
            best = score
    return frontier


def pareto_figure(points: list[Point], title: str):
    """Average score against trainable transfer parameters: a colour per method, a marker per model."""

    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7, 4.6))
    panel = AVERAGE if any(AVERAGE in p.scores for p in points) else next(iter(points[0].scores), AVERAGE)
    usable = [p for p in points if p.summary(panel) and p.transfer_parameters]
    methods = list(dict.fromkeys(p.method for p in usable))
    models = list(dict.fromkeys(p.model for p in usable))
    markers = "osD^vP*Xh<>"
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for p in usable:
        s = p.summary(panel)
        colour = colours[methods.index(p.method) % len(colours)]
        axis.errorbar(
            p.transfer_parameters,
            s.mean,
            yerr=s.sd or 0.0,
            marker=markers[models.index(p.model) % len(markers)],
            color=colour,
            capsize=2,
            linestyle="none",
        )
    frontier = pareto_frontier([(p.transfer_parameters, p.summary(panel).mean) for p in usable])
    if frontier:  # a staircase: the best score within each budget, to the largest budget shown
        right = max(p.transfer_parameters for p in usable)
        xs, ys = zip(*(frontier + [(right, frontier[-1][1])]), strict=True)
        axis.plot(xs, ys, color="grey", linestyle="--", linewidth=1, drawstyle="steps-post", label="frontier")
    for index, method in enumerate(methods):
        axis.plot([], [], color=colours[index % len(colours)], linewidth=3, label=method)
    for index, model in enumerate(models):
        axis.plot([], [], color="black", marker=markers[index % len(markers)], linestyle="none", label=model)
    axis.set_xscale("log")
    axis.set_xlabel("trainable transfer parameters per target (head excluded)")
    axis.set_ylabel(f"test score ×100 ({'average over targets' if panel == AVERAGE else panel})")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axis.set_title(title)
    return figure


COST_PANELS = (
    ("train_step_s", "train s / optimizer step", 1.0),
    ("inference_s_per_example", "inference ms / example", 1000.0),
    ("peak_memory_mb", "peak memory MB", 1.0),
)
"""The cost figure's panels: the cost field, its axis label, and the factor it is shown at."""


def cost_figure(points: list[Point], title: str):
    """What each model × method cost, from the trials' records: a panel per `COST_PANELS` entry, a group of bars
    per backbone (smallest first), a bar per method in the methods' order; log scale. A peak memory that is only
    an upper bound (no trial of its row measured its own, `peak_memory_bound`) is drawn hatched and pale."""
    plt = _pyplot()
    models = list(dict.fromkeys(p.model for p in points))  # points come sorted by size
    methods = list(dict.fromkeys(p.method for p in points))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    figure, axes = plt.subplots(1, len(COST_PANELS), figsize=(4.8 * len(COST_PANELS), 4.0), squeeze=False)
    width = 0.8 / max(len(methods), 1)
    bounds = False
    for axis, (key, label, factor) in zip(axes.flat, COST_PANELS, strict=True):
        for index, method in enumerate(methods):
            rows = [p for p in points if p.method == method and p.cost.get(key) is not None]
            if rows:
                offset = (index - (len(methods) - 1) / 2) * width
                drawn = axis.bar(
                    [models.index(p.model) + offset for p in rows],
                    [p.cost[key] * factor for p in rows],
                    width,
                    color=colours[index % len(colours)],
                    label=method,
                )
                for bar, point in zip(drawn, rows, strict=True):
                    if key == "peak_memory_mb" and point.cost.get("peak_memory_bound"):
                        bar.set_hatch("//")
                        bar.set_alpha(0.4)
                        bounds = True
        axis.set_yscale("log")
        axis.set_xticks(range(len(models)), models)
        axis.tick_params(axis="x", labelsize=7, labelrotation=30)
        axis.set_title(label, fontsize=10)
        axis.grid(alpha=0.3, axis="y")
    axes.flat[0].legend(fontsize=7)
    if bounds:  # said under the panel's title, where no tick label runs into it
        memory = axes.flat[[key for key, _, _ in COST_PANELS].index("peak_memory_mb")]
        memory.set_title(f"{memory.get_title()}\n(hatched: a Ray worker's lifetime peak, an upper bound)", fontsize=9)
    figure.suptitle(title)
    return figure


# -- the cost table ---------------------------------------------------------------------------------

COLUMNS = (
    "model",
    "size",
    "method",
    "params",
    "score",
    "Δ adapter",
    "params / point",
    "inference × adapter",
    "mixing moved",
    "trials",
    "median wall/trial",
    "s/step",
    "train s/step",
    "inference ms/example",
    "wall h",
    "device h",
    "peak MB",
)


BASELINE = "adapter"
"""What a method's gain and cost are measured against: the single-task adapter on the same backbone."""


def _panel(point: Point) -> str | None:
    return AVERAGE if AVERAGE in point.scores else next(iter(point.scores), None)


def _score(point: Point) -> str:
    panel = _panel(point)
    summary = point.summary(panel) if panel else None
    if summary is None:
        return MISSING
    text = f"{summary.mean:.2f}" if summary.sd is None else f"{summary.mean:.2f} ± {summary.sd:.2f}"
    return text if panel == AVERAGE else f"{text} ({panel})"  # one target only, so far: not an average


def baseline_of(point: Point, points: list[Point]) -> Point | None:
    """The `BASELINE` point on ``point``'s backbone (None for the baseline itself, or where it did not run)."""
    if point.method == BASELINE:
        return None
    return next((p for p in points if p.model == point.model and p.method == BASELINE), None)


def gain(point: Point, baseline: Point | None, panel: str) -> float | None:
    """``point``'s mean test score minus the baseline's on ``panel`` (points ×100)."""
    ours, theirs = point.summary(panel), baseline.summary(panel) if baseline is not None else None
    return None if ours is None or theirs is None else ours.mean - theirs.mean


def params_per_point(point: Point, delta: float | None) -> float | None:
    """Transfer parameters per point gained (None without a gain)."""
    if delta is None or delta <= 0 or not point.transfer_parameters:
        return None
    return point.transfer_parameters / delta


def per_point(point: Point, baseline: Point | None) -> dict:
    """What ``point`` gains over its backbone's adapter on its headline panel, and what it costs for that: its
    transfer parameters per point gained (None without a gain), and its inference time per example over the
    adapter's (a transfer model runs every source at inference)."""
    panel = _panel(point)
    delta = gain(point, baseline, panel) if panel else None
    theirs = baseline.cost.get("inference_s_per_example") if baseline is not None else None
    ours = point.cost.get("inference_s_per_example")
    return {
        "gain": delta,
        "params_per_point": params_per_point(point, delta),
        "inference_ratio": ours / theirs if ours and theirs else None,
    }


def mixed(*points: Point | None) -> str:
    """'†' where an inference time is over all of a row's trials, source tasks' test sets included (an earlier
    report's, written before it was the targets' alone)."""
    return "†" if any(p is not None and p.cost.get("inference_from") == "all trials" for p in points) else ""


def _cells(point: Point, baseline: Point | None = None) -> list[str]:
    from scalearn.params import human_count  # torch (meta device): only for a scaling report

    cost = point.cost

    def number(key, digits):
        value = cost.get(key)
        return MISSING if value is None else f"{value:.{digits}f}"

    params = MISSING if point.transfer_parameters is None else f"{point.transfer_parameters:,}"
    bought = per_point(point, baseline)
    return [
        point.model,
        human_count(point.size),
        point.method,
        params,
        _score(point),
        MISSING if bought["gain"] is None else f"{bought['gain']:+.2f}",
        MISSING if bought["params_per_point"] is None else human_count(round(bought["params_per_point"])),
        MISSING if bought["inference_ratio"] is None else f"{bought['inference_ratio']:.2f}×" + mixed(point, baseline),
        MISSING if point.moved is None else f"{100 * point.moved:.1f}%",
        str(cost.get("trials", 0)),
        MISSING if not cost else f"{cost['median_wall_s']:.1f} s",
        number("median_step_s", 3),
        number("train_step_s", 3),
        MISSING
        if cost.get("inference_s_per_example") is None
        else f"{1000 * cost['inference_s_per_example']:.2f}" + mixed(point),
        MISSING if not cost else f"{cost['wall_h']:.3g}",
        MISSING if not cost else f"{cost['device_h']:.3g} ({cost['device']})",
        number("peak_memory_mb", 0) + ("*" if cost.get("peak_memory_bound") else ""),
    ]


def cost_markdown(points: list[Point], experiment: str) -> str:
    lines = [f"### {experiment}: scaling and cost", "", "| " + " | ".join(COLUMNS) + " |", "|---" * len(COLUMNS) + "|"]
    lines += ["| " + " | ".join(_cells(p, baseline_of(p, points))) + " |" for p in points]
    lines += [
        "",
        "- size: backbone parameters as trained (no pooler, no LM head); params: trainable transfer parameters per "
        "target, head excluded (docs/method.md §1.6); score: test ×100, mean ± sd over seeds of the average over "
        "the targets (seeds with every target); mixing moved: the mean over the final trials of |weight − start| / "
        "start for ScaLearn's ω (start 2/S) and AdapterFusion's attention (start 1/S).",
        f"- what a point of score costs, against the {BASELINE} on the same backbone: Δ {BASELINE} = the score's "
        f"mean minus the {BASELINE}'s; params / point = transfer parameters per point gained (– without a gain); "
        f"inference × {BASELINE} = the inference time per example over the {BASELINE}'s.",
        "- cost from the trials' records, search points included: s/step = wall time of the training loop (its "
        "evaluations included) per step; train s/step = the median time between two optimizer steps; inference = "
        "the test evaluation's time per example over the target tasks' trials (a transfer model runs every source "
        "adapter there); "
        "device hours = "
        "wall time × processes on the device named; peak MB: the largest trial's peak (GPU memory on CUDA, the "
        "process's resident memory on a CPU), counted from the trial's start where its record says so "
        "(`peak_memory_from`); * marks a row none of whose trials did: the largest of their Ray workers' lifetime "
        "peaks, which may be an earlier, larger trial's (an upper bound). "
        "A transfer method's cost leaves out its source adapters: they are "
        "the adapter row's trials (stage 1 serves every transfer method). Trials that shared a machine's cores "
        "or a GPU with others timed what ran beside them too: to compare methods' times, measure them alike "
        "(`benchmarks/method_costs.py` does on CPU).",
    ]
    if any(mixed(p) for p in points):
        lines.append(
            "- † inference over all of the row's trials, its source tasks' test sets included (recorded so by an "
            "earlier report): a ratio with it compares different test sets."
        )
    for folder in sorted({p.earlier for p in points if p.earlier}):
        models = ", ".join(dict.fromkeys(p.model for p in points if p.earlier == folder))
        lines.append(f"- {models}: as the earlier report in {folder} recorded them (`harness report --earlier`).")
    return "\n".join(lines)


def cost_latex(points: list[Point], experiment: str) -> str:
    spec = "ll" + "l" + "r" * (len(COLUMNS) - 3)
    head = " & ".join(latex_escape(c) for c in COLUMNS) + r" \\"
    body = [" & ".join(latex_escape(c) for c in _cells(p, baseline_of(p, points))) + r" \\" for p in points]
    caption = latex_escape(f"{experiment}: scaling and cost per model and method")
    return "\n".join(
        [r"\begin{table}[t]", r"\centering", r"\small", rf"\begin{{tabular}}{{{spec}}}", r"\toprule", head, r"\midrule"]
        + body
        + [r"\bottomrule", r"\end{tabular}", rf"\caption{{{caption}}}", r"\end{table}"]
    )


def cost_csv(points: list[Point]) -> str:
    out = io.StringIO()
    fields = ["model", "size", "method", "transfer_parameters", "task", "mean", "sd", "n"]
    cost_fields = ["trials", "median_wall_s", "median_step_s", "wall_h", "device_h", "device", "peak_memory_mb"]
    cost_fields += ["peak_memory_bound", "train_step_s", "inference_s_per_example", "inference_from"]
    fields += cost_fields + ["mixing_moved", f"gain_over_{BASELINE}", "params_per_point", f"inference_over_{BASELINE}"]
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for p in points:
        baseline = baseline_of(p, points)
        inference = per_point(p, baseline)["inference_ratio"]
        for task in p.scores or [""]:  # a row nothing scored yet keeps its cost, on a row without a task
            s = p.summary(task)
            delta = gain(p, baseline, task) if task else None
            writer.writerow(
                {
                    "model": p.model,
                    "size": p.size,
                    "method": p.method,
                    "transfer_parameters": p.transfer_parameters,
                    "task": task,
                    "mean": "" if s is None else f"{s.mean:.4f}",
                    "sd": "" if s is None or s.sd is None else f"{s.sd:.4f}",
                    "n": 0 if s is None else s.n,
                    **{k: p.cost.get(k) for k in cost_fields},
                    "mixing_moved": p.moved,
                    f"gain_over_{BASELINE}": "" if delta is None else f"{delta:.4f}",
                    "params_per_point": "" if (bought := params_per_point(p, delta)) is None else f"{bought:.1f}",
                    f"inference_over_{BASELINE}": "" if inference is None else f"{inference:.4f}",
                }
            )
    return out.getvalue()


def write_scaling(
    report: Report, trials: list[Trial], store: Store, out_dir: str | Path, earlier: list[Point] = ()
) -> tuple[list, list]:
    """(tables written, figures written) of the scaling report; nothing for a sweep of one backbone.
    ``earlier``: points of an earlier report (`earlier_points`) that join this store's."""

    theirs = {p.model for p in earlier}  # `earlier_points` gives only backbones this store scored nothing on
    if len({t.model for t in report.tables} | theirs) < 2:
        return [], []
    ours = [p for p in scaling_points(report, trials, store) if p.model not in theirs]
    points = sorted(ours + list(earlier), key=lambda p: p.size)
    out = Path(out_dir)
    tasks = report.tables[0].tasks
    name = report.experiment
    figures = [
        _save(
            scaling_figure(points, tasks, f"{name}: test score against backbone size"),
            out / "figures" / f"scaling_{name}.png",
        ),
        _save(
            pareto_figure(points, f"{name}: score against transfer parameters"), out / "figures" / f"pareto_{name}.png"
        ),
        _save(cost_figure(points, f"{name}: what each method cost per backbone"), out / "figures" / f"cost_{name}.png"),
    ]
    texts = {
        "scaling.md": cost_markdown(points, name),
        "scaling.tex": cost_latex(points, name),
        "scaling.csv": cost_csv(points),
        "scaling.json": json.dumps([asdict(p) for p in points], indent=1, sort_keys=True),
    }
    written = []
    for file_name, text in texts.items():
        path = out / file_name
        atomic_write(path, lambda tmp, text=text: Path(tmp).write_text(text + "\n", encoding="utf-8", newline=""))
        written.append(path)
    return written, figures
