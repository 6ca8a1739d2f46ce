"""A search under successive halving against the full grid it prunes, from the two sweeps' `harness report`
JSON (the same grids, seeds and budgets; docs/search.md, "Successive halving"): what the halving's search
trials trained against the grid's, which groups chose the same point, the test scores of the chosen points where
they differ, and each table's verdict (every method's average against the baseline's) under both.

    python benchmarks/halving_vs_grid.py docs/results/offline-study/report.json \\
        docs/results/offline-study-sha/report.json --out benchmarks/results/halving_vs_grid.json

The compute comes from the halving report's selection rows (`search_steps`, `search_seconds`, `grid_steps`:
what each search trial trained, every stretch counted, and what the same points would train run to their end).
The grid's own report predates those fields; its steps are the same points' full budgets, and its hours are
estimated at the halving trials' measured seconds per step of the same group.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # its siblings, as a script or loaded by path
from record import write_record  # noqa: E402


def group_id(row: dict) -> tuple[str, str, str]:
    return row["model"], row["method"], row["task"]


def chosen_point(row: dict) -> dict | None:
    return row["points"][row["chosen"]]["point"] if row.get("chosen") is not None else None


def compare(grid: dict, halving: dict) -> dict:
    grid_rows = {group_id(row): row for row in grid["selection"]}
    groups, trained, full, seconds, estimated = [], 0, 0, 0.0, 0.0
    for row in halving["selection"]:
        other = grid_rows.get(group_id(row))
        steps, grid_steps, spent = row.get("search_steps"), row.get("grid_steps"), row.get("search_seconds")
        if steps is None or grid_steps is None:
            raise ValueError(f"{'/'.join(group_id(row))}: the halving report has no search compute (rerun report)")
        trained, full, seconds = trained + steps, full + grid_steps, seconds + spent
        estimated += spent / steps * grid_steps if steps else 0.0
        groups.append(
            {
                "group": "/".join(group_id(row)),
                "stage": row["stage"],
                "halving_point": chosen_point(row),
                "grid_point": chosen_point(other) if other else None,
                "same_point": other is not None and chosen_point(row) == chosen_point(other),
                "halving_test": row.get("test_of_chosen"),
                "grid_test": other.get("test_of_chosen") if other else None,
                "search_steps": steps,
                "grid_steps": grid_steps,
                "search_hours": spent / 3600,
            }
        )
    verdicts = []
    for table in halving["tables"]:
        other = next((t for t in grid["tables"] if t["model"] == table["model"]), None)
        averages = {
            "halving": {row["method"]: row["avg"] for row in table["rows"]},
            "grid": {row["method"]: row["avg"] for row in other["rows"]} if other else {},
        }
        verdicts.append({"model": table["model"], "baseline": table["baseline"], "avg": averages})
    return {
        "groups": groups,
        "same_point": sum(g["same_point"] for g in groups),
        "search_steps": trained,
        "grid_steps": full,
        "step_ratio": trained / full if full else None,
        "search_hours": seconds / 3600,
        "grid_hours_estimated": estimated / 3600,
        "verdicts": verdicts,
    }


def markdown(result: dict) -> str:
    def test(cell):
        if not cell:
            return "–"
        return f"{cell['mean']:.2f} ± {cell['sd']:.2f}" if cell.get("sd") else f"{cell['mean']:.2f}"

    def point(value):
        return ", ".join(f"{k}={v:g}" for k, v in value.items()) if value else "–"

    lines = [
        f"Search compute: {result['search_steps']:,} optimizer steps against the grid's {result['grid_steps']:,} "
        f"({result['step_ratio']:.0%}); {result['search_hours']:.2f} h in the workers against an estimated "
        f"{result['grid_hours_estimated']:.2f} h. Same point chosen in {result['same_point']} of "
        f"{len(result['groups'])} groups.",
        "",
        "| group | steps (halving / grid) | chosen (halving) | chosen (grid) | test (halving) | test (grid) |",
        "|---|---|---|---|---|---|",
    ]
    for g in result["groups"]:
        same = g["same_point"]
        lines.append(
            f"| {g['group']} | {g['search_steps']:,} / {g['grid_steps']:,} | {point(g['halving_point'])} | "
            f"{'same' if same else point(g['grid_point'])} | {test(g['halving_test'])} | "
            f"{'' if same else test(g['grid_test'])} |"
        )
    for verdict in result["verdicts"]:
        lines += ["", f"Average test score per method ({verdict['model']}; baseline {verdict['baseline']}):", ""]
        lines += ["| method | halving | grid |", "|---|---|---|"]
        for method, value in verdict["avg"]["halving"].items():
            grid = verdict["avg"]["grid"].get(method)
            shown = "–" if value is None else f"{value:.2f}"
            lines.append(f"| {method} | {shown} | {'–' if grid is None else f'{grid:.2f}'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("grid", type=Path, help="the grid sweep's report.json")
    parser.add_argument("halving", type=Path, help="the halving sweep's report.json")
    parser.add_argument("--out", type=Path, default=None, help="write the comparison here as JSON")
    args = parser.parse_args(argv)
    result = compare(json.loads(args.grid.read_text()), json.loads(args.halving.read_text()))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_record(args.out, result)
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
