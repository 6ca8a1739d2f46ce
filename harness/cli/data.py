"""`harness data prepare SPEC --out DIR`: tasks' raw data in the hub's layout, for machines without internet."""

from __future__ import annotations

import argparse

from scalearn.data import prepare
from scalearn.tasks import BENCHMARKS, get_task


def add(commands) -> None:
    data = commands.add_parser("data", help="task data: fetch ahead for machines without internet")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    prepare = data_commands.add_parser("prepare", help="write tasks' raw data in the hub's layout to a folder")
    prepare.add_argument("spec", help="benchmark or task names, comma-separated (e.g. glue or rte,cb)")
    prepare.add_argument("--out", required=True, help="folder to write (then: --data-dir / SCALEARN_DATA_DIR)")
    prepare.add_argument("--data-dir", default=None, help="read from this folder instead of the HF cache/hub")
    prepare.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    names = []
    for item in args.spec.split(","):
        names.extend(BENCHMARKS.get(item, [item]))
    for name in dict.fromkeys(names):
        written = prepare(get_task(name), args.out, args.data_dir)
        where = f"{len(written)} split file(s) under {written[0].parent}" if written else "ships with the project"
        print(f"{name}: {where}")
    print(f"done; use it with --data-dir {args.out} (or SCALEARN_DATA_DIR={args.out})")
    return 0
