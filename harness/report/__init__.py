"""Results → paper tables: one per model, rows = methods grouped as the paper, columns = target tasks + Avg
+ transfer parameters per target; significance against a baseline; optionally the paper's numbers beside ours.

Scores are the test value of each task's reported metric ×100 (docs/method.md §4.2); a cell is the mean ± sd
(ddof=1) over seeds; Avg is the unweighted mean of a row's task means. Torch-free at import; the registry
lookups inside the functions import scalearn.

The package: `model` (the tables as data), `notes` (their footnotes), `render` (md, LaTeX, CSV, JSON and
the files), `summary` (the short table a submit prints).
"""

from harness.report.model import (
    ALPHA,
    DEFAULT_BASELINE,
    FORMATS,
    MISSING,
    Cell,
    Report,
    Row,
    Table,
    build_report,
)
from harness.report.render import latex_escape, render, report_dict, write_report
from harness.report.summary import results_table

__all__ = [
    "ALPHA",
    "DEFAULT_BASELINE",
    "FORMATS",
    "MISSING",
    "Cell",
    "Report",
    "Row",
    "Table",
    "build_report",
    "latex_escape",
    "render",
    "report_dict",
    "results_table",
    "write_report",
]
