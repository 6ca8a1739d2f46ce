"""The submit's live view: counts per stage and time estimates from finished trials' durations."""

import io
from collections import Counter

import pytest
from rich.console import Console

from harness.cli import main
from harness.progress import LiveView, estimate, line
from harness.scheduler import Progress


def progress() -> Progress:
    p = Progress(total=Counter({1: 4, 2: 10}), slots=2, seconds=125.0)
    p.counts.update({(1, "done"): 4, (2, "done"): 3, (2, "failed"): 1})
    p.running.update({2: 2})
    p.durations = {1: [10.0, 20.0, 30.0, 20.0], 2: [40.0, 60.0, 50.0]}
    return p


def test_estimates_are_mean_duration_times_rounds_left():
    p = progress()
    assert p.left(1) == 0 and p.left(2) == 6
    assert estimate(p, 1) == 0.0
    assert estimate(p, 2) == pytest.approx(50.0 * 3)  # 6 left, 2 at a time, 50 s each
    p.durations[2] = []
    assert estimate(p, 2) is None  # nothing to go on yet
    assert line(progress()) == (
        "[2m05s] stage 1: 4/4 done, 0 running, 0 failed, 0 left, ~0s to go; "
        "stage 2: 3/10 done, 2 running, 1 failed, 6 left, ~2m30s to go"
    )
    blocked = progress()
    blocked.counts[(2, "not run")] = 2  # their source failed: they never ran, and are not left to run either
    assert blocked.left(2) == 4 and "1 failed, 2 not run (a source failed), 4 left" in line(blocked)


def test_off_a_terminal_the_view_prints_plain_lines_only_on_change():
    out = io.StringIO()
    view = LiveView(console=Console(file=out, force_terminal=False, width=200), every=0.0)
    with view:
        view.update(progress())
        view.update(progress())  # unchanged: no second line
        finished = progress()
        finished.counts[(2, "done")] = 9
        finished.running.clear()
        view.update(finished)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "6 left" in lines[0] and "0 left" in lines[1]


def test_the_line_says_what_open_searches_will_add_to_the_estimates():
    out = io.StringIO()
    with LiveView(
        console=Console(file=out, force_terminal=False, width=300), every=0.0, still_to_plan=lambda: 36
    ) as view:
        view.update(progress())
    assert out.getvalue().strip().endswith("~2m30s to go; at least 36 more trials once searches choose")
    assert line(progress(), None) == line(progress(), 0) == line(progress())  # no search open, or none that adds
    out = io.StringIO()
    with LiveView(console=Console(file=out, force_terminal=True, width=120), still_to_plan=lambda: 4) as view:
        view.update(progress())
    assert "at least 4 more trials once searches choose" in out.getvalue()


def test_on_a_terminal_the_view_draws_a_table():
    out = io.StringIO()
    with LiveView(console=Console(file=out, force_terminal=True, width=120)) as view:
        view.update(progress())
    text = out.getvalue()
    assert "stage 2 · transfer" in text and "3/10" in text and "~2m30s" in text


def test_max_concurrent_must_be_positive(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["submit", "experiments/tiny.yaml", "--max-concurrent", "0"])
    assert exit_.value.code == 2 and "--max-concurrent" in capsys.readouterr().err
