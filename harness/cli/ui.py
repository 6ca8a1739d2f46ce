"""`harness ui [FILE]`: the MLflow UI over the store's tracking data, on 127.0.0.1."""

from __future__ import annotations

import argparse
import subprocess

from harness.cli.common import STORE_HELP
from harness.store import Store
from harness.tracking import ui_command, ui_urls


def add(commands) -> None:
    ui = commands.add_parser("ui", help="the MLflow UI over the store's tracking data, on 127.0.0.1")
    ui.add_argument("file", nargs="?", default=None, help="experiment file whose store to open (or give --store)")
    ui.add_argument("--store", default=None, help=STORE_HELP + "; ./store without a file")
    ui.add_argument("--port", type=int, default=5000, help="port on 127.0.0.1 (default 5000)")
    ui.add_argument(
        "--full",
        action="store_true",
        help="MLflow's server as it comes (4 workers, its job runner, telemetry); default: a light viewer",
    )
    ui.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    store = Store(args.store)
    command, env = ui_command(store, full=args.full)
    urls = ui_urls(f"http://127.0.0.1:{args.port}", store)
    print(f"MLflow UI on {urls[0]} (Ctrl-C to stop)", *urls[1:], sep="\n  ", flush=True)
    if args.full:  # MLflow's own page: it opens experiments in its GenAI mode unless the address says otherwise
        print('  (an experiment opened another way: click "Model training" at the top left)', flush=True)
    return subprocess.call([*command, "--port", str(args.port)], env=env)
