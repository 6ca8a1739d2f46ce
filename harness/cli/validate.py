"""`harness validate FILE`: check an experiment file; print ok and its trials."""

from __future__ import annotations

import argparse

from harness.cli.common import add_file, load


def add(commands) -> None:
    command = commands.add_parser("validate", help="check an experiment file; print ok and its trials")
    add_file(command, store=False)
    command.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    spec, planned = load(args)
    trials = planned.trials
    stages = {stage: sum(t.stage == stage for t in trials) for stage in (1, 2)}
    searched = sum(t.role == "search" for t in trials)
    after = f"; {searched} search trials, the final ones planned when their search is done" if spec.search else ""
    if spec.search.sampler == "tpe":
        after += " (tpe: the first points of each group; it proposes the rest as their results come in)"
    print(f"ok: {len(trials)} trials ({stages[1]} stage 1, {stages[2]} stage 2) in {spec.name}{after}")
    return 0
