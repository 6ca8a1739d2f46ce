"""Results → tables. Today: the per-(method, task) seed mean ± sd that `submit` prints; paper tables next."""

from __future__ import annotations

import statistics
from collections import defaultdict

from harness.plan import Trial
from harness.store import Store


def results_table(trials: list[Trial], store: Store, targets: list[str]) -> str:
    """Markdown: rows = (model, method), columns = targets; cells = mean ± sd ×100 over seeds (n).

    Source adapters of tasks that are not targets are inputs, not results, and stay out of the table."""
    from scalearn.tasks import get_task

    scores: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    tasks: list[str] = []
    for trial in trials:
        if trial.task not in targets or not store.is_done(trial.key):
            continue
        metric = get_task(trial.task).metric
        value = store.result(trial.key).get("test", {}).get(metric)
        if value is None:
            continue
        scores[(trial.model, trial.method)][trial.task].append(100 * value)
        if trial.task not in tasks:
            tasks.append(trial.task)
    if not scores:
        return "(no finished trials yet)"
    lines = ["| model | method | " + " | ".join(tasks) + " |", "|---|---|" + "---|" * len(tasks)]
    for (model, method), per_task in scores.items():
        cells = []
        for task in tasks:
            values = per_task.get(task, [])
            if not values:
                cells.append("–")
            elif len(values) == 1:
                cells.append(f"{values[0]:.2f} (n=1)")
            else:
                cells.append(f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f} (n={len(values)})")
        lines.append(f"| {model} | {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
