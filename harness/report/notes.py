"""A table's footnotes, format-neutral: what the numbers are, the marks, the rows that need a word."""

from __future__ import annotations

from harness import stats
from harness.report.model import BOOTSTRAP_MARK, MISSING, WELCH_MARK, Report, Table
from scalearn.tasks import get_task


def table_notes(report: Report, table: Table) -> list[str]:
    """The table's footnotes, format-neutral (the renderers escape them)."""

    metrics = ", ".join(
        f"{task} {metric}" + (" (matched)" if task == "mnli" else "") for task, metric in table.metrics.items()
    )
    notes = [
        f"Test scores ×100 ({metrics}), mean ± sd over seeds (ddof=1); Avg: unweighted mean over the tasks, "
        f"shown when every task has a score; {MISSING}: no finished trial"
        + (" or no published number." if table.paper_table else ".")
    ]
    if table.uniform_seeds:
        seeds = next(iter(table.planned_seeds.values()), 0)
        notes.append(f"n = {seeds} seed{'s' if seeds != 1 else ''} per cell unless a cell says otherwise.")
    else:
        notes.append("n in a column header: the seeds planned for that task; a cell says when it has a different n.")
    if table.baseline is not None:
        notes.append(
            f"{WELCH_MARK} Welch's t-test against {table.baseline} across seeds, two-sided "
            f"p < {report.alpha}; {BOOTSTRAP_MARK} paired bootstrap over the seeds both share (at least "
            f"{stats.MIN_BOOTSTRAP_PAIRS}; {stats.BOOTSTRAP_RESAMPLES:,} resamples), p < {report.alpha}. "
            "A mark says the difference is significant in either direction (compare the means for which): "
            "not corrected for multiple comparisons."
        )
    notes.append(
        "Params: trainable transfer parameters per target, head excluded (docs/method.md §1.6), as the trials "
        "recorded them; * = from the model config (`harness params`), no finished trial."
    )
    if any(row.group == "joint" for row in table.rows):
        notes.append(
            "Joint rows (FT-m, Adapter-m, ProPETL-m, HyperFormer): one model trained on every task at once, "
            "a trial per seed; their Params are each task's share of the shared parameters."
        )
    if any(get_task(task).selects_on_test for task in table.tasks):
        notes.append("ReCoRD: model selection on its test set, as in the paper (docs/method.md §4.1).")
    return notes + table.notes
