"""Results → paper tables: one per model, rows = methods grouped as the paper, columns = target tasks + Avg
+ transfer parameters per target; significance against a baseline; optionally the paper's numbers beside ours.

Scores are the test value of each task's reported metric ×100 (docs/method.md §4.2); a cell is the mean ± sd
(ddof=1) over seeds; Avg is the unweighted mean of a row's task means. Torch-free at import; the registry
lookups inside the functions import scalearn.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from harness import stats
from harness.plan import Trial, finals, task_results
from harness.spec import ExperimentSpec
from harness.store import Store
from scalearn.atomic import atomic_write

ALPHA = 0.05
DEFAULT_BASELINE = "adapterfusion"
FORMATS = {"md": "report.md", "latex": "report.tex", "csv": "report.csv", "json": "report.json"}
METHOD_ORDER = (
    "full_ft",
    "adapter",
    "propetl",
    "compacter_pp",
    "ia3",
    "lora",
    "full_ft_m",
    "adapter_m",
    "propetl_m",
    "hyperformer",
    "hyperformer_pp",
    "adapterfusion",
    "scalearn",
    "scalearn_uniform",
    "scalearn_pp",
    "scalearn_uniform_pp",
    "adapter_soup",
    "probe",
)
"""The paper's row order (docs/method.md §3, §5.1; LoRA, not in the paper, after its single-task rows); methods not
listed follow in the experiment file's order."""
GROUP_ORDER = ("single-task", "joint", "two-stage")
WELCH_MARK, BOOTSTRAP_MARK, MISSING = "†", "‡", "–"


@dataclass
class Cell:
    """One (model, method, task): the seeds' scores ×100, the tests against the baseline, the paper's value."""

    scores: dict[int, float] = field(default_factory=dict)
    other: dict[str, dict[int, float]] = field(default_factory=dict)
    """The other test metrics ×100 by seed (e.g. STS-B spearman, MNLI accuracy_mm); CSV/JSON only."""
    p_welch: float | None = None
    p_bootstrap: float | None = None
    paper: float | None = None

    @property
    def summary(self) -> stats.Summary | None:
        return stats.summarize(list(self.scores.values())) if self.scores else None

    @property
    def diff(self) -> float | None:
        return None if self.paper is None or not self.scores else self.summary.mean - self.paper


@dataclass
class Row:
    method: str
    group: str
    cells: dict[str, Cell]
    transfer_parameters: int | None = None
    parameters_from: str = "unknown"
    """"results" (what the trials recorded), "formula" (from the model config) or "unknown"."""
    paper_avg: float | None = None

    @property
    def avg(self) -> float | None:
        """Unweighted mean over the tasks, only when every task has a score (a partial mean would mislead)."""
        means = [c.summary.mean for c in self.cells.values() if c.scores]
        return sum(means) / len(means) if means and len(means) == len(self.cells) else None

    @property
    def avg_diff(self) -> float | None:
        return None if self.avg is None or self.paper_avg is None else self.avg - self.paper_avg


@dataclass
class Table:
    model: str
    canonical_model: str
    tasks: list[str]
    metrics: dict[str, str]
    planned_seeds: dict[str, int]
    rows: list[Row]
    baseline: str | None
    """The baseline the marks test against; None when it is not in the sweep."""
    paper_table: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def uniform_seeds(self) -> bool:
        return len(set(self.planned_seeds.values())) <= 1


@dataclass
class Report:
    experiment: str
    tables: list[Table]
    baseline: str
    alpha: float
    compare_paper: bool
    selection: list[dict] = field(default_factory=list)
    """The searched groups (harness/selection.py); empty without a `search:` block."""


def _ordered_methods(methods: list[str]) -> list[tuple[str, str]]:
    from scalearn.methods import get_method

    groups = {m: get_method(m).group for m in methods}

    def rank(method: str) -> tuple[int, int, int]:
        group = groups[method]
        known = METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER)
        return GROUP_ORDER.index(group) if group in GROUP_ORDER else len(GROUP_ORDER), known, methods.index(method)

    return [(m, groups[m]) for m in sorted(dict.fromkeys(methods), key=rank)]


def _formula_parameters(model: str, method: str, num_sources: int) -> int | None:
    """Trainable transfer parameters per target from the config alone (as `harness params`)."""
    from scalearn.params import count_parameters

    try:
        return int(count_parameters(model, method, num_sources)["transfer"])
    except (OSError, ValueError):
        return None


def build_report(
    spec: ExperimentSpec,
    trials: list[Trial],
    store: Store,
    baseline: str = DEFAULT_BASELINE,
    compare_paper: bool = False,
    alpha: float = ALPHA,
    groups=None,
) -> Report:
    """Every finished result of the experiment's methods on its targets, aggregated into one table per model;
    with a search, the selection table too (``groups``: the plan's searched groups, when planned already)."""
    from scalearn.backbones import canonical_name
    from scalearn.methods import method_names
    from scalearn.tasks import get_task

    trials = finals(trials)  # a search point that did not become a final trial is not a result
    if baseline not in method_names():
        raise ValueError(f"unknown --baseline {baseline!r} (expected a registered method, see `harness ls methods`)")
    targets = spec.target_list()
    metrics = {task: get_task(task).metric for task in targets}
    planned = {task: len(spec.seeds_for(task)) for task in targets}
    methods = _ordered_methods(spec.methods)
    tables = []
    for model in spec.models:
        rows = {m: Row(m, group, {task: Cell() for task in targets}) for m, group in methods}
        recorded: dict[str, set[int]] = {m: set() for m, _ in methods}
        for trial in trials:
            if trial.model != model or trial.method not in rows:
                continue
            if not set(trial.tasks or [trial.task]) & set(metrics) or not store.is_done(trial.key):
                continue
            for task, result in task_results(trial, store.result(trial.key)):
                test = result.get("test", {})
                if task not in metrics or test.get(metrics[task]) is None:
                    continue
                cell = rows[trial.method].cells[task]
                cell.scores[trial.seed] = stats.scaled(metrics[task], test[metrics[task]])
                for name, value in test.items():
                    if name not in ("loss", metrics[task]) and isinstance(value, int | float):
                        cell.other.setdefault(name, {})[trial.seed] = stats.scaled(name, value)
                if "transfer" in result.get("parameters", {}):
                    recorded[trial.method].add(int(result["parameters"]["transfer"]))
        table = Table(model, canonical_name(model), targets, metrics, planned, list(rows.values()), None)
        for row in table.rows:
            if recorded[row.method]:
                row.transfer_parameters, row.parameters_from = max(recorded[row.method]), "results"
                if len(recorded[row.method]) > 1:
                    counts = ", ".join(f"{n:,}" for n in sorted(recorded[row.method]))
                    table.notes.append(
                        f"{row.method}: transfer parameters differ across targets ({counts}); the largest shown"
                    )
            else:
                # a joint method's count depends on how many tasks share the model
                sharing = spec.task_list() if row.group == "joint" else spec.source_list(targets[0])
                count = _formula_parameters(model, row.method, len(sharing))
                row.transfer_parameters, row.parameters_from = count, "formula" if count is not None else "unknown"
        _mark_significance(table, rows.get(baseline), baseline)
        if compare_paper:
            _attach_paper(table, spec)
        tables.append(table)
    from harness.selection import selection_rows

    selection = selection_rows(spec, store, groups) if spec.search else []
    return Report(spec.name or "experiment", tables, baseline, alpha, compare_paper, selection)


def _mark_significance(table: Table, base: Row | None, baseline: str) -> None:
    if base is None or not any(c.scores for c in base.cells.values()):
        table.notes.append(f"no significance marks: the baseline {baseline} has no results in this sweep")
        return
    table.baseline = baseline
    for row in table.rows:
        if row is base:
            continue
        for task, cell in row.cells.items():
            other = base.cells[task].scores
            cell.p_welch = stats.welch_p(list(cell.scores.values()), list(other.values()))
            shared = sorted(set(cell.scores) & set(other))
            cell.p_bootstrap = stats.paired_bootstrap_p([cell.scores[s] for s in shared], [other[s] for s in shared])


def _attach_paper(table: Table, spec: ExperimentSpec) -> None:
    from harness import paper

    name = paper.find_table(table.canonical_model, spec.benchmark, spec.task_list())
    if name is None:
        table.notes.append(
            f"no published numbers for {table.model} on these tasks (the paper's README tables: "
            "RoBERTa-base GLUE and SuperGLUE, XLM-R-base HumSet)"
        )
        return
    table.paper_table = name
    full = set(table.tasks) == set(paper.PAPER[name]["tasks"])
    for row in table.rows:
        published = paper.paper_scores(name, row.method)
        for task, cell in row.cells.items():
            cell.paper = published.get(task)
        values = [published.get(task) for task in table.tasks]
        row.paper_avg = published.get("avg") if full else (None if None in values else sum(values) / len(values))
    table.notes.append(f"paper: {paper.CITATION}; {paper.PAPER[name]['source']}. Δ = ours − paper.")


def _notes(report: Report, table: Table) -> list[str]:
    """The table's footnotes, format-neutral (the renderers escape them)."""
    from scalearn.tasks import get_task

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
            "Not corrected for multiple comparisons."
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


def results_table(trials: list[Trial], store: Store, targets: list[str]) -> str:
    """Markdown: rows = (model, method), columns = targets; cells = mean ± sd ×100 over seeds (n).

    The short table `harness submit` prints. Source adapters of tasks that are not targets are inputs, not
    results, and stay out of the table."""
    from scalearn.tasks import get_task

    scores: dict[tuple[str, str], dict[str, list[float]]] = {}
    tasks: list[str] = []
    for trial in finals(trials):
        if not set(trial.tasks or [trial.task]) & set(targets) or not store.is_done(trial.key):
            continue
        for task, result in task_results(trial, store.result(trial.key)):
            value = result.get("test", {}).get(get_task(task).metric)
            if task not in targets or value is None:
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


def render(report: Report, fmt: str) -> str:
    """The report as md, latex, csv or json text."""
    renderers = {"md": _markdown, "latex": _latex, "csv": _csv_text, "json": _json_text}
    if fmt not in renderers:
        raise ValueError(f"unknown --format {fmt!r} (expected one of {', '.join(FORMATS)})")
    return renderers[fmt](report)


def write_report(report: Report, out_dir: str | Path) -> list[Path]:
    """report.md, report.tex, report.csv and report.json in out_dir (and selection.csv with a search), each
    written atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt, name in FORMATS.items():
        path = out / name
        text = render(report, fmt) + "\n"
        atomic_write(path, lambda tmp, text=text: Path(tmp).write_text(text, encoding="utf-8", newline=""))
        written.append(path)
    if report.selection:  # one line per searched point, beside report.csv's one line per cell
        from harness.selection import selection_csv

        path, text = out / "selection.csv", selection_csv(report.selection)
        atomic_write(path, lambda tmp, text=text: Path(tmp).write_text(text, encoding="utf-8", newline=""))
        written.append(path)
    return written


# -- renderers ------------------------------------------------------------------------------------
# md and latex share one grid of unicode text; latex escapes it cell by cell.


def _cell_text(cell: Cell, planned: int, alpha: float) -> str:
    summary = cell.summary
    if summary is None:
        return MISSING
    text = f"{summary.mean:.2f}" if summary.sd is None else f"{summary.mean:.2f} ± {summary.sd:.2f}"
    marks = ""
    if cell.p_welch is not None and cell.p_welch < alpha:
        marks += WELCH_MARK
    if cell.p_bootstrap is not None and cell.p_bootstrap < alpha:
        marks += BOOTSTRAP_MARK
    return text + marks + (f" (n={summary.n})" if summary.n != planned else "")


def _number(value: float | None, signed: bool = False) -> str:
    return MISSING if value is None else f"{value:+.2f}" if signed else f"{value:.2f}"


def _grid(report: Report, table: Table) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, body rows, and the body indices where a new method group starts."""
    compare = report.compare_paper and table.paper_table is not None
    header = ["Method"]
    for task in table.tasks:
        header.append(task if table.uniform_seeds else f"{task} (n={table.planned_seeds[task]})")
        header += ["paper", "Δ"] if compare else []
    header += ["Avg", "paper", "Δ", "Params"] if compare else ["Avg", "Params"]
    body, starts = [], []
    for index, row in enumerate(table.rows):
        if index and row.group != table.rows[index - 1].group:
            starts.append(index)
        line = [row.method]
        for task, cell in row.cells.items():
            line.append(_cell_text(cell, table.planned_seeds[task], report.alpha))
            line += [_number(cell.paper), _number(cell.diff, signed=True)] if compare else []
        line.append(_number(row.avg))
        line += [_number(row.paper_avg), _number(row.avg_diff, signed=True)] if compare else []
        params = MISSING if row.transfer_parameters is None else f"{row.transfer_parameters:,}"
        line.append(params + ("*" if row.parameters_from == "formula" else ""))
        body.append(line)
    return header, body, starts


def _title(report: Report, table: Table) -> str:
    canonical = f" ({table.canonical_model})" if table.canonical_model != table.model else ""
    return f"{report.experiment}: {table.model}{canonical}"


def _markdown(report: Report) -> str:
    parts = []
    for table in report.tables:
        header, body, _ = _grid(report, table)
        lines = [f"### {_title(report, table)}", "", "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        lines += [""] + [f"- {note}" for note in _notes(report, table)]
        parts.append("\n".join(lines))
    if report.selection:
        from harness.selection import selection_markdown

        parts.append(selection_markdown(report.selection))
    return "\n\n".join(parts)


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"$<$",
    ">": r"$>$",
    "|": r"\textbar{}",
    "`": "",
}
_LATEX_UNICODE = {
    WELCH_MARK + BOOTSTRAP_MARK: r"$^{\dagger\ddagger}$",
    WELCH_MARK: r"$^{\dagger}$",
    BOOTSTRAP_MARK: r"$^{\ddagger}$",
    "±": r"$\pm$",
    "Δ": r"$\Delta$",
    "−": r"$-$",
    "×": r"$\times$",
    "§": r"\S{}",
    MISSING: "--",
    "—": "---",
}


def latex_escape(text: str) -> str:
    """Plain text → LaTeX text: special characters escaped, the report's symbols as math."""
    text = "".join(_LATEX_SPECIAL.get(char, char) for char in text)
    for symbol, command in _LATEX_UNICODE.items():
        text = text.replace(symbol, command)
    return text


def _latex(report: Report) -> str:
    """One booktabs tabular per model (needs \\usepackage{booktabs}), its notes below it."""
    parts = []
    for table in report.tables:
        header, body, starts = _grid(report, table)
        lines = [
            f"% {latex_escape(_title(report, table))}; needs \\usepackage{{booktabs}}",
            f"\\begin{{tabular}}{{l{'r' * (len(header) - 1)}}}",
            "\\toprule",
            " & ".join(latex_escape(h) for h in header) + r" \\",
            "\\midrule",
        ]
        for index, row in enumerate(body):
            lines += ["\\midrule"] if index in starts else []
            lines.append(" & ".join(re.sub(r"^-(?=\d)", "$-$", latex_escape(c)) for c in row) + r" \\")
        lines += ["\\bottomrule", "\\end{tabular}", "", "{\\footnotesize"]
        lines += [latex_escape(note) + r"\par" for note in _notes(report, table)] + ["}"]
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


CSV_FIELDS = (
    "model",
    "method",
    "group",
    "task",
    "metric",
    "mean",
    "sd",
    "n",
    "seeds",
    "planned_seeds",
    "baseline",
    "p_welch",
    "p_bootstrap",
    "transfer_parameters",
    "parameters_from",
    "paper",
    "diff",
)


def _csv_text(report: Report) -> str:
    """One row per (model, method, task), plus one Avg row per (model, method)."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for table in report.tables:
        for row in table.rows:
            shared = {
                "model": table.model,
                "method": row.method,
                "group": row.group,
                "baseline": table.baseline,
                "transfer_parameters": row.transfer_parameters,
                "parameters_from": row.parameters_from,
            }
            for task, cell in row.cells.items():
                summary = cell.summary
                writer.writerow(
                    {
                        **shared,
                        "task": task,
                        "metric": table.metrics[task],
                        "mean": summary and summary.mean,
                        "sd": summary and summary.sd,
                        "n": len(cell.scores),
                        "seeds": " ".join(map(str, sorted(cell.scores))),
                        "planned_seeds": table.planned_seeds[task],
                        "p_welch": cell.p_welch,
                        "p_bootstrap": cell.p_bootstrap,
                        "paper": cell.paper,
                        "diff": cell.diff,
                    }
                )
            writer.writerow(
                {
                    **shared,
                    "task": "Avg",
                    "metric": "unweighted mean over tasks",
                    "mean": row.avg,
                    "paper": row.paper_avg,
                    "diff": row.avg_diff,
                }
            )
    return buffer.getvalue().rstrip("\n")


def report_dict(report: Report) -> dict:
    """The report as plain data (what --format json writes)."""
    from harness import paper

    def cell_dict(cell: Cell) -> dict:
        summary = cell.summary
        seeds = sorted(cell.scores)
        other = {name: vars(stats.summarize(list(v.values()))) for name, v in cell.other.items()}
        return {
            "mean": summary and summary.mean,
            "sd": summary and summary.sd,
            "n": len(seeds),
            "seeds": seeds,
            "scores": [cell.scores[s] for s in seeds],
            "p_welch": cell.p_welch,
            "p_bootstrap": cell.p_bootstrap,
            "paper": cell.paper,
            "diff": cell.diff,
            "other_metrics": other,
        }

    tables = [
        {
            "model": t.model,
            "canonical_model": t.canonical_model,
            "tasks": t.tasks,
            "metrics": t.metrics,
            "planned_seeds": t.planned_seeds,
            "baseline": t.baseline,
            "paper_table": t.paper_table,
            "notes": _notes(report, t),
            "rows": [
                {
                    "method": r.method,
                    "group": r.group,
                    "transfer_parameters": r.transfer_parameters,
                    "parameters_from": r.parameters_from,
                    "avg": r.avg,
                    "paper_avg": r.paper_avg,
                    "avg_diff": r.avg_diff,
                    "cells": {task: cell_dict(c) for task, c in r.cells.items()},
                }
                for r in t.rows
            ],
        }
        for t in report.tables
    ]
    return {
        "experiment": report.experiment,
        "scale": stats.SCORE_SCALE,
        "alpha": report.alpha,
        "baseline": report.baseline,
        "bootstrap_resamples": stats.BOOTSTRAP_RESAMPLES,
        "compare": "paper" if report.compare_paper else None,
        "citation": paper.CITATION if report.compare_paper else None,
        "tables": tables,
        "selection": report.selection,
    }


def _json_text(report: Report) -> str:
    import json

    return json.dumps(report_dict(report), indent=2, ensure_ascii=False)
