"""The short table `harness submit` prints when a sweep ends."""

from __future__ import annotations

import math

from harness import stats
from harness.plan import Trial, finals, task_results
from harness.report.model import MISSING
from harness.store import Store
from scalearn.tasks import get_task


def results_table(trials: list[Trial], store: Store, targets: list[str], few_shot: int | None = None) -> str:
    """Markdown: rows = (model, method), columns = targets; cells = mean ± sd ×100 over seeds (n).

    The short table `harness submit` prints. Source adapters of tasks that are not targets are inputs, not
    results, and stay out of the table; so do, in a few-shot sweep (``few_shot``: its k), the full-data source
    adapters of tasks that are also targets."""

    scores: dict[tuple[str, str], dict[str, list[float]]] = {}
    tasks: list[str] = []
    for trial in finals(trials, few_shot):
        if not set(trial.tasks or [trial.task]) & set(targets) or not store.is_done(trial.key):
            continue
        for task, task_scores in task_results(store.result(trial.key)):
            value = task_scores["test"].get(get_task(task).metric)
            if task not in targets or value is None or not math.isfinite(value):  # a diverged trial has no score
                continue
            scores.setdefault((trial.model, trial.method), {}).setdefault(task, []).append(
                stats.scaled(get_task(task).metric, value)
            )
            if task not in tasks:
                tasks.append(task)
    if not scores:
        return "(no finished trials yet)"
    lines = ["| model | method | " + " | ".join(tasks) + " |", "|---|---|" + "---|" * len(tasks)]
    for (model, method), per_task in scores.items():
        cells = []
        for task in tasks:
            summary = stats.summarize(per_task[task]) if per_task.get(task) else None
            if summary is None:
                cells.append(MISSING)
            elif summary.sd is None:
                cells.append(f"{summary.mean:.2f} (n=1)")
            else:
                cells.append(f"{summary.mean:.2f} ± {summary.sd:.2f} (n={summary.n})")
        lines.append(f"| {model} | {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
