"""`harness submit FILE`: run on Ray what is not done yet, then print what ran, what failed and the results."""

from __future__ import annotations

import argparse

from harness.cli.common import add_file, positive_int
from harness.report import results_table
from harness.spec import load_spec


def add(commands) -> None:
    command = commands.add_parser("submit", help="run what is not done yet, on Ray")
    add_file(command)
    command.add_argument(
        "--address", default=None, help="a Ray cluster (default: $RAY_ADDRESS inside a Ray job, else a new local Ray)"
    )
    command.add_argument(
        "--num-cpus", type=positive_int, default=None, help="CPUs of the local Ray (default: all of this machine's)"
    )
    command.add_argument(
        "--data-dir",
        default=None,
        help="task data as `harness data prepare` writes it (default: $SCALEARN_DATA_DIR, else HF cache/hub)",
    )
    command.add_argument(
        "--max-concurrent",
        type=positive_int,
        default=None,
        metavar="N",
        help="at most N trials handed to Ray at once (default: as many as fit)",
    )
    command.add_argument(
        "--skip-preflight",
        action="store_true",
        help="start the trials without first checking resources, models and data (harness/preflight.py)",
    )
    command.add_argument(
        "--tracking-uri",
        default=None,
        help="an MLflow server or database (default: the store's own SQLite database, written directly)",
    )
    command.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from harness.submit import submit  # Ray and MLflow: only once a submit is asked for

    outcome = submit(
        load_spec(args.file, args.set or ()),
        store=args.store,
        address=args.address,
        tracking_uri=args.tracking_uri,
        num_cpus=args.num_cpus,
        data_dir=args.data_dir,
        max_concurrent=args.max_concurrent,
        preflight=not args.skip_preflight,
        source=args.file,
    )
    for text in what_ran(outcome):
        print(text)
    if outcome.retried_alone:
        print(f"  {len(outcome.retried_alone)} packed trials ran out of memory and were rerun on a whole GPU")
    print(results_table(outcome.trials, outcome.store, outcome.spec.target_list(), outcome.spec.data.few_shot))
    if args.tracking_uri is None:
        where = f"open the UI with: harness ui --store {args.store}"
    else:
        where = f"its UI is the tracking server's, {args.tracking_uri}"
    print(f"MLflow: experiment {outcome.spec.name!r}; {where}")
    return 0 if outcome.ok else 1


def what_ran(outcome) -> list[str]:
    """What a submit says it ran: the count, each failure named as `harness status` names a trial, and the trials
    a failed source kept from running (not failures of their own)."""
    named = {t.key: t for t in outcome.trials}

    def label(key: str) -> str:
        trial = named.get(key)
        return f"{trial.method} {trial.task} {trial.model} seed {trial.seed} ({key[:8]})" if trial else key

    lines = []
    if outcome.ran or outcome.seconds:
        ran_now = [key for key in outcome.failed if key not in outcome.ran]
        lines.append(f"ran {len(outcome.ran)} trials in {outcome.seconds:.1f} s; {len(ran_now)} failed")
    lines += [f"  failed {label(key)}: {reason}" for key, reason in outcome.failed.items()]
    for source in dict.fromkeys(outcome.not_run.values()):
        count = sum(blocked_by == source for blocked_by in outcome.not_run.values())
        lines.append(f"  not run: {count} trials, because their source {label(source)} failed (a resubmit runs them)")
    return lines
