"""A report written out: its tables in every format, the sweep's figures, the scaling tables and figures of a
sweep over several backbones, and (where the store tracks to MLflow) all of it attached to the experiment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.plan import Trial
from harness.plots import report_figures
from harness.report.model import Report
from harness.report.render import write_report
from harness.scaling import write_scaling
from harness.store import Store


@dataclass
class Published:
    written: list[Path]  # the table files
    figures: dict  # "sweep": the report's figures; the rest per trial, as harness.plots gives them
    logged: bool  # attached to the MLflow experiment


def publish(
    report: Report, trials: list[Trial], store: Store, targets: list[str], out_dir, source=None, earlier=()
) -> Published:
    """Write ``report`` and its figures under ``out_dir``; attach them to the sweep's MLflow experiment as the
    `report` run when the store tracks (``source``: the experiment file, MLflow's source name; ``earlier``: the
    scaling points of an earlier report that join this one's, `harness.scaling.earlier_points`)."""
    written = write_report(report, out_dir)
    figures = report_figures(trials, store, targets, out_dir, report.few_shot)
    scaling_tables, scaling_figures = write_scaling(report, trials, store, out_dir, earlier)
    written += scaling_tables
    figures["sweep"] += scaling_figures
    if store.has_tracking:
        from harness.tracking import store_tracker  # MLflow only when there is something to attach to

        store_tracker(store, report.experiment, source).log_report(written, figures)
    return Published(written, figures, store.has_tracking)
