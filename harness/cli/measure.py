"""`harness measure FILE`: the checks of whether a trial learned anything (the best constant's dev loss, the
scale of each source against its layer, a trained adapter's own scale), added to finished trials recorded
before these checks existed, so that `harness status` and `harness report` can name a broken source or a trial
no better than a constant in an old store. The store's own MLflow runs gain them as metrics too."""

from __future__ import annotations

import argparse
import time

from harness.cli.common import add_file, load
from harness.store import Store


def add(commands) -> None:
    command = commands.add_parser(
        "measure",
        help="add the learned-anything checks to finished trials recorded without them (an older store)",
    )
    add_file(command)
    command.add_argument(
        "--data-dir",
        default=None,
        help="task data as `harness data prepare` writes it (default: $SCALEARN_DATA_DIR, else HF cache/hub)",
    )
    command.add_argument("--dry-run", action="store_true", help="list the trials that lack the checks; measure none")
    command.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from harness.trial import CHECKS, remeasure_trial

    store = Store(args.store)
    spec, planned = load(args, store)
    done = store.done_keys(t.key for t in planned.trials)
    lacking = [t for t in planned.trials if t.key in done and t.imported is None and _lacks_checks(store.result(t.key))]
    print(f"{len(lacking)} finished trial(s) recorded without the checks ({', '.join(CHECKS)})")
    if args.dry_run:
        for trial in lacking:
            print(f"  {trial.key} {trial.method} {trial.task} {trial.model} seed {trial.seed}")
        return 0
    for index, trial in enumerate(lacking, 1):
        found = remeasure_trial(trial, store, data_dir=args.data_dir)
        record = store.result(trial.key)
        note = {"at": time.time(), "checks": sorted(found)}  # measured after the trial, not by it
        store.write_result(trial.key, {**record, **found, "remeasured": note})
        sources = [(name, s) for name, s in (found.get("source_scales") or {}).items() if name != "mixed"]
        loudest = max(sources, key=lambda item: item[1]["ratio"], default=None)
        said = f", loudest source {loudest[0]} {loudest[1]['ratio']:.2f}x" if loudest else ""
        own = found.get("adapter_scale")
        said += f", its adapter {own['ratio']:.2f}x" if own else ""
        print(f"[{index}/{len(lacking)}] {trial.method} {trial.task} {trial.model} seed {trial.seed}{said}")
    # the store's own MLflow: each measured trial's run gains them too (those of an earlier, interrupted measure
    # included; a run that has them is left as it is)
    measured = [t for t in planned.trials if t.key in done and "remeasured" in store.result(t.key)]
    if measured and store.has_tracking:
        from harness.tracking import open_tracker

        tracker = open_tracker(store, spec.name, args.file, targets=spec.target_list())
        added = sum(tracker.add_checks(t, store.result(t.key)) for t in measured)
        print(f"added {added} metric(s) to the trials' MLflow runs")
    return 0


def _lacks_checks(record: dict) -> bool:
    """Recorded before the checks: every trial since records the best constant's dev loss (a trial without a dev
    split excepted, which `measure` then marks as measured)."""
    return not record.get("constant_dev_loss") and "remeasured" not in record
