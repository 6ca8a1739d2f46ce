"""`harness status FILE`: done / running / failed / pending per stage, each search's state, and why a trial
failed; exit 1 when one did."""

from __future__ import annotations

import argparse
import time
from collections import Counter

from harness.cli.common import add_file, load
from harness.plan import finals, planned_steps, reached_keys
from harness.selection import status_lines
from harness.store import STATES, Store
from scalearn.layout import read_live_progress, read_progress
from scalearn.result import SWAMPING_RATIO, ended_improving, learned_nothing, swamping_adapter, swamping_sources


def add(commands) -> None:
    command = commands.add_parser("status", help="done / running / failed / pending per stage, and each search's state")
    add_file(command)
    command.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    store = Store(args.store)
    spec, planned = load(args, store)
    trials = planned.trials
    states = {t.key: store.state(t.key) for t in trials}
    # successive halving: a point stopped at a rung has trained all it will, as a submit counts it
    stopped = {key for key in reached_keys(trials, store) if states[key] == "pending"}
    states.update(dict.fromkeys(stopped, "done"))
    counts = Counter((t.stage, states[t.key]) for t in trials)
    for stage in (1, 2):
        total = sum(counts[(stage, state)] for state in STATES)
        line = f"stage {stage}: " + ", ".join(f"{counts[(stage, state)]} {state}" for state in STATES) + f" / {total}"
        halted = sum(t.stage == stage and t.key in stopped for t in trials)
        print(line + (f" ({halted} of the done stopped at a rung of successive halving)" if halted else ""))
    for line in running_lines([t for t in trials if states[t.key] == "running"], store):
        print(line)
    if spec.search:
        for line in status_lines(spec, store, planned.groups.values()):
            print(line)
    done = [t for t in finals(trials) if states[t.key] == "done" and t.key not in stopped]
    improving = [t for t in done if ended_improving(store.result(t.key))]
    _name_some(improving, "ended still improving (best evaluation = last; more steps may help)", with_model=False)
    flat = [t for t in done if learned_nothing(store.result(t.key))]
    _name_some(
        flat, "did no better on dev than a constant prediction (their dev loss is not below the best constant's)"
    )
    # a source's own trial counts once it is a source (a search point that lost is no one's)
    used = [t for t in trials if states[t.key] == "done" and (t.stage == 2 or t.role == "final")]
    swamped = swamping_sources_of(used, store)
    if swamped:
        print(
            f"source(s) whose output dwarfs its layer's (above {SWAMPING_RATIO:g}x): {'; '.join(swamped)}; a transfer "
            "trial that mixes one measures a broken source: check the source's own trial"
        )
    failed = [t for t in trials if states[t.key] == "failed"]
    for trial in failed:
        reason = (store.failure(trial.key) or {}).get("traceback", "").strip().splitlines()[-1:]
        print(f"  failed {trial.key} {trial.method} {trial.task} seed {trial.seed}: {' '.join(reason)}")
    return 1 if failed else 0


def running_lines(trials, store: Store, now: float | None = None) -> list[str]:
    """A line per running trial: how far it got at its last evaluation (the progress file every evaluation writes
    beside the checkpoint), the best dev loss so far and how long ago that was; and, where its last checkpoint
    (every `checkpoint_every`-th evaluation) is further back, where a trial stopped now would go on from."""
    now = time.time() if now is None else now
    lines = []
    for trial in trials:
        point = "".join(f" {k}={v}" for k, v in (trial.point or {}).items())
        name = f"running {trial.method} {trial.task} {trial.model} seed {trial.seed}{point}"
        if store.remote:  # its checkpoint is on the node that runs it
            lines.append(f"  {name}")
            continue
        live = read_live_progress(store.checkpoint_dir(trial.key))
        if live is None:  # a run from before the progress file: its checkpoint's
            saved = read_progress(store.checkpoint_dir(trial.key)) or {}
            times = saved.get("evaluation_times") or [None]
            live = {**saved, "evaluation_time": times[-1], "checkpointed_at": saved.get("evaluations")}
        if not live.get("evaluations"):
            lines.append(f"  {name}: no evaluation yet")
            continue
        total = planned_steps(trial)
        steps = f"step {live['step']}" + (f" of {total}" if total else "")
        best = live.get("best") or {}
        loss = (best.get("selected") or {}).get("loss")
        best_text = f", best dev loss {loss:.4f} at step {best.get('step')}" if loss is not None else ""
        ago = (now - live["evaluation_time"]) / 60 if live.get("evaluation_time") else None
        when = f"; its last evaluation {ago:.0f} min ago" if ago is not None else ""
        at = live.get("checkpointed_at")
        if at != live["evaluations"]:  # `checkpoint_every` > 1 or 0: a stop now loses the evaluations since
            when += f"; stopped now, it would go on from evaluation {at}" if at else "; no checkpoint yet"
        lines.append(f"  {name}: {steps}, {live['evaluations']} evaluation(s){best_text}{when}")
    return lines


def _name_some(trials, what: str, with_model: bool = True) -> None:
    """One line: how many final trials ``what``, and the first five by name."""
    if not trials:
        return
    names = ", ".join(f"{t.method} {t.task}{f' {t.model}' if with_model else ''} seed {t.seed}" for t in trials[:5])
    more = f" and {len(trials) - 5} more" if len(trials) > 5 else ""
    print(f"{len(trials)} final trial(s) {what}: {names}{more}")


def swamping_sources_of(trials, store: Store) -> list[str]:
    """Each source that swamps its layer, as its own trial measured it (stage 1) or a transfer trial that mixed it
    did (stage 2): "name on model: its largest ratio (layer; how many transfer trials mixed it)"."""
    largest: dict[tuple[str, str], dict] = {}
    mixed: Counter = Counter()
    for trial in trials:
        result = store.result(trial.key)
        if trial.stage == 1:
            own = swamping_adapter(result)
            loud = {trial.task: own} if own is not None else {}
        else:
            loud = swamping_sources(result)
        for source, scale in loud.items():
            seen = largest.get((source, trial.model))
            if seen is None or scale["ratio"] > seen["ratio"]:
                largest[(source, trial.model)] = scale
            mixed[(source, trial.model)] += trial.stage == 2
    return [
        f"{source} on {model} {s['ratio']:.1f}x (layer {s['layer']}; mixed by {mixed[(source, model)]} transfer "
        "trial(s) so far)"
        for (source, model), s in sorted(largest.items())
    ]
