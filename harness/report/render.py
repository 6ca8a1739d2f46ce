"""The report as text: markdown, LaTeX, CSV and JSON, and the files `harness report --out` writes."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from pathlib import Path

from harness import paper, stats
from harness.report.model import BOOTSTRAP_MARK, FORMATS, MISSING, WELCH_MARK, Cell, Report, Table
from harness.report.notes import table_notes
from harness.selection import selection_csv, selection_markdown
from scalearn.atomic import atomic_write


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
        lines += [""] + [f"- {note}" for note in table_notes(report, table)]
        parts.append("\n".join(lines))
    if report.selection:
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
        lines += [latex_escape(note) + r"\par" for note in table_notes(report, table)] + ["}"]
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
            "notes": table_notes(report, t),
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
    """JSON that every parser reads: a score that is not a number (NaN, a regression's diverged outputs) is null."""
    return json.dumps(_finite(report_dict(report)), indent=2, ensure_ascii=False, allow_nan=False)


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
