"""`harness report FILE [--out DIR]`: the paper's tables from the store, printed; with --out also written in
every format with the figures, and attached to the sweep in MLflow."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.cli.common import add_file, load
from harness.report import FORMATS, build_report, render
from harness.store import Store


def add(commands) -> None:
    report = commands.add_parser("report", help="paper tables from the store: mean ± sd over seeds, significance")
    add_file(report)
    report.add_argument("--format", default="md", help="md, latex, csv or json (default md), printed to stdout")
    report.add_argument(
        "--out",
        default=None,
        help="also write report.md/.tex/.csv/.json (with a search: selection.csv) and figures/ to this folder",
    )
    report.add_argument(
        "--earlier",
        default=None,
        metavar="DIR",
        help="with --out: an earlier report's --out folder of this experiment; its backbones' scaling points join "
        "this store's in the scaling tables and figures (backbones this store holds are read from the store)",
    )
    report.add_argument(
        "--tracking-uri",
        default=None,
        help="with --out: the MLflow server or database the sweep was submitted to with --tracking-uri, where the "
        "report is attached (default: the store's own database)",
    )
    report.add_argument("--baseline", default="adapterfusion", help="significance against this method")
    report.add_argument("--compare", default=None, help="paper: the published numbers beside ours, with Δ")
    report.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.format not in FORMATS:
        raise ValueError(f"unknown --format {args.format!r} (expected one of {', '.join(FORMATS)})")
    if args.compare not in (None, "paper"):
        raise ValueError(f"unknown --compare {args.compare!r} (expected paper)")
    if args.tracking_uri is not None and args.out is None:
        raise ValueError("--tracking-uri: only with --out (what is attached is the files written there)")
    if args.earlier is not None and args.out is None:
        raise ValueError("--earlier: only with --out (the scaling tables and figures are written there)")
    if args.earlier is not None and Path(args.earlier).resolve() == Path(args.out).resolve():
        raise ValueError(f"--earlier {args.earlier}: is the --out folder, whose report this one would replace")
    store = Store(args.store)
    if not store.exists():
        raise ValueError(f"no results store at {args.store} (expected the --store folder a submit wrote)")
    spec, planned = load(args, store)
    trials = planned.trials
    report = build_report(spec, trials, store, args.baseline, args.compare == "paper", groups=planned.groups.values())
    print(render(report, args.format))
    if args.out is not None:
        from harness.report.publish import publish  # the figures need matplotlib: only when writing them
        from harness.scaling import earlier_points

        earlier = earlier_points(args.earlier, report) if args.earlier is not None else []
        published = publish(
            report, trials, store, spec.target_list(), args.out, args.file, earlier, tracking_uri=args.tracking_uri
        )
        print(
            f"wrote {', '.join(str(path) for path in published.written)} and {len(published.figures['sweep'])} "
            f"figures under {Path(args.out) / 'figures'}",
            file=sys.stderr,
        )
        if published.logged:
            where = f"at {args.tracking_uri}" if args.tracking_uri else f"harness ui --store {args.store}"
            print(f"attached to MLflow experiment {spec.name!r} (run 'report'); {where}", file=sys.stderr)
    return 0
