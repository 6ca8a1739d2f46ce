"""Run planned trials on Ray Core: one remote task per trial, the DAG expressed by passing the ObjectRefs
of a trial's sources as arguments, so Ray starts a transfer trial only when its source adapters exist.

The store, not Ray, is the truth: a task that finds its result already written returns at once; a task
takes a lease before training, so two submits of the same file never train one trial twice; results
are written atomically, so a killed driver or worker leaves either a finished trial or none.
"""

from __future__ import annotations

import time
import traceback
from collections import Counter
from dataclasses import dataclass, field

from harness.plan import Trial
from harness.store import Store

LEASE_POLL_SECONDS = 2.0


@dataclass
class Outcome:
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # already done before this submit
    seconds: float = 0.0


def noop_body(trial: Trial, store: Store, **_) -> dict:
    """A trial body that returns at once: for measuring the harness's own overhead, and for dry runs."""
    return {"trial": trial.summary(), "test": {}}


def execute(trial: Trial, store_root: str, options: dict, *sources_ready) -> str:
    """The body of one remote task: lease, train (or wait for the holder of the lease), record."""
    from harness.trial import run_trial

    store = Store(store_root)
    if store.is_done(trial.key):
        return trial.key
    owner = store.acquire(trial.key)
    while owner is None:  # another submit is training this trial: wait for its result or its lease to lapse
        time.sleep(LEASE_POLL_SECONDS)
        if store.is_done(trial.key):
            return trial.key
        owner = store.acquire(trial.key)
    try:
        store.write_trial(trial.key, trial.summary() | {"config": trial.config})
        result = options.get("body", run_trial)(trial, store, data_dir=options.get("data_dir"),
                                                cache_dir=options.get("cache_dir"))  # fmt: skip
        result["node"] = _node_id()
        store.write_result(trial.key, result)
        return trial.key
    except Exception:
        previous = store.failure(trial.key) or {"attempts": 0}
        store.write_failure(trial.key, previous["attempts"] + 1, traceback.format_exc())
        raise
    finally:
        store.release(trial.key, owner)


def run_trials(trials: list[Trial], store: Store, *, resources: dict, retries: int, options: dict | None = None,
               on_update=None, on_finished=None) -> Outcome:  # fmt: skip
    """Submit every trial not done yet; wait for all; report progress through ``on_update(counts)``."""
    import ray

    start = time.perf_counter()
    options = options or {}
    outcome = Outcome()
    remote = ray.remote(execute).options(
        num_cpus=resources.get("cpus", 1), num_gpus=resources.get("gpus", 0),
        memory=int(resources["memory_gb"] * 2**30) if resources.get("memory_gb") else None,
        max_retries=retries, retry_exceptions=True,
    )  # fmt: skip
    shared_options = ray.put(options)  # once, not pickled again with every trial
    refs, pending = {}, {}
    for trial in trials:  # stage order: a trial's sources are submitted before it
        if store.is_done(trial.key):
            outcome.skipped.append(trial.key)
            continue
        ready = [refs[key] for key in trial.depends_on if key in refs]
        refs[trial.key] = remote.remote(trial, str(store.root), shared_options, *ready)
        pending[refs[trial.key]] = trial
    counts = Counter()
    waiting = list(pending)
    while waiting:
        # whatever is ready within a moment, in one call: waiting on one ref at a time is O(n²) for big sweeps
        finished, waiting = ray.wait(waiting, num_returns=len(waiting), timeout=0.5)
        for ref in finished:
            trial = pending[ref]
            try:
                ray.get(ref)
                outcome.done.append(trial.key)
                counts[(trial.stage, "done")] += 1
                if on_finished is not None:
                    on_finished(trial)
            except Exception as error:  # the trial (or a source it needs) failed after its retries
                outcome.failed[trial.key] = _reason(error)
                counts[(trial.stage, "failed")] += 1
        if finished and on_update is not None:
            on_update(counts, len(waiting))
    outcome.seconds = time.perf_counter() - start
    return outcome


def _node_id() -> str:
    try:
        import ray

        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""
    except Exception:  # outside a Ray worker
        return ""


def _reason(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[-1] if text else error.__class__.__name__
