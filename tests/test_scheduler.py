"""The scheduler on real Ray with stand-in trial bodies: the DAG order, retries then a recorded failure,
and two submits at once training each trial once (leases in the store)."""

import threading
import time

import pytest

from harness.plan import expand
from harness.scheduler import run_trials
from harness.spec import ExperimentSpec
from harness.store import Store

SPEC = dict(
    version=1,
    models=["tiny-bert"],
    methods=["adapter", "scalearn"],
    benchmark="synthetic",
    targets=["syn_a_low", "syn_c"],
    sources=["syn_a", "syn_b", "syn_c", "syn_a_low"],
    seeds=2,
)


@pytest.fixture(scope="module")
def ray_cluster():
    from conftest import local_ray

    return local_ray()


def logging_body(log_dir, delay=0.0, fail_task=None):
    def body(trial, store, **_):
        import os
        import time

        for key in trial.depends_on:  # the DAG: every source is finished before a transfer trial starts
            assert store.is_done(key), f"{trial.key} started before its source {key}"
        with open(os.path.join(log_dir, "runs.log"), "a") as f:
            f.write(f"{trial.key}\n")
        time.sleep(delay)
        if trial.task == fail_task:
            raise RuntimeError(f"boom in {trial.task}")
        return {"trial": trial.summary(), "test": {"accuracy": 0.5}}

    return body


def runs(log_dir) -> list[str]:
    path = log_dir / "runs.log"
    return path.read_text().split() if path.exists() else []


def test_dag_order_and_a_failing_trial_is_retried_then_recorded(ray_cluster, tmp_path):
    trials = expand(ExperimentSpec.model_validate(SPEC))
    store = Store(tmp_path / "store")
    outcome = run_trials(
        trials,
        store,
        resources={"cpus": 0.5},
        retries=2,
        options={"body": logging_body(str(tmp_path), fail_task="syn_b")},
    )
    failing = [t for t in trials if t.task == "syn_b"]
    assert len(failing) == 1 and failing[0].key in outcome.failed
    failure = store.failure(failing[0].key)
    assert failure["attempts"] == 3 and "boom in syn_b" in failure["traceback"]  # 1 try + 2 retries
    assert runs(tmp_path).count(failing[0].key) == 3
    # every transfer trial needs syn_b's adapter: they do not run; the rest of the sweep goes on
    for trial in trials:
        if trial.stage == 2:
            # not failures of their own: Ray passed on syn_b's error, and the count says so apart
            assert outcome.not_run[trial.key] == failing[0].key and trial.key not in outcome.failed
            assert trial.key not in runs(tmp_path) and store.state(trial.key) == "pending"
        elif trial.task != "syn_b":
            assert store.is_done(trial.key)
    assert store.state(failing[0].key) == "failed"
    # what the submit prints of it: the failure named as status names it, the others counted apart
    from harness.cli.submit import what_ran
    from harness.submit import SubmitOutcome

    said = SubmitOutcome(ExperimentSpec.model_validate(SPEC), trials, store, failed={failing[0].key: "boom"})
    said.not_run = dict(outcome.not_run)
    lines = what_ran(said)
    assert lines[0] == f"  failed adapter syn_b tiny-bert seed 0 ({failing[0].key[:8]}): boom"
    stage2 = sum(t.stage == 2 for t in trials)
    assert lines[1].startswith(f"  not run: {stage2} trials, because their source adapter syn_b") and not said.ok


def test_two_submits_at_once_train_each_trial_once(ray_cluster, tmp_path):
    trials = expand(ExperimentSpec.model_validate(SPEC))
    store = Store(tmp_path / "store")
    body = logging_body(str(tmp_path), delay=0.3)
    outcomes = []

    def submit():
        outcomes.append(run_trials(trials, store, resources={"cpus": 0.25}, retries=0, options={"body": body}))

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
        time.sleep(0.05)
    for thread in threads:
        thread.join(timeout=300)
    assert all(not o.failed for o in outcomes)
    assert all(store.is_done(t.key) for t in trials)
    log = runs(tmp_path)
    assert sorted(log) == sorted(t.key for t in trials)  # each trial trained exactly once


def test_max_concurrent_caps_the_trials_in_flight_and_progress_adds_up(ray_cluster, tmp_path):
    trials = expand(ExperimentSpec.model_validate(SPEC))
    store = Store(tmp_path / "store")

    def body(trial, store, **_):
        import os
        import time

        start = time.time()
        time.sleep(0.2)
        with open(os.path.join(str(tmp_path), "spans.log"), "a") as f:
            f.write(f"{start} {time.time()}\n")
        return {"trial": trial.summary(), "test": {}}

    updates, batches = [], []
    outcome = run_trials(
        trials,
        store,
        resources={"cpus": 0.25},
        retries=0,
        options={"body": body},
        max_concurrent=2,
        on_update=updates.append,
        on_finished=batches.append,
    )
    assert len(outcome.done) == len(trials)
    spans = [tuple(map(float, line.split())) for line in (tmp_path / "spans.log").read_text().splitlines()]
    # 8 trials could run at once on 2 CPUs at 0.25 each; the window lets at most 2 overlap
    overlap = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert overlap == 2
    final = updates[-1]
    assert sorted(t.key for batch in batches for t in batch) == sorted(t.key for t in trials)
    # every turn of the loop is handed over (as its progress is), a turn with nothing finished too: what the
    # tracker holds back is written once its interval passes
    assert len(batches) == len(updates)
    assert final.slots == 2 and all(final.left(stage) == 0 for stage in (1, 2))
    stage1 = sum(t.stage == 1 for t in trials)
    assert final.counts[(1, "done")] == stage1 and final.counts[(2, "done")] == len(trials) - stage1
    assert len(final.durations[2]) == len(trials) - stage1 and all(d > 0.15 for d in final.durations[2])


def test_a_queued_trial_counts_its_duration_from_when_it_runs_not_from_when_it_could(ray_cluster, tmp_path):
    """Six trials that each need the whole 2-CPU node run one at a time; the time estimates' durations are
    each trial's own (measured in its worker), so together they add up to at most the time the stage took,
    not to the quadratic sum of everyone's wait in Ray's queue."""
    trials = [t for t in expand(ExperimentSpec.model_validate(SPEC)) if t.stage == 1]
    store = Store(tmp_path / "store")
    updates = []
    run_trials(
        trials,
        store,
        resources={"cpus": 2},
        retries=0,
        options={"body": logging_body(str(tmp_path), delay=0.2)},
        on_update=updates.append,
    )
    final = updates[-1]
    durations = final.durations[1]
    assert len(durations) == len(trials) > 2 and all(d > 0.15 for d in durations)
    assert sum(durations) <= final.seconds + 1.0  # in a queue of n, counting the wait would give ~n/2 × that


def test_a_group_goes_on_while_another_waits_for_a_straggler(ray_cluster, tmp_path):
    """`more()` after each finished search trial: what the finished searches let run joins the queue at once. A
    group whose search is done starts its next trial while the other group's slow search trial still runs (the
    order of the log proves it, not a clock)."""
    from dataclasses import replace

    trials = [t for t in expand(ExperimentSpec.model_validate(SPEC)) if t.stage == 1][:2]
    quick, slow = replace(trials[0], role="search"), replace(trials[1], role="search")
    follow = [t for t in expand(ExperimentSpec.model_validate(SPEC)) if t.stage == 1][2]
    store = Store(tmp_path / "store")
    slow_body, log = logging_body(str(tmp_path), delay=0.0), str(tmp_path / "runs.log")

    def body(trial, store, **options):  # the straggler finishes only once the follower has run
        if trial.key == slow.key:
            import time

            deadline = time.time() + 60  # without the refill it never comes: the order below then fails
            while time.time() < deadline:
                try:  # (a worker cannot import this module: nothing of it by name here)
                    with open(log) as ran:
                        if follow.key in ran.read().split():
                            break
                except FileNotFoundError:  # the quick trial has not logged yet
                    pass
                time.sleep(0.05)
        return slow_body(trial, store, **options)

    asked = []

    def more():
        asked.append(1)
        return [follow] if store.is_done(quick.key) else []

    outcome = run_trials([quick, slow], store, resources={"cpus": 0.5}, retries=0, options={"body": body}, more=more)
    assert sorted(outcome.done) == sorted([quick.key, slow.key, follow.key]) and asked, outcome.failed
    assert runs(tmp_path).index(follow.key) < runs(tmp_path).index(slow.key)  # it did not wait for the straggler


def test_trials_a_search_lets_run_fill_every_slot_though_the_run_began_with_one(ray_cluster, tmp_path):
    """A submit whose queue begins with one trial (the last point of a search) and grows through `more()` (the
    transfer trials its choice lets run) hands them all to Ray at once: no window of the first queue's size. It
    did once, and a real study ran its 26 transfer trials one at a time on two cores."""
    from dataclasses import replace

    stage1 = [t for t in expand(ExperimentSpec.model_validate(SPEC)) if t.stage == 1]
    first, followers = replace(stage1[0], role="search"), stage1[1:5]
    store = Store(tmp_path / "store")

    def more():
        return followers if store.is_done(first.key) else []

    updates = []
    outcome = run_trials(
        [first],
        store,
        resources={"cpus": 0.5},
        retries=0,
        options={"body": logging_body(str(tmp_path), delay=1.0)},  # longer than a round of the driver's wait
        more=more,
        on_update=lambda progress: updates.append(progress.running[1]),
    )
    assert sorted(outcome.done) == sorted(t.key for t in [first, *followers]), outcome.failed
    assert max(updates) == len(followers)  # 4 trials of half a CPU on the 2-CPU Ray: all of them in flight


def test_ctrl_c_cancels_what_the_run_handed_to_a_ray_the_process_keeps(ray_cluster, tmp_path):
    """`harness.submit()` in a notebook runs on the Ray the process keeps after it: Ctrl-C (here raised where the
    driver's loop reports progress) must stop the run's queued and running trials there, not leave them training
    and writing results behind the user's back."""
    trials = [t for t in expand(ExperimentSpec.model_validate(SPEC)) if t.stage == 1]
    store = Store(tmp_path / "store")

    def ctrl_c_once_one_is_done(progress):
        if any(n for (_, state), n in progress.counts.items() if state == "done"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_trials(
            trials,
            store,
            resources={"cpus": 0.5},
            retries=0,
            options={"body": logging_body(str(tmp_path), delay=0.5)},
            on_update=ctrl_c_once_one_is_done,
        )
    time.sleep(0.3)  # a kill in flight lands; a trial started after the Ctrl-C needs 0.5 s to finish
    done = {t.key for t in trials if store.is_done(t.key)}
    assert 0 < len(done) < len(trials)
    time.sleep(2.0)  # four trials of 0.5 s at a time: what was left queued or running would have finished by now
    assert {t.key for t in trials if store.is_done(t.key)} == done


def test_a_trial_another_submit_trains_is_held_by_the_driver_not_by_a_cpu(ray_cluster, tmp_path):
    """One trial's lease is held elsewhere (here: by this test process, alive). On a Ray where one trial fills
    every CPU, the other trials still run: the held trial's task does not sit on the CPU waiting. Its dependents
    wait for it, and once the other holder writes its result, this submit counts it done and runs the rest."""
    trials = expand(ExperimentSpec.model_validate(SPEC))
    store = Store(tmp_path / "store")
    held = next(t for t in trials if t.stage == 1 and any(t.key in d.depends_on for d in trials))
    owner = store.acquire(held.key, ttl_seconds=300)
    independent = [t for t in trials if t.key != held.key and held.key not in t.depends_on]
    body = logging_body(str(tmp_path))
    released = {}

    def other_submit():  # finishes the held trial once everything that does not need it has run
        deadline = time.time() + 120
        while time.time() < deadline and not all(store.is_done(t.key) for t in independent):
            time.sleep(0.1)
        released["at"] = time.time()
        store.write_result(held.key, {"trial": held.summary(), "test": {"accuracy": 0.5}})
        store.release(held.key, owner)

    thread = threading.Thread(target=other_submit)
    thread.start()
    outcome = run_trials(trials, store, resources={"cpus": 2}, retries=0, options={"body": body})
    thread.join(timeout=10)
    assert not outcome.failed and all(store.is_done(t.key) for t in trials)
    assert all(store.result(t.key)["finished_at"] < released["at"] for t in independent)  # ran while it was held
    assert held.key in outcome.done and held.key not in runs(tmp_path)  # counted, never trained here
    assert sorted(runs(tmp_path)) == sorted(t.key for t in trials if t.key != held.key)
