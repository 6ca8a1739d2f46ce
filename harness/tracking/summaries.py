"""What the parent runs say: a group's seed means and sds and its description, a searched group's points, a
method's per-task table and its average over the targets. Pure: metrics come back as (name, value) pairs,
descriptions as lines; the seed statistics are `harness.stats.summarize`'s, as the report's."""

from __future__ import annotations

import math

from harness.plan import Trial
from harness.selection import point_text
from harness.stats import scaled, summarize
from harness.tracking.records import flatten, metric_name, number
from scalearn.result import ended_improving

SHOWN_DECIMALS = 4
"""Seed means and sds on parent runs are rounded to this many decimals (on the ×100 scale: far below any seed
sd), so the UI's columns read 59.9775, not 59.97752575698244; a trial's own metrics are logged as they are."""


def shown(value: float) -> float:
    return round(value, SHOWN_DECIMALS)


def summary_text(values: list[float]) -> str:
    summary = summarize(values)
    if summary.sd is None:
        return f"{summary.mean:.2f} (n=1)"
    return f"{summary.mean:.2f} ± {summary.sd:.2f} (n={summary.n})"


def mean_and_sd(name: str, values: list[float]) -> list[tuple[str, float]]:
    """``<name>_mean`` and, for more than one value, ``<name>_sd``, as parents log them."""
    summary = summarize(values)
    pairs = [(f"{name}_mean", shown(summary.mean))]
    if summary.sd is not None:
        pairs.append((f"{name}_sd", shown(summary.sd)))
    return pairs


def group_summary(finished: list[Trial], results: dict[str, dict]) -> tuple[list[tuple[str, float]], list[str]]:
    """A group's seed means and sds (test and best dev, ×100), and the lines of its description."""
    metrics = [("seeds", float(len(finished)))]
    for kind in ("test", "best_dev"):
        names = dict.fromkeys(k for t in finished for k, v in results[t.key].get(kind, {}).items() if number(v))
        for name in names:
            values = [
                scaled(name, results[t.key][kind][name]) for t in finished if name in results[t.key].get(kind, {})
            ]
            metrics += [(metric_name(key), value) for key, value in mean_and_sd(f"{kind}_{name}", values)]
    first = results[finished[0].key]
    on = "test" if first.get("selects_on_test") else "dev"
    by = first.get("selected_by", "loss")
    lines = [
        f"**{finished[0].method}** on **{finished[0].task}** · {finished[0].model}: {len(finished)} seeds. "
        f"Scores ×100, losses as they are. The test checkpoint of each seed is its best {on} {by} "
        f"({'lowest' if by == 'loss' else 'highest'}):",
        "",
        f"| seed | step | {'evaluation' if finished[0].joint else 'epoch'} | best {on} {by} | test |",
        "|---|---|---|---|---|",
    ]
    improving = []
    for trial in sorted(finished, key=lambda t: t.seed):
        result = results[trial.key]
        best = result.get("best_dev", {}).get(by if by in result.get("best_dev", {}) else "loss")
        tests = ", ".join(f"{k} {scaled(k, v):.2f}" for k, v in result.get("test", {}).items() if number(v))
        value = f"{scaled(by, best):.4g}" if number(best) else "–"
        step, epoch = result.get("best_step", "–"), result.get("best_epoch")
        shown = epoch + 1 if isinstance(epoch, int) and epoch >= 0 else "–"  # counted from 1, as people count
        mark = " ↑" if ended_improving(result) else ""
        improving += [trial.seed] if mark else []
        lines.append(f"| {trial.seed}{mark} | {step} | {shown} | {value} | {tests} |")
    lines += ["", "Steps and epochs are counted from 1 (result.json's `best_epoch` from 0)."]
    if improving:
        lines.append(
            f"↑ seed{'s' if len(improving) > 1 else ''} {', '.join(map(str, improving))}: the best evaluation was "
            "the last one, so dev was still improving when training stopped; more steps may help."
        )
    return metrics, lines


def method_summary(
    task_scores: dict[str, dict[str, list[float]]], main_metric: dict[str, str], targets: list[str] | None
) -> tuple[list[tuple[str, float]], list[str], list[str]]:
    """A method's top-level run from its final trials' test scores (×100) per task and metric: each task's mean
    and sd, the average over ``targets`` (every task when None) of their ``main_metric`` when all have one,
    the table of its description, and the columns the shared view shows."""
    metrics: list[tuple[str, float]] = []
    rows, columns, means = [], [], {}
    for task, scores in sorted(task_scores.items()):
        for name, values in scores.items():
            metrics += mean_and_sd(f"{task}/test_{name}", values)
        metric = main_metric[task]
        if metric in scores:
            means[task] = summarize(scores[metric]).mean
            if task in (targets or [task]):  # each target's mean, and beside it its spread over seeds
                columns += [f"{task}/test_{metric}_mean", f"{task}/test_{metric}_sd"]
            rows.append(f"| {task} | {metric} | {summary_text(scores[metric])} |")
    wanted = [t for t in (targets or means) if t in means]
    if wanted and len(wanted) == len(targets or means):
        metrics.append(("avg_test_score_mean", shown(summarize([means[t] for t in wanted]).mean)))
    elif means:  # a target without a finished seed (yet, or any more): no average, as in the report, not the
        metrics.append(("avg_test_score_mean", math.nan))  # one an earlier submit logged over fewer targets
    text = ["Test scores ×100, mean ± sd over seeds; one run per task below, its seeds under it.", ""]
    text += ["| task | metric | test |", "|---|---|---|", *rows] if rows else ["No trial finished yet."]
    return metrics, text, columns


def search_lines(row: dict, kind: str, lines: list[str]) -> list[str]:
    """A searched group's description: on its search parent every point with its dev value and the chosen one
    marked; on its final group the chosen point, before the seeds' table."""

    chosen = row["points"][row["chosen"]]["point"] if row["chosen"] is not None else None
    if kind == "final":
        head = f"Hyper-parameters chosen on dev by the search: **{point_text(chosen)}**." if chosen else ""
        return [head, "", *lines] if head else lines
    on = row["selects_on"] or "–"
    measure = "loss" if row["lower_is_better"] else "score"  # scores ×100 as everywhere in MLflow, losses raw
    text = [
        f"**Search** of {row['method']} on {row['task']} · {row['model']}: {len(row['points'])} points, each with "
        f"the mean ± sd over its search seeds of the dev value its trials selected their checkpoint on ({on}; "
        "scores ×100, losses as they are).",
        "",
        "| point | dev | seeds | chosen |",
        "|---|---|---|---|",
    ]
    for index, point in enumerate(row["points"]):
        dev = "–" if point["dev_mean"] is None else f"{scaled(measure, point['dev_mean']):.4g}"
        if point["dev_sd"] is not None:
            dev += f" ± {scaled(measure, point['dev_sd']):.2g}"
        seeds = f"{point['done']}/{point['planned']}" + (f" ({point['failed']} failed)" if point["failed"] else "")
        mark = ""
        if index == row["chosen"]:
            mark = "✓" + (f" (at the edge: {', '.join(row['at_edge'])})" if row["at_edge"] else "")
        if row.get("rungs") and point.get("rung_dev") and point["dev_mean"] is None:  # successive halving stopped it
            stopped = len(point["rung_dev"]) - 1
            dev = f"{scaled(measure, point['rung_dev'][-1]):.4g}"
            mark = f"paused at rung {stopped} of {row['rungs']} (not promoted; no run of its own)"
        text.append(f"| {point_text(point['point'])} | {dev} | {seeds} | {mark} |")
    if row.get("rungs"):
        text += [
            "",
            f"Successive halving over {row['rungs']} rungs: a point paused at a rung trained that share of its "
            "budget only; the chosen point is one of the last rung's whole trials.",
        ]
    if chosen is None:
        text += ["", "No point chosen yet: the search has not finished."]
    return text


def shared_params(finished: list[Trial], results: dict[str, dict]) -> dict[str, str]:
    """What every one of ``finished`` trained with, as MLflow params: the config values they share (the seed
    and what differs left out; a searched group's chosen point is among them) and their transfer parameters,
    so MLflow's compare and parallel-coordinates views work on the runs above the trials."""
    flat = [flatten("", trial.config.model_dump(mode="json"), {}) for trial in finished]
    counts = [results[t.key].get("parameters", {}).get("transfer") for t in finished]
    for values, count in zip(flat, counts, strict=True):
        values.pop("seed", None)
        if count is not None:
            values["parameters.transfer"] = str(count)
    shared = {k: v for k, v in flat[0].items() if all(other.get(k) == v for other in flat[1:])} if flat else {}
    return {k: v[:6000] for k, v in shared.items()}


def method_params(groups: list[dict[str, str]]) -> dict[str, str]:
    """A competitor's params from its groups' (`shared_params`): what all its groups share, and, per task, the
    hyper-parameters that differ between them (a learning rate chosen per target: `<task>/learning_rate`)."""
    if not groups:
        return {}
    shared = {k: v for k, v in groups[0].items() if all(g.get(k) == v for g in groups[1:])}
    for group in groups:
        task = group.get("task")
        if task is None:
            continue
        for key, value in group.items():
            if key not in shared and not key.startswith(("task", "tasks", "sources", "few_shot")):
                shared[f"{task}/{key}"] = value
    return shared
