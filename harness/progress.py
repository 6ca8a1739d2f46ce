"""The live view of a submit: per stage, trials done / running / failed / left and a time estimate.

On a terminal a rich table redrawn in place; elsewhere (CI, a log file) one plain line per change, at most
every ``every`` seconds, so logs stay short. Estimates: the mean time a finished trial of the stage took
in its worker (not counting its wait in Ray's queue, which would inflate it), times the rounds still needed
at the current parallelism.
"""

from __future__ import annotations

import math
import statistics
import time

from harness.scheduler import Progress

STAGE_NAMES = {1: "stage 1 · source adapters", 2: "stage 2 · transfer"}


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def estimate(progress: Progress, stage: int) -> float | None:
    """Seconds until the stage's trials are all finished; None while no trial of it has finished yet."""
    left = progress.left(stage)
    if left == 0:
        return 0.0
    durations = progress.durations.get(stage) or []
    if not durations:
        return None
    slots = progress.slots or max(1, progress.running[stage])
    return statistics.mean(durations) * math.ceil(left / slots)


def rows(progress: Progress) -> list[dict]:
    out = []
    for stage in (1, 2):
        if not progress.total[stage]:
            continue
        out.append(
            {
                "stage": stage,
                "name": STAGE_NAMES[stage],
                "total": progress.total[stage],
                "done": progress.counts[(stage, "done")],
                "running": progress.running[stage],
                "failed": progress.counts[(stage, "failed")],
                "not_run": progress.counts[(stage, "not run")],
                "left": progress.left(stage),
                "eta": estimate(progress, stage),
            }
        )
    return out


def still_to_plan_note(count: int | None) -> str:
    """What the estimates leave out: the trials that searches still open will add once they choose (at least)."""
    return f"at least {count} more trials once searches choose" if count else ""


def line(progress: Progress, still_to_plan: int | None = None) -> str:
    parts = [
        f"stage {r['stage']}: {r['done']}/{r['total']} done, {r['running']} running, {r['failed']} failed, "
        + (f"{r['not_run']} not run (a source failed), " if r["not_run"] else "")
        + f"{r['left']} left, ~{_duration(r['eta'])} to go"
        for r in rows(progress)
    ]
    note = still_to_plan_note(still_to_plan)
    return f"[{_duration(progress.seconds)}] " + "; ".join(parts + ([note] if note else []))


class LiveView:
    """``with LiveView() as view: run_trials(..., on_update=view.update)``."""

    def __init__(self, console=None, every: float = 10.0, still_to_plan=None):
        from rich.console import Console

        self.console = console or Console()
        self.every = every
        self.still_to_plan = still_to_plan or (lambda: None)  # the trials not planned yet (Plan.still_to_plan)
        self.live = None
        self.last: tuple = ()
        self.printed_at = 0.0
        self.progress: Progress | None = None

    def table(self, progress: Progress):
        from rich.table import Table

        note = still_to_plan_note(self.still_to_plan())
        table = Table(
            title=f"harness submit · {_duration(progress.seconds)} elapsed",
            title_justify="left",
            caption=f"(and {note})" if note else None,
            caption_justify="left",
        )
        for header in ("stage", "done", "running", "failed", "left", "time left"):
            table.add_column(header, justify="left" if header == "stage" else "right")
        for r in rows(progress):
            failed = f"[red]{r['failed']}[/red]" if r["failed"] else "0"
            table.add_row(
                r["name"],
                f"{r['done']}/{r['total']}",
                str(r["running"]),
                failed,
                str(r["left"]),
                "~" + _duration(r["eta"]) if r["left"] else "done",
            )
        return table

    def update(self, progress: Progress) -> None:
        self.progress = progress
        if self.live is not None:
            self.live.update(self.table(progress))
            return
        state = tuple(sorted(progress.counts.items())) + tuple(sorted(progress.running.items()))
        finished = all(r["left"] == 0 for r in rows(progress))
        if state != self.last and (finished or time.monotonic() - self.printed_at >= self.every):
            self.console.print(line(progress, self.still_to_plan()), highlight=False, soft_wrap=True)
            self.last, self.printed_at = state, time.monotonic()

    def __enter__(self) -> LiveView:
        if self.console.is_terminal:
            from rich.live import Live

            self.live = Live(console=self.console, refresh_per_second=4, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)
            self.live = None
