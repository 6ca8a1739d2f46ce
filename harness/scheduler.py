"""Run planned trials on Ray Core: one remote task per trial, the DAG expressed by passing the ObjectRefs
of a trial's sources as arguments, so Ray starts a transfer trial only when its source adapters exist.

The store, not Ray, is the truth: a task that finds its result already written returns at once; a task
takes a lease before training, so two submits of the same file never train one trial twice; results
are written atomically, so a killed driver or worker leaves either a finished trial or none. A trial that
another submit is training when its turn comes is not handed to Ray (its task would hold a CPU while it
waits): the driver holds it, and its dependents, until that submit's result is there or its lease lapses.
"""

from __future__ import annotations

import contextlib
import math
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field

from harness.packing import is_out_of_memory
from harness.plan import Trial, reached, reached_keys
from harness.store import Store, renewing
from harness.system_metrics import Sampler
from harness.trial import run_trial

LEASE_POLL_SECONDS = 2.0


@dataclass
class Outcome:
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    not_run: dict[str, str] = field(default_factory=dict)  # key → the source whose failure kept it from running
    skipped: list[str] = field(default_factory=list)  # already done before this submit
    retried_alone: list[str] = field(default_factory=list)  # packed, out of memory, rerun on a whole GPU
    seconds: float = 0.0


def noop_body(trial: Trial, store: Store, **_) -> dict:
    """A trial body that returns at once: for measuring the harness's own overhead, and for dry runs."""
    return {"trial": trial.summary(), "test": {}}


class LeaseLost(RuntimeError):
    """The trial's lease passed to another submit while this worker trained it (nothing is recorded)."""


def execute(trial: Trial, store_location: str, options: dict, *sources_ready) -> tuple[str, float | None]:
    """The body of one remote task: lease, train (or wait for the holder of the lease), record. Returns the key
    and the seconds this worker trained it (None: another submit did), for the time estimates."""

    store = Store(store_location)
    if reached(trial, store):
        return trial.key, None
    owner = store.acquire(trial.key)
    while owner is None:  # another submit is training this trial: wait for its result or its lease to lapse
        time.sleep(LEASE_POLL_SECONDS)
        if reached(trial, store):
            return trial.key, None
        owner = store.acquire(trial.key)
    if reached(trial, store):  # finished by another submit between our check and its lease's release
        store.release(trial.key, owner)
        return trial.key, None
    try:
        with renewing(lambda: store.renew(trial.key, owner)):  # until the trial ends, or the lease was lost
            store.record_attempt(trial.key, owner)
            store.write_trial(trial.key, trial.summary() | {"config": trial.config.model_dump(mode="json")})
            for key in trial.depends_on:  # a remote store's source adapters, downloaded to this machine once
                store.pull(key)
            started, node = time.time(), _node_id()
            with Sampler(node if options.get("cluster") else "") as sampler:
                result = options.get("body", run_trial)(
                    trial, store, data_dir=options.get("data_dir"), cache_dir=options.get("cache_dir")
                )
            result.update(node=node, started_at=started, system_metrics=sampler.record())
            if not store.holds(trial.key, owner):
                # this worker stalled past its lease (a suspended machine) and another submit took the trial over:
                # its holder records it; Ray's retry of this task waits for that record
                raise LeaseLost(f"{trial.key}: its lease passed to another submit while this worker trained it")
            if result.get("paused"):  # successive halving: paused at its rung, its checkpoint kept
                store.write_rung(trial.key, trial.budget, result)
            else:
                store.write_result(trial.key, result)
            return trial.key, time.time() - started
    except LeaseLost:
        raise
    except Exception:
        previous = store.failure(trial.key) or {"attempts": 0}
        store.write_failure(trial.key, previous["attempts"] + 1, traceback.format_exc())
        raise
    finally:
        store.release(trial.key, owner)


def execute_alone(trial: Trial, store_location: str, options: dict, *sources_ready) -> tuple[str, float | None]:
    """`execute`, as the task of a GPU trial: Ray gives it a worker that runs nothing else."""
    return execute(trial, store_location, options, *sources_ready)


@dataclass
class Progress:
    """What `run_trials` reports after each batch of finished trials: counts per (stage, state) over the
    trials of this submit, how many are running (their sources done and their resources granted by Ray),
    and how long each finished trial took in its worker (for time estimates)."""

    total: Counter
    counts: Counter = field(default_factory=Counter)
    running: Counter = field(default_factory=Counter)
    slots: int | None = None
    seconds: float = 0.0
    durations: dict[int, list[float]] = field(default_factory=lambda: {1: [], 2: []})

    def left(self, stage: int) -> int:
        ended = sum(self.counts[(stage, state)] for state in ("done", "failed", "not run"))
        return self.total[stage] - ended


def run_trials(
    trials: list[Trial],
    store: Store,
    *,
    resources: dict,
    retries: int,
    options: dict | None = None,
    max_concurrent: int | None = None,
    trial_gpus: dict[str, float] | None = None,
    trial_resources: dict[str, dict] | None = None,
    on_update=None,
    on_finished=None,
    more=None,
) -> Outcome:
    """Run every trial not done yet and wait for all. ``on_finished(trials)`` gets each batch of newly
    finished trials (e.g. to log them to MLflow in one transaction), ``on_update(progress)`` the state.

    ``max_concurrent`` caps the trials handed to Ray at once (queued or running): trials are submitted in
    stage order through a window of that size, so a sweep can leave room on a shared cluster. The window
    never deadlocks: a trial's sources come before it in the order, so they are finished or in the window.

    ``trial_gpus`` (key → GPU fraction, from `harness.packing`) overrides ``resources["gpus"]`` per trial. A
    packed trial that fails out of memory is retried once alone on a whole device, if no trial of this
    submit consumes it (a consumer already holds the failed reference). ``trial_resources`` (key → cpus, gpus,
    memory_gb) gives a trial other resources than ``resources`` (a backbone's `model_resources`).

    ``more()``, asked after each batch that finished a search trial, gives the trials that can be planned now
    (a search that chose, a rung of successive halving that decided): those not run in this call yet join the
    queue, so a group goes on while another waits for a straggler.
    """
    import ray

    start = time.perf_counter()
    options = options or {}
    outcome = Outcome()
    base = ray.remote(execute)
    # a GPU trial in a worker of its own: a reused worker keeps the CUDA context of the device it was first given
    # (Ray moves CUDA_VISIBLE_DEVICES, torch does not follow) and the memory its allocator cached
    alone = ray.remote(max_calls=1)(execute_alone)
    task_options = _task_options(resources, retries)
    remote = (alone if task_options["num_gpus"] else base).options(**task_options)
    shared_options = ray.put(options)  # once, not pickled again with every trial
    queue = []
    done = reached_keys(trials, store)
    for trial in trials:  # stage order: a trial's sources are submitted before it
        if trial.key in done:
            outcome.skipped.append(trial.key)
        else:
            queue.append(trial)
    progress = Progress(total=Counter(t.stage for t in queue), slots=_slots(resources, max_concurrent))
    refs, pending, finished_keys, failed_keys = {}, {}, set(), set()
    consumed = {key for trial in queue for key in trial.depends_on}
    trial_gpus = trial_gpus or {}

    own_options = {key: _task_options(own, retries) for key, own in (trial_resources or {}).items()}

    def submit(trial: Trial, gpus: float | None = None):
        ready = [refs[key] for key in trial.depends_on if key in refs]
        gpus = gpus if gpus is not None else trial_gpus.get(trial.key)
        options = own_options.get(trial.key, task_options)
        if gpus is None and options is task_options:
            task = remote
        else:
            options = options if gpus is None else {**options, "num_gpus": gpus}
            task = (alone if options["num_gpus"] else base).options(**options)
        refs[trial.key] = task.remote(trial, store.location, shared_options, *ready)
        pending[refs[trial.key]] = trial

    def count_done(trial: Trial, batch: list) -> None:  # done: by this submit's worker, or by another submit
        outcome.done.append(trial.key)
        finished_keys.add(trial.key)
        progress.counts[(trial.stage, "done")] += 1
        batch.append(trial)

    window = max_concurrent or math.inf  # not the first queue's size: searches that choose add to it
    position = 0
    held: dict[str, Trial] = {}  # another submit trains it (or one of its sources) now: not handed to Ray yet
    # a local lease is a file stat; on a remote store it would be a request per trial before the first runs, so
    # there a trial another submit holds waits in its task as before
    watch_leases = not store.remote
    checked = 0.0
    try:
        while position < len(queue) or pending or held:
            while position < len(queue) and len(pending) < window:
                trial = queue[position]
                position += 1
                if any(key in held for key in trial.depends_on) or (watch_leases and store.leased_elsewhere(trial.key)):
                    held[trial.key] = trial
                else:
                    submit(trial)
            batch = []
            if held and time.perf_counter() - checked >= LEASE_POLL_SECONDS:
                checked = time.perf_counter()
                for key, trial in list(held.items()):  # in the queue's order: a source before its dependents
                    if reached(trial, store):  # the other submit finished it
                        del held[key]
                        count_done(trial, batch)
                    elif not any(k in held for k in trial.depends_on) and not store.leased_elsewhere(key):
                        del held[key]  # its lease lapsed or was released unfinished: this submit runs it
                        submit(trial)
            # whatever is ready within a moment, in one call: waiting on one ref at a time is O(n²) for big sweeps
            if pending:
                finished, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0.5)
            else:
                finished = []
                time.sleep(0.5)
            now = time.perf_counter()
            for ref in finished:
                trial = pending.pop(ref)
                try:
                    _, seconds = ray.get(ref)  # raises what the trial raised
                    count_done(trial, batch)
                    if seconds is not None:  # the worker's own time for it: a wait in Ray's queue is not in it
                        progress.durations[trial.stage].append(seconds)
                except Exception as error:  # the trial (or a source it needs) failed after its retries
                    missing = [key for key in trial.depends_on if not store.is_done(key)]
                    if missing:  # it never ran: Ray passes a failed source's error on to what consumes it
                        outcome.not_run[trial.key] = missing[0]
                        failed_keys.add(trial.key)
                        progress.counts[(trial.stage, "not run")] += 1
                        continue
                    reason = _reason(error)
                    packed = trial_gpus.get(trial.key, 1.0) < 1.0
                    if packed and is_out_of_memory(reason) and trial.key not in consumed:
                        outcome.retried_alone.append(trial.key)
                        trial_gpus[trial.key] = 1.0
                        submit(trial, gpus=1.0)
                        continue
                    outcome.failed[trial.key] = reason
                    failed_keys.add(trial.key)
                    progress.counts[(trial.stage, "failed")] += 1
            progress.running.clear()
            for trial in pending.values():
                if all(key in finished_keys or key not in refs for key in trial.depends_on):
                    progress.running[trial.stage] += 1
            started = _started(resources)
            cap = started if progress.slots is None else min(progress.slots, started)
            if cap is not None:  # more may be ready than run (Ray hands out what it has); earlier stages first
                free = cap
                for stage in (1, 2):
                    progress.running[stage] = min(progress.running[stage], free)
                    free -= progress.running[stage]
            progress.seconds = now - start
            if on_finished is not None:  # an empty batch too: what it held past its interval is written now
                on_finished(batch)
            if more is not None and any(t.role == "search" for t in batch):
                ran = {(t.key, t.rung) for t in queue}
                new = [t for t in more() if (t.key, t.rung) not in ran and t.key not in failed_keys]
                ready = reached_keys(new, store)  # one listing, not one per trial
                new = [t for t in new if t.key not in ready]
                queue.extend(sorted(new, key=lambda t: t.stage))  # their sources are done, or in the queue before them
                progress.total.update(Counter(t.stage for t in new))
            if on_update is not None:
                on_update(progress)
    except KeyboardInterrupt:  # Ctrl-C: what runs for this submit stops (a Ray this process keeps would go on)
        for ref in pending:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        raise
    outcome.seconds = time.perf_counter() - start
    return outcome


def _task_options(resources: dict, retries: int) -> dict:
    """Ray's options for a trial task that needs ``resources`` (cpus, gpus, memory_gb)."""
    return dict(
        num_cpus=resources.get("cpus", 1),
        num_gpus=resources.get("gpus", 0),
        memory=int(resources["memory_gb"] * 2**30) if resources.get("memory_gb") else None,
        max_retries=retries,
        retry_exceptions=True,
    )


def _slots(resources: dict, max_concurrent: int | None) -> int | None:
    """How many trials can run at once on the connected Ray (CPU- or GPU-bound), capped by max_concurrent."""
    import ray

    cluster = ray.cluster_resources()
    limits = [max_concurrent] if max_concurrent else []
    for name, need in (("CPU", resources.get("cpus", 1)), ("GPU", resources.get("gpus", 0))):
        if need:
            limits.append(max(1, int(cluster.get(name, 0) / need)))
    return min(limits) if limits else None


def _started(resources: dict) -> int | None:
    """How many trials hold their resources on the connected Ray right now: Ray has started them. From the
    CPUs in use (every trial asks the same CPUs); on a cluster shared with other work this counts theirs
    too, so it only caps the count of trials that are ready. None when a trial asks for no CPU."""
    import ray

    cpus = resources.get("cpus", 1)
    if not cpus:
        return None
    used = ray.cluster_resources().get("CPU", 0.0) - ray.available_resources().get("CPU", 0.0)
    return max(0, int(used / cpus + 1e-6))


def _node_id() -> str:
    try:
        import ray

        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""
    except Exception:  # outside a Ray worker
        return ""


def _reason(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[-1] if text else error.__class__.__name__
