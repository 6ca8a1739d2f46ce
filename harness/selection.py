"""What the searches chose, and from what: the selection table of `harness report` and `harness status`.

One row per searched group (model × method × task; a source adapter's group included): every grid point
with its dev value (mean ± sd over the search seeds, what each trial selected its checkpoint on) and how many
of its search trials are done or failed, the chosen point marked, and the test score of the chosen point's
final trials only.
"""

from __future__ import annotations

import csv
import io
import json
import math

from harness.plan import make_plan, trained_record
from harness.search import rung_fractions, selection_value
from harness.stats import scaled, summarize
from scalearn.tasks import get_task


def selection_rows(spec, store, groups=None) -> list[dict]:
    """The searched groups of ``spec`` as the store stands (a group still searching has no choice yet);
    ``groups``: the plan's, when the caller has planned already."""

    rows = []
    for group in groups if groups is not None else make_plan(spec, store).groups.values():
        points = []
        halved = group.rung_values or []  # successive halving: each point's dev value at each rung it reached
        for index, (point, keys) in enumerate(zip(group.points, group.keys_by_point, strict=True)):
            done = [store.result(key) for key in keys if store.is_done(key)]
            failed = sum(store.state(key) == "failed" for key in keys)
            values = [selection_value(result)[0] for result in done]
            dev = summarize(values) if values and not any(math.isnan(v) for v in values) else None
            points.append(
                {
                    "point": point,
                    "done": len(done),
                    "failed": failed,
                    "planned": len(keys),
                    "dev_mean": dev.mean if dev else None,
                    "dev_sd": dev.sd if dev else None,
                    "rung_dev": [rung[index][0] for rung in halved if rung.get(index) is not None],
                }
            )
        tasks = list(group.tasks) or [group.task]
        metric = get_task(tasks[0]).metric if len(tasks) == 1 else None
        test = None
        if group.final_keys and metric is not None and all(store.is_done(key) for key in group.final_keys):
            finished = [store.result(key)["tasks"].get(tasks[0]) for key in group.final_keys]
            scores = [task["test"].get(metric) for task in finished if task is not None]
            scores = [scaled(metric, s) for s in scores if isinstance(s, int | float)]
            if scores:
                summary = summarize(scores)
                test = {"metric": metric, "mean": summary.mean, "sd": summary.sd, "n": summary.n}
        search_keys = [key for keys in group.keys_by_point for key in keys]
        rows.append(
            {
                **search_compute(search_keys, store),
                "group": group.id,
                "model": group.model,
                "method": group.method,
                "task": group.task,
                "stage": group.stage,
                "points": points,
                "chosen": group.chosen,
                "lower_is_better": group.lower_is_better,
                "selects_on": _selects_on(group.lower_is_better, metric),
                "at_edge": at_edge([point["point"] for point in points], group.chosen),
                "test_of_chosen": test,
                "selects_on_test": any(get_task(task).selects_on_test for task in tasks),
                "rungs": len(rung_fractions(spec.search)) if group.rung_values is not None else None,
                "rung": len(halved) - 1 if halved else None,
                "search_keys": search_keys,
                "final_keys": list(group.final_keys or []),
            }
        )
    return rows


def search_compute(keys: list[str], store) -> dict:
    """What a group's search trials trained (optimizer steps, and seconds in their workers, every stretch of a
    paused and resumed trial counted), and what they would have trained had each run to its end as in a grid: a
    point stopped at a rung counted at the most steps a finished point of its group took (the same data and
    budget), None until one has finished."""
    records = {key: trained_record(key, store) for key in keys}  # each trial's files read once
    ran = [record for record in records.values() if record is not None]
    finished = {key: records[key]["steps"] for key in keys if store.is_done(key)}
    grid = None
    if finished and len(ran) == len(keys):
        grid = sum(finished.get(key, max(finished.values())) for key in keys)
    return {
        "search_steps": sum(int(record.get("steps") or 0) for record in ran),
        "search_seconds": sum(float(record.get("wall_seconds") or 0.0) for record in ran),
        "grid_steps": grid,
    }


def _selects_on(lower_is_better: bool | None, metric: str | None) -> str | None:
    if lower_is_better is None:
        return None
    return "loss ↓" if lower_is_better else f"{metric or 'score'} ↑"


def at_edge(points: list[dict], chosen: int | None) -> list[str]:
    """The numeric fields whose chosen value is the smallest or largest of at least 3 values the search tried:
    the best value may lie beyond what was searched."""
    if chosen is None:
        return []
    edges = []
    for name, value in points[chosen].items():
        tried = {p[name] for p in points if isinstance(p.get(name), int | float) and not isinstance(p[name], bool)}
        if len(tried) >= 3 and value in (min(tried), max(tried)):
            edges.append(name)
    return edges


def selection_notes(rows: list[dict]) -> list[str]:
    notes = [
        "Selection: each group's point is the best mean, over its search seeds, of the dev value its trials "
        "selected their checkpoints on (dev loss, or the task's metric); ties go to the first point, and a point "
        "whose trial failed for good ranks last. "
        "Test data chose nothing: the test score is shown for the chosen point only, from its final seeds."
    ]
    edged = [row for row in rows if row["at_edge"]]
    if edged:
        notes.append(
            f"edge: in {len(edged)} of {len(rows)} groups the chosen value is the smallest or largest the search "
            "tried, so the best may lie outside it; widen that field's grid or range and resubmit (finished points "
            "are kept)."
        )
    halved = [row for row in rows if row.get("rungs")]
    if halved and all(row["grid_steps"] is not None for row in halved):
        trained, grid = sum(row["search_steps"] for row in halved), sum(row["grid_steps"] for row in halved)
        hours = sum(row["search_seconds"] for row in halved) / 3600
        notes.append(
            f"Successive halving: the search trials of its {len(halved)} groups trained {trained:,} optimizer steps "
            f"({hours:.2f} h in their workers), {trained / grid:.0%} of the {grid:,} a full grid of the same points "
            "would train; a point paused at a rung counts the steps it took."
        )
    flagged = sorted({row["task"] for row in rows if row["selects_on_test"]})
    if flagged:
        notes.append(
            f"{', '.join(flagged)}: the dev set is the test set (docs/method.md §4.1), so its choice saw test data."
        )
    return notes


def point_text(point: dict) -> str:
    return ", ".join(
        f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}" for key, value in point.items()
    )


def selection_markdown(rows: list[dict]) -> str:
    """The selection table in Markdown; dev values as the trials record them (loss, or the metric as a fraction)."""
    lines = [
        "### Hyper-parameter selection on dev",
        "",
        "| model | method | task | point | selects on | dev (mean ± sd) | seeds | chosen | test of the chosen point |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        for index, point in enumerate(row["points"]):
            dev = "–" if point["dev_mean"] is None else f"{point['dev_mean']:.4f}"
            if point["dev_sd"] is not None:
                dev += f" ± {point['dev_sd']:.4f}"
            if row.get("rungs") and point.get("rung_dev") and point["dev_mean"] is None:  # stopped at a rung
                dev = f"{point['rung_dev'][-1]:.4f} at rung {len(point['rung_dev']) - 1} of {row['rungs']}"
            chosen = index == row["chosen"]
            test = row["test_of_chosen"]
            shown = ""
            if chosen and test:
                sd = "" if test["sd"] is None else f" ± {test['sd']:.2f}"
                shown = f"{test['mean']:.2f}{sd} (n={test['n']})"
            seeds = f"{point['done']}/{point['planned']}" + (f" ({point['failed']} failed)" if point["failed"] else "")
            mark = ("✓" + (f" (edge: {', '.join(row['at_edge'])})" if row["at_edge"] else "")) if chosen else ""
            cells = [row["model"], row["method"], row["task"], point_text(point["point"])]
            lines.append("| " + " | ".join([*cells, row["selects_on"] or "–", dev, seeds, mark, shown]) + " |")
    lines += [""] + [f"- {note}" for note in selection_notes(rows)]
    return "\n".join(lines)


SELECTION_CSV_FIELDS = (
    "group",
    "model",
    "method",
    "task",
    "stage",
    "point",
    "selects_on",
    "dev_mean",
    "dev_sd",
    "done",
    "failed",
    "planned",
    "chosen",
    "at_edge",
    "test_metric",
    "test_mean",
    "test_sd",
    "test_n",
)


def selection_csv(rows: list[dict]) -> str:
    """One line per searched point; the test columns are filled on the chosen point's line only."""

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SELECTION_CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        for index, point in enumerate(row["points"]):
            chosen = index == row["chosen"]
            test = (row["test_of_chosen"] or {}) if chosen else {}
            writer.writerow(
                {
                    **{key: row[key] for key in ("group", "model", "method", "task", "stage", "selects_on")},
                    "point": json.dumps(point["point"], sort_keys=True),
                    **{key: point[key] for key in ("dev_mean", "dev_sd", "done", "failed", "planned")},
                    "chosen": chosen,
                    "at_edge": " ".join(row["at_edge"]) if chosen else "",
                    "test_metric": test.get("metric"),
                    "test_mean": test.get("mean"),
                    "test_sd": test.get("sd"),
                    "test_n": test.get("n"),
                }
            )
    return buffer.getvalue()


def _best_so_far(row: dict) -> str:
    """' (best so far …)': the point a search leads with while it runs, by its dev value (its finished seeds)."""
    scored = [point for point in row["points"] if point["dev_mean"] is not None]
    if not scored or row["selects_on"] is None:
        return ""
    best = (min if row["lower_is_better"] else max)(scored, key=lambda point: point["dev_mean"])
    name = row["selects_on"].rstrip(" ↑↓")
    return f" (best so far {point_text(best['point'])}: dev {name} {best['dev_mean']:.4f})"


def status_lines(spec, store, groups=None) -> list[str]:
    """One line per searched group for `harness status`: its points done, and its choice once it has one
    (flagged when it sits at the edge of what was searched)."""
    lines = []
    for row in selection_rows(spec, store, groups):
        finished = sum(point["done"] == point["planned"] for point in row["points"])
        where = f"search {row['method']} · {row['task']} · {row['model']}: {finished}/{len(row['points'])} points done"
        if row["chosen"] is None and row.get("rung") is not None:
            lines.append(f"{where}, halving at rung {row['rung']} of {row['rungs']} (0 first)")
            continue
        if row["chosen"] is None:
            lines.append(f"{where}, searching{_best_so_far(row)}")
            continue
        chosen = ", ".join(f"{k}={v}" for k, v in row["points"][row["chosen"]]["point"].items())
        edge = f" (at the edge of the searched {', '.join(row['at_edge'])})" if row["at_edge"] else ""
        lines.append(f"{where}, chosen {chosen}{edge}")
    return lines
