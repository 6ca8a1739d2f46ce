"""`harness plan FILE [--json]`: the trials an experiment file needs, in stage order, done or not."""

from __future__ import annotations

import argparse
import json

from harness.cli.common import add_file, load
from harness.store import Store


def add(commands) -> None:
    command = commands.add_parser("plan", help="the trials an experiment file needs, in stage order")
    add_file(command)
    command.add_argument("--json", action="store_true", help="a JSON array instead of lines")
    command.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    store = Store(args.store)
    _, planned = load(args, store)
    rows = [{**t.summary(), "done": store.is_done(t.key)} for t in planned.trials]
    waiting = planned.waiting
    if args.json:
        print(json.dumps(rows + [{**row, "done": False} for row in waiting], indent=2))
        return 0
    for row in rows:
        mark = "done" if row["done"] else "todo"
        deps = f" ← {len(row['depends_on'])} sources" if row["depends_on"] else ""
        task = f"{row['task']} ({len(row['tasks'])} tasks)" if row.get("tasks") else row["task"]
        print(
            f"{row['key']}  stage {row['stage']}  {mark}  {row['role']:6s} {row['method']:20s} {task:16s} "
            f"seed {row['seed']:<3d} {row['model']}{deps}" + (f"  {row['point']}" if "point" in row else "")
        )
    if waiting:
        groups = {(r["model"], r["method"], r["task"]): r["waits_for"] for r in waiting}
        for (model, method, task), sources in groups.items():
            print(f"(waiting)  stage 2  {method} {task} {model}: planned once the search of {', '.join(sources)} chose")
    print(
        f"{len(rows)} trials, {sum(r['done'] for r in rows)} done" + (f"; {len(waiting)} more wait" if waiting else "")
    )
    return 0
