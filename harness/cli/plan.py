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
    from harness.plan import planned_steps, reached_keys, search_cost  # the plan resolves methods: not for `ui`

    store = Store(args.store)
    spec, planned = load(args, store)
    reached = reached_keys(planned.trials, store)
    rows = [{**t.summary(), "done": t.key in reached, "steps": planned_steps(t)} for t in planned.trials]
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
            f"seed {row['seed']:<3d} {row['model']}{deps}"
            + (f"  {row['point']}" if "point" in row else "")
            + (f"  rung {row['rung']} ({_share(row['budget'])} of its budget)" if "rung" in row else "")
        )
    if waiting:
        groups = {(r["model"], r["method"], r["task"]): r["waits_for"] for r in waiting}
        for (model, method, task), sources in groups.items():
            print(f"(waiting)  stage 2  {method} {task} {model}: planned once the search of {', '.join(sources)} chose")
    print(
        f"{len(rows)} trials, {sum(r['done'] for r in rows)} done" + (f"; {len(waiting)} more wait" if waiting else "")
    )
    if planned.groups:
        cost = search_cost(planned, spec.search)
        unknown = cost["trials_of_unknown_steps"]
        print(
            f"searches: {len(planned.groups)} groups, {cost['final_trials_to_follow']} final trials to follow them; "
            f"at most {cost['max_steps']:,} optimizer steps for the searches and those final trials"
            + (f" (and {unknown} trials whose steps depend on their data)" if unknown else "")
        )
    return 0


def _share(budget: float) -> str:
    """A rung's share of the budget as a reader writes it: 1/9, 1/3, all."""
    return "all" if budget >= 1 else f"1/{round(1 / budget)}"
