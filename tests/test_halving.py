"""Successive halving (`search: {pruner: sha}`, harness/search.py): every point starts as its full trial and pauses
at the first rung; a rung decides from its points' dev values there alone and promotes the best 1/eta, which go on
from their checkpoints; the group chooses among the whole trials of the last rung."""

import dataclasses
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml
from conftest import shared_ray_address

from harness.cli import main
from harness.plan import make_plan, reached
from harness.scaling import trained_record, trial_cost
from harness.search import promoted, rung_fractions
from harness.selection import selection_markdown, selection_rows
from harness.spec import load_spec
from harness.store import Store

SPEC = {
    "version": 1,
    "name": "halving",
    "models": ["tiny-bert"],
    "methods": ["adapter"],
    "benchmark": "synthetic",
    "targets": ["syn_a_low"],
    "seeds": 2,
    "search": {"pruner": "sha", "eta": 3, "rungs": 2, "adapter": {"learning_rate": [0.0003, 0.003, 0.03]}},
    # 32 examples in 4 batches of 8: 3 epochs of 4 steps, evaluated after each; the first rung is the first epoch
    "hyperparameters": {"all": {"epochs": 3, "patience": 3, "batch_size": 8}},
    "data": {"few_shot": 32},  # all of syn_a_low's train split, said so: the plan then knows each trial's steps
    "resources": {"cpus": 1},
}


PARENT = "mlflow.parentRunId"
FIRST = 1 / 3
"""The first rung's share of a trial's budget (eta 3, 2 rungs): its pause records are named by it."""


def write(tmp_path, name: str, **changes) -> str:
    spec = {**SPEC, **changes}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return str(path)


def test_rungs_are_shares_of_the_budget_and_a_rung_promotes_the_best_third_in_order():
    search = load_spec_from(SPEC).search
    assert rung_fractions(search) == [1 / 3, 1.0]
    assert rung_fractions(search.model_copy(update={"rungs": 3})) == [1 / 9, 1 / 3, 1.0]
    # lower is better: the best ceil(n/3), in the points' order; ties to the earlier point; NaN last
    values = [(0.5, True), (0.2, True), (0.9, True), (0.2, True), (math.nan, True)]
    assert promoted(values, 3) == [1, 3]
    assert promoted(values, 5) == [1]
    assert promoted([(math.nan, None), (math.nan, None)], 3) == [0]
    assert promoted([(0.7, False), (0.8, False), (0.1, False)], 2) == [0, 1]  # higher is better


def load_spec_from(data: dict):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "spec.yaml"
        path.write_text(yaml.safe_dump(data))
        return load_spec(path)


@pytest.mark.slow
def test_halving_pauses_promotes_and_the_promoted_trial_is_the_uninterrupted_one(ray_local, tmp_path, capsys):
    """Three points pause after their first epoch; the best goes on to its end from its checkpoint. Its result is
    the grid's result of the same trial (the same key), step for step; the paused ones' dev curves are the first
    rows of their grid runs'; the group chooses the promoted point and trains its other seed; a resubmit trains
    nothing; a driver killed after the first pause, then resubmitted, gives all of it again."""
    sha, grid = write(tmp_path, "sha"), write(tmp_path, "grid", search={"adapter": SPEC["search"]["adapter"]})
    sha_store, grid_store = Store(tmp_path / "sha-store"), Store(tmp_path / "grid-store")
    assert main(["submit", sha, "--store", str(sha_store.root)]) == 0
    assert main(["submit", grid, "--store", str(grid_store.root)]) == 0
    capsys.readouterr()

    plan = make_plan(load_spec(sha), sha_store)
    (group,) = plan.groups.values()
    search_keys = [keys[0] for keys in group.keys_by_point]
    assert [sha_store.rung(key, FIRST) is not None for key in search_keys] == [True] * 3  # every point paused once
    first = {i: value for i, (value, _) in group.rung_values[0].items()}
    best = min(first, key=lambda i: (first[i], i))
    assert list(group.rung_values[1]) == [best] and group.chosen == best  # one promoted, and chosen
    grid_plan = make_plan(load_spec(grid), grid_store)
    for index, key in enumerate(search_keys):
        full = grid_store.result(key)  # the same trial, run to its end without pausing
        paused = sha_store.rung(key, FIRST)
        assert paused["history"] == full["history"][:1] and paused["losses"] == full["losses"][:4]
        assert paused["steps"] == 4 and paused["paused_at"] == 1
        if index == best:
            result = sha_store.result(key)
            assert result["losses"] == full["losses"] and result["history"] == full["history"]
            assert result["test"] == full["test"] and result["best_dev"] == full["best_dev"]
            assert not (sha_store.artifacts_dir(key) / "checkpoint").exists()  # ended: nothing to go on from
        else:
            assert not sha_store.is_done(key) and (sha_store.artifacts_dir(key) / "checkpoint").exists()
    assert all(reached(trial, sha_store) for trial in plan.trials)
    finals = [t for t in plan.trials if t.key in group.final_keys]
    assert len(finals) == 2 and all(t.point == group.points[best] and sha_store.is_done(t.key) for t in finals)
    assert search_keys[best] in group.final_keys  # the promoted search trial is the final trial of its seed

    def steps(store, trials):  # what was trained: a paused trial's steps at its rung, a finished one's all
        return sum(
            store.result(t.key)["steps"] if store.is_done(t.key) else store.rung(t.key, t.budget)["steps"]
            for t in trials
        )

    assert steps(sha_store, plan.trials) == 3 * 4 + 8 + 12  # three first epochs, the rest of one, its other seed
    # the cost tables count what was trained: stopped points at their rung, the promoted one over both stretches
    assert sum(trained_record(t.key, sha_store)["steps"] for t in plan.trials) == 32
    promoted_wall = trained_record(search_keys[best], sha_store)["wall_seconds"]
    first_stretch = sha_store.rung(search_keys[best], FIRST)["wall_seconds"]
    stretches = first_stretch + sha_store.result(search_keys[best])["wall_seconds"]
    assert promoted_wall == pytest.approx(stretches) and trial_cost(plan.trials, sha_store)["trials"] == 4
    assert steps(grid_store, grid_plan.trials) == 3 * 12 + 12

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=sha_store.tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("halving").experiment_id])
    notes = [r.data.tags.get("mlflow.note.content", "") for r in runs]
    (search_note,) = [note for note in notes if "Successive halving over 2 rungs" in note]  # the search parent's
    assert search_note.count("paused at rung 0 of 2") == 2
    # the stopped points trained all they will: their search parent and the competitor end FINISHED, not FAILED
    parents = [r for r in runs if r.data.tags.get("harness.level") in ("method", "group")]
    assert parents and {r.info.status for r in parents} == {"FINISHED"}
    # the promoted point's seed is a final trial: its run sits with the other final seed, not with the search
    (final_group,) = [r for r in parents if r.info.run_name == "syn_a_low"]

    def under_final_group() -> list[str]:
        runs = client.search_runs([client.get_experiment_by_name("halving").experiment_id])
        return sorted(
            r.data.tags["harness.trial_key"] for r in runs if r.data.tags.get(PARENT) == final_group.info.run_id
        )

    assert under_final_group() == sorted(group.final_keys)
    # the promoted point reaches the tracker twice (its pause, then its end), maybe in one batch: one run
    from harness.tracking.tracker import Tracker

    fresh = Tracker(f"sqlite:///{tmp_path / 'fresh.db'}", "halving", str(tmp_path / "fresh-artifacts"))
    final = next(t for t in plan.trials if t.key == search_keys[best])
    assert fresh.log_trials([dataclasses.replace(final, role="search", rung=0), final], sha_store) == 1
    # logged as it finished while still a search point (a timing this sweep may not hit), its run sat under the
    # search's group: the next submit's end moves it beside the other final seed
    (search_group,) = [r for r in parents if r.info.run_name == "syn_a_low · search"]
    (promoted,) = [r for r in runs if r.data.tags.get("harness.trial_key") == search_keys[best]]  # logged once
    client.set_tag(promoted.info.run_id, PARENT, search_group.info.run_id)
    table = selection_markdown(selection_rows(load_spec(sha), sha_store))
    assert table.count("at rung 0 of 2") == 2 and table.count("✓") == 1  # how far each point went
    # what the search cost against the grid: three first epochs and the promoted point's other two, of 3 × 12
    assert "search trials of its 1 groups trained 20 optimizer steps" in table and "56% of the 36" in table
    assert main(["plan", sha, "--store", str(sha_store.root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sum("rung 0 (1/3 of its budget)" in line for line in lines) == 2
    assert "searches: 1 groups, 1 final trials to follow them; at most 32 optimizer steps" in lines[-1]
    assert main(["submit", sha, "--store", str(sha_store.root)]) == 0
    assert "0 to run" in capsys.readouterr().out
    assert under_final_group() == sorted(group.final_keys)
    # status counts the two points stopped at the first rung as the submit does: trained all they will
    assert main(["status", sha, "--store", str(sha_store.root)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert ", 0 pending" in first and "(2 of the done stopped at a rung of successive halving)" in first, first

    # a fourth point: it trains its first rung; a rung of four promotes two, so the second best of the first rung
    # goes on too; nothing else is trained again (the other records stay as they were, byte for byte)
    def records(store, keys):
        return {key: (store.rung(key, FIRST), store.result(key) if store.is_done(key) else None) for key in keys}

    old_keys = [t.key for t in plan.trials]
    before = records(sha_store, old_keys)
    wider = {"adapter": {"learning_rate": [0.0003, 0.003, 0.03, 0.01]}}
    wider_path = write(tmp_path, "wider", search={**SPEC["search"], **wider})
    assert main(["submit", wider_path, "--store", str(sha_store.root)]) == 0
    (widened,) = make_plan(load_spec(wider_path), sha_store).groups.values()
    assert [keys[0] for keys in widened.keys_by_point[:3]] == search_keys  # the old points are the old trials
    new_key = widened.keys_by_point[3][0]
    changed = {key for key, record in records(sha_store, old_keys).items() if record != before[key]}
    goes_on = set(widened.rung_values[1]) - {best}  # promoted now, not before
    assert len(widened.rung_values[1]) == 2 and changed == {search_keys[i] for i in goes_on if i < 3}
    assert sha_store.rung(new_key, FIRST)["steps"] == 4 and sha_store.is_done(new_key) == (3 in goes_on)
    capsys.readouterr()

    # other pruner settings on the same store (eta 2: the first rung at 1/2 of the budget, still one evaluation):
    # a pause at 1/3 is not taken for one at 1/2; the point still paused pauses there too (going on from its
    # checkpoint, already at that evaluation: nothing trained); two of three points are promoted to the end
    paused_only = [key for key in search_keys if not sha_store.is_done(key)]
    halved = write(tmp_path, "halved", search={**SPEC["search"], "eta": 2})
    assert paused_only and all(sha_store.rung(key, 1 / 2) is None for key in paused_only)
    assert main(["submit", halved, "--store", str(sha_store.root)]) == 0
    (again,) = make_plan(load_spec(halved), sha_store).groups.values()
    for key in paused_only:
        assert sha_store.rung(key, 1 / 2)["history"] == sha_store.rung(key, FIRST)["history"]
        assert sha_store.rung(key, 1 / 2)["steps"] == 4
    assert len(again.rung_values[1]) == 2 and all(sha_store.is_done(search_keys[i]) for i in again.rung_values[1])
    capsys.readouterr()

    # a driver SIGKILLed once the first point has paused, then a resubmit: the same pauses, promotion and choice,
    # and the promoted trial's result bit for bit
    killed = Store(tmp_path / "killed-store")
    command = [sys.executable, "-m", "harness.cli", "submit", sha, "--store", str(killed.root)]
    driver = subprocess.Popen([*command, "--address", shared_ray_address()], start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not any(killed.rung(key, FIRST) for key in search_keys):
        time.sleep(0.1)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    assert not killed.is_done(search_keys[best])  # killed before the promotion
    assert main(["submit", sha, "--store", str(killed.root)]) == 0
    (again,) = make_plan(load_spec(sha), killed).groups.values()
    assert again.rung_values == group.rung_values and again.chosen == group.chosen
    for key in search_keys:
        assert killed.rung(key, FIRST)["history"] == sha_store.rung(key, FIRST)["history"]
    assert killed.result(search_keys[best])["losses"] == sha_store.result(search_keys[best])["losses"]


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ({"eta": 1}, "search.eta: 1: a rung keeps 1/eta of its points (expected an integer ≥ 2)"),
        ({"rungs": 1}, "search.rungs: 1: halving needs a first rung and a last (expected ≥ 2)"),
        ({"rungs": 3}, "search.rungs: the first rung, 1/9 of the budget, is shorter than one of adapter's 3"),
        ({"adapter": {"learning_rate": [0.003]}}, "search.adapter: one point: successive halving needs at least 2"),
    ],
)
def test_a_halving_that_cannot_run_is_one_line_naming_the_key(search, expected, tmp_path, capsys):
    path = write(tmp_path, "bad", search={**SPEC["search"], **search})
    assert main(["validate", path]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"{path}:{expected}"), err


def paused(store, key, loss: float, share: float = FIRST) -> None:
    store.write_rung(key, share, {"best_dev": {"loss": loss}, "selected_by": "loss", "task": "syn_a_low"})


def test_a_point_whose_first_attempt_failed_and_that_then_paused_is_not_failed(tmp_path):
    """Ray retries a trial whose first attempt raised: the retry's pause at a rung is what holds, so the best
    point is promoted, and a promoted point that then runs to its end is chosen, not ranked last as failed."""
    spec = load_spec_from(SPEC)
    store = Store(tmp_path / "store")
    (group,) = make_plan(spec, store).groups.values()
    keys = [point_keys[0] for point_keys in group.keys_by_point]
    store.write_failure(keys[1], 1, "Traceback\nRuntimeError: out of memory")  # its first attempt
    for key, loss in zip(keys, [0.5, 0.2, 0.4], strict=True):
        paused(store, key, loss)
    assert store.state(keys[1]) != "failed"
    (group,) = make_plan(spec, store).groups.values()
    assert group.rung_values[1] == {1: None}  # promoted, and planned to go on from its pause
    store.write_result(keys[1], {"best_dev": {"loss": 0.1}, "selected_by": "loss", "task": "syn_a_low", "tasks": {}})
    (group,) = make_plan(spec, store).groups.values()
    assert group.chosen == 1


def test_halving_leaves_another_groups_final_trial_whole(tmp_path):
    """The adapter baseline's final trial at seed 1 is the search trial of the source adapter's group at its seed
    1 (`source_seed: 1`), one key. Halving plans its own points to pause at a rung, never the final trial another
    group needs whole; the two groups keep ids of their own (their choices are recorded apart)."""
    spec = load_spec_from({**SPEC, "methods": ["adapter", "scalearn"], "seeds": 3, "source_seed": 1})
    store = Store(tmp_path / "store")
    groups = [g for g in make_plan(spec, store).groups.values() if g.task == "syn_a_low"]
    baseline = next(g for g in groups if g.searched_seeds == [0])
    for point_keys, loss in zip(baseline.keys_by_point, [0.5, 0.2, 0.4], strict=True):
        paused(store, point_keys[0], loss)
    best = baseline.keys_by_point[1][0]
    store.write_result(best, {"best_dev": {"loss": 0.1}, "selected_by": "loss", "task": "syn_a_low", "tasks": {}})
    plan = make_plan(spec, store)
    baseline = next(g for g in plan.groups.values() if g.task == "syn_a_low" and g.searched_seeds == [0])
    assert baseline.chosen == 1 and len(baseline.final_keys) == 3
    trials = {t.key: t for t in plan.trials}
    assert [(trials[k].role, trials[k].rung) for k in baseline.final_keys] == [("final", None)] * 3
    ids = [g.id for g in plan.groups.values() if g.task == "syn_a_low"]
    assert len(ids) == len(set(ids)) == 2


def test_a_group_that_selects_on_a_metric_says_higher_is_better_while_it_searches(tmp_path):
    """Before a group chooses, its direction comes from the values it has: the status line's 'best so far' and
    the selection table's arrow are right for a metric, not only once it has chosen."""
    hyperparameters = {"all": {**SPEC["hyperparameters"]["all"], "select_by": "metric"}}
    search = {"adapter": SPEC["search"]["adapter"]}  # a grid, no pruner
    spec = load_spec_from({**SPEC, "search": search, "hyperparameters": hyperparameters})
    store = Store(tmp_path / "store")
    (group,) = make_plan(spec, store).groups.values()
    first = group.keys_by_point[0][0]
    store.write_result(first, {"best_dev": {"score": 0.7}, "selected_by": "metric", "task": "syn_a_low"})
    (group,) = make_plan(spec, store).groups.values()
    assert group.chosen is None and group.lower_is_better is False
