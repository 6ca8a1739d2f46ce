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
    report: Report,
    trials: list[Trial],
    store: Store,
    targets: list[str],
    out_dir,
    source=None,
    earlier=(),
    tracking_uri: str | None = None,
) -> Published:
    """Write ``report`` and its figures under ``out_dir``; attach them to the sweep's MLflow experiment as the
    `report` run: in ``tracking_uri`` (a server or database the sweep was submitted to), else in the store's own
    database when it has one (``source``: the experiment file, MLflow's source name; ``earlier``: the scaling
    points of an earlier report that join this one's, `harness.scaling.earlier_points`)."""
    written = write_report(report, out_dir)
    figures = report_figures(trials, store, targets, out_dir, report.few_shot)
    scaling_tables, scaling_figures = write_scaling(report, trials, store, out_dir, earlier)
    written += scaling_tables
    figures["sweep"] += scaling_figures
    logged = tracking_uri is not None or store.has_tracking
    if logged:
        from harness.tracking.tracker import open_tracker  # MLflow only when there is something to attach to

        open_tracker(store, report.experiment, source, tracking_uri).log_report(written, figures)
    return Published(written, figures, logged)
