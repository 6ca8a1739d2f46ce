"""Run an experiment: the programmatic form of `harness submit` (the command line wraps it).

    import harness
    outcome = harness.submit("experiments/tiny.yaml", store="runs/tiny")
    outcome.ok, outcome.ran, outcome.failed        # what ran now, and what failed for good

What is done already (its result in the store) never runs again; what finished earlier but was never
logged (a killed driver) is logged first. Trials run on Ray: the one this process is already connected to
(``ray.init`` called before, left running after), else a new local one, or ``address`` (or RAY_ADDRESS, set
inside a Ray job) for a cluster. MLflow: the store's own database unless ``tracking_uri``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from harness.packing import measure_kinds, trial_gpus
from harness.plan import Plan, Trial, make_plan, reached_keys
from harness.preflight import (
    PreflightError,
    check_inputs,
    check_resources,
    cluster_shapes,
    local_shapes,
    runnable_nodes,
)
from harness.progress import LiveView
from harness.scheduler import Outcome, run_trials
from harness.selection import selection_rows
from harness.spec import ExperimentSpec, load_spec
from harness.store import Store, renewing
from harness.tracking import open_tracker
from scalearn.layout import read_progress
from scalearn.result import swamping_adapter


@dataclass
class SubmitOutcome:
    spec: ExperimentSpec
    trials: list[Trial]
    store: Store
    already_done: int = 0
    ran: list[str] = field(default_factory=list)
    """Keys of the trials this submit trained (or found finished by another submit meanwhile)."""
    failed: dict[str, str] = field(default_factory=dict)
    """Key → the last line of its error, for every trial of the experiment that failed for good."""
    not_run: dict[str, str] = field(default_factory=dict)
    """Key → the source whose failure kept it from running (a resubmit runs it once the source is trained)."""
    retried_alone: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.not_run


def submit(
    spec: ExperimentSpec | str | Path,
    *,
    store: Store | str | Path = "store",
    address: str | None = None,
    tracking_uri: str | None = None,
    num_cpus: int | None = None,
    data_dir: str | Path | None = None,
    max_concurrent: int | None = None,
    preflight: bool = True,
    say: Callable[[str], None] = print,
    source: str | None = None,
) -> SubmitOutcome:
    """Run every trial of ``spec`` (an ExperimentSpec or an experiment file) not done yet; log to MLflow.

    ``preflight`` (default on): before any trial runs, check that the connected Ray can ever meet a trial's
    request and that every model and task's data can be loaded where the trials run (harness/preflight.py);
    raises PreflightError naming everything missing, with nothing trained and no failure recorded.
    ``source``: what MLflow names as the runs' source (default: the experiment file given, else its name)."""
    import ray

    if not isinstance(spec, ExperimentSpec):
        source, spec = source or str(spec), load_spec(spec)
    store = store if isinstance(store, Store) else Store(store)
    given_up: set[str] = set()  # what failed for good in this submit; earlier failures are retried first
    plan = make_plan(spec, store, given_up)  # once per wave: here, then after each wave
    trials = plan.trials
    done = reached_keys(trials, store)
    todo = [t for t in trials if t.key not in done]
    outcome = SubmitOutcome(spec, trials, store, already_done=len(trials) - len(todo))
    say(opening_line(spec.name, trials, todo, store))

    def tracker_for_submit():
        tracker = open_tracker(store, spec.name, source, tracking_uri, spec.target_list())
        tracker.arrange(trials)  # the competitors' runs in the file's order, before any trial is logged under them
        tracker.log_trials(trials, store)  # finished earlier but not logged (e.g. the driver was killed): log them now
        return tracker

    lost, not_run, tracker, finish = {}, {}, None, None
    latest = {"plan": plan}  # the newest plan: what a search that chose mid-wave added (its parents opened) too
    sigterm = _SigtermHandler()
    try:
        if todo:
            started = not ray.is_initialized()  # a Ray this process already holds (a notebook's, a test's) is reused
            # no address: RAY_ADDRESS (set inside a Ray job) or a new embedded Ray, never a cluster that `ray start`
            # happened to leave running on this machine
            address = (address or os.environ.get("RAY_ADDRESS") or "local") if started else address
            checked = False
            if preflight and started and address == "local":
                # the local Ray's shape is known before it starts: a submit that cannot run starts nothing

                shapes = local_shapes(num_cpus)
                if shapes is not None:
                    _preflight(spec, todo, True, data_dir, shapes)
                    checked = True
            if started:
                local = {"num_cpus": num_cpus} if address == "local" else {}
                with _deaf_to_ctrl_c(address == "local"):  # the local Ray's processes: Ctrl-C is the driver's
                    ray.init(address=address, include_dashboard=False, log_to_driver=False, **local)
            sigterm.wind_down()  # from here SIGTERM stops the submit as Ctrl-C does (ray.init set its own handler)
            on_this_machine = address == "local" if started else _all_nodes_here()
            try:
                if preflight and not checked:  # before anything is written: a refused submit leaves the store as it was
                    _preflight(spec, todo, on_this_machine, data_dir)
                finish = _register(spec, store, say)
                tracker = tracker_for_submit()
                tracker.begin(todo)  # the parents of what may run now are RUNNING until this submit ends

                asked = {(t.key, t.rung) for t in todo}
                watch = SourceWatch(spec, store, say)
                watch.planned(trials)  # transfer trials planned on sources done before this submit

                def more() -> list[Trial]:  # what the searches that finished meanwhile let run now
                    latest["plan"] = make_plan(spec, store, given_up)
                    planned = latest["plan"].trials
                    new = [t for t in planned if (t.key, t.rung) not in asked and t.key not in given_up]
                    asked.update((t.key, t.rung) for t in new)
                    if new:
                        watch.planned(planned)
                        tracker.begin(new)
                    return new

                while todo:
                    waves = _run_waves(
                        spec,
                        todo,
                        store,
                        tracker,
                        data_dir,
                        max_concurrent,
                        not on_this_machine,
                        more,
                        watch=watch,
                        still_to_plan=lambda: latest["plan"].still_to_plan(),
                    )
                    outcome.ran += waves.done
                    outcome.retried_alone += waves.retried_alone
                    outcome.seconds += waves.seconds
                    lost.update(waves.failed)  # a worker or node that died records no failure in the store; Ray told us
                    not_run.update(waves.not_run)
                    # what failed now (after its retries) stays failed in this submit: a search counts it as the
                    # worst point and chooses without it; a resubmit retries it
                    given_up |= {t.key for t in todo if t.key in waves.failed or t.key in waves.not_run}
                    given_up |= {t.key for t in todo if store.state(t.key) == "failed"}
                    plan = latest["plan"] = make_plan(spec, store, given_up)  # finished searches plan their finals
                    trials = plan.trials
                    done = reached_keys(trials, store)
                    todo = [t for t in trials if t.key not in done and t.key not in given_up]
                    if todo:
                        watch.planned(trials)
                        tracker.begin(todo)
                        say(f"{spec.name}: searches chose their points; {len(todo)} more trials to run")
            finally:
                if finish is not None:
                    finish()
                if started:
                    ray.shutdown()
            outcome.trials = trials
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: Ray is down (a kept Ray's trials cancelled); the store holds what
        # finished
        every = list({t.key: t for t in [*trials, *latest["plan"].trials]}.values())
        raise _stopped(spec, store, every, tracker, signal.SIGTERM if sigterm.received else signal.SIGINT) from None
    finally:
        sigterm.restore()
    if tracker is None:
        tracker = tracker_for_submit()
    else:
        tracker.log_trials(trials, store)  # what is still held, and what another submit claimed but did not log
    choices = record_choices(spec, store, plan, say) if spec.search else []
    tracker.finish(trials, store, spec.target_list(), choices)
    for trial in trials:
        if trial.key in not_run and not store.is_done(trial.key):
            outcome.not_run[trial.key] = not_run[trial.key]
        elif trial.key in lost:
            outcome.failed[trial.key] = lost[trial.key]
        elif store.state(trial.key) == "failed":
            reason = (store.failure(trial.key) or {}).get("traceback", "").strip().splitlines()[-1:]
            outcome.failed[trial.key] = " ".join(reason)
    return outcome


def opening_line(name: str, trials: list[Trial], todo: list[Trial], store: Store) -> str:
    """What a submit says first: how many trials, how many done, how many to run, and how many of those go on
    from the checkpoint of a stretch that was stopped (a local store's; a remote one's are on its nodes)."""
    line = f"{name}: {len(trials)} trials, {len(trials) - len(todo)} already done, {len(todo)} to run"
    going_on = 0 if store.remote else sum(read_progress(store.checkpoint_dir(t.key)) is not None for t in todo)
    return line + (f", {going_on} of them from their last checkpoint" if going_on else "")


class SubmitInterrupted(KeyboardInterrupt):
    """A submit stopped by Ctrl-C or SIGTERM. Every finished trial is in the store and logged to MLflow. A trial
    that was running left its last checkpoint, which the next submit of the same file goes on from.
    Its message is the one line the command line prints; ``exit_code`` is the shell's for that signal (130, 143)."""

    def __init__(self, name: str, done: int, total: int, location: str, signal_number: int = signal.SIGINT):
        super().__init__(name, done, total, location)
        self.name, self.done, self.total, self.location = name, done, total, location
        self.signal_number = signal.Signals(signal_number)
        self.exit_code = 128 + self.signal_number

    def __str__(self) -> str:
        how = "interrupted" if self.signal_number == signal.SIGINT else f"stopped by {self.signal_number.name}"
        return (
            f"{self.name}: {how}; {self.done} of {self.total} trials done, kept in {self.location}; "
            "submitting the same file again goes on from there"
        )


class _SigtermHandler:
    """SIGTERM during a submit raises KeyboardInterrupt in the driver's main thread, so the submit winds down as
    after Ctrl-C (Slurm, Kubernetes and systemd stop a job with SIGTERM first; Ray's own handler exits, leaving the
    parents RUNNING and finished trials unlogged). ``received`` says it came: Ray turns an exception raised while
    it waits into a KeyboardInterrupt of its own. ``restore()`` puts back the handler that was there before the
    submit. Off the main thread, nothing changes."""

    def __init__(self):
        self.main = threading.current_thread() is threading.main_thread()
        self.previous = signal.getsignal(signal.SIGTERM) if self.main else None
        self.received = False

    def wind_down(self) -> None:
        if self.main:
            signal.signal(signal.SIGTERM, self._raise)

    def restore(self) -> None:
        if self.main and self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)

    def _raise(self, signum, frame):
        self.received = True
        raise KeyboardInterrupt("SIGTERM")


def _stopped(
    spec: ExperimentSpec, store: Store, trials: list[Trial], tracker, signal_number: int = signal.SIGINT
) -> SubmitInterrupted:
    """After Ctrl-C or SIGTERM: log what finished, end the parent runs this submit opened as KILLED (left RUNNING
    while another submit on the store still runs their trials), and say how far the experiment got."""
    if tracker is not None:
        tracker.log_trials(trials, store)
        # this submit's own record is gone by now; a submit of another file runs none of these parents' trials
        others = [d for d in store.drivers() if d.get("experiment") == spec.name]
        tracker.finish(trials, store, spec.target_list(), unfinished=None if others else "KILLED")
    done = len(reached_keys(trials, store))
    return SubmitInterrupted(spec.name, done, len(trials), store.location, signal_number)


@contextlib.contextmanager
def _deaf_to_ctrl_c(local: bool):
    """SIGINT ignored while the local Ray starts, so the processes it starts inherit that: a terminal's Ctrl-C
    reaches the whole foreground group, and a raylet stopped by it ends the driver (SystemExit) before the driver
    can wind down. The driver stops them itself (``ray.shutdown``)."""
    if not local or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _all_nodes_here() -> bool:
    """Whether every live node of the connected Ray is this machine (then inputs are checked here, once)."""
    import ray

    here = ray.util.get_node_ip_address()
    return all(node["NodeManagerAddress"] == here for node in ray.nodes() if node.get("Alive"))


def _register(spec: ExperimentSpec, store: Store, say: Callable[[str], None]):
    """Record this submit in the store (renewed while it runs) and tell the user about the others running on
    it. Submits on one store share the work: each trial trains once, in whichever submit's worker leases it
    first; every submit waits for all of its trials and each finished trial is logged to MLflow once, by
    whichever submit claims it. Returns what ends the record (call it when the submit ends)."""

    info = {"experiment": spec.name, "host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}
    driver = store.register_driver(info)  # first, so two submits started at once see each other
    for other in (d for d in store.drivers() if d.get("id") != driver):
        since = datetime.fromtimestamp(other.get("started", 0)).strftime("%Y-%m-%d %H:%M:%S")
        say(
            f"{spec.name}: another submit is running on this store (experiment {other.get('experiment')!r}, "
            f"{other.get('host')} pid {other.get('pid')}, since {since}); they share the work: each trial "
            "trains once, in whichever submit takes it first, and is logged to MLflow once"
        )
    record = contextlib.ExitStack()
    record.callback(store.unregister_driver, driver)
    record.enter_context(renewing(lambda: store.renew_driver(driver)))
    return record.close


def _preflight(spec: ExperimentSpec, todo: list[Trial], local: bool, data_dir, shapes=None) -> None:
    """Both checks of harness/preflight.py, reported together: what the cluster cannot offer, and what the
    trials could not load (on this machine for a local Ray, else on each node that can run a trial).
    ``shapes``: the nodes' resources when known without Ray (a local Ray not started yet), else Ray's."""

    resources = spec.resources.model_dump()
    problems = []
    shapes = shapes or cluster_shapes()
    needs = {json.dumps(spec.resources_for(model), sort_keys=True): model for model in {t.model for t in todo}}
    for need in sorted(needs) or [json.dumps(resources, sort_keys=True)]:
        try:
            check_resources(spec.name, json.loads(need), *shapes, local=local)
        except PreflightError as error:
            problems.append(str(error) + (f" (model {needs[need]})" if spec.model_resources and need in needs else ""))
    nodes = None if local else runnable_nodes(resources)
    if local or nodes:
        try:
            check_inputs(todo, data_dir, nodes)
        except PreflightError as error:
            problems.append(str(error))
    if problems:
        raise PreflightError("\n".join(problems))


def _run_waves(
    spec: ExperimentSpec,
    todo: list[Trial],
    store: Store,
    tracker,
    data_dir,
    max_concurrent,
    cluster,
    more=None,
    watch: SourceWatch | None = None,
    still_to_plan=None,
):
    """Run ``todo`` on the connected Ray. With ``gpus: auto``, stage by stage: each stage's trial kinds are
    probed for their peak memory (once; kept in the store) when their sources exist, then packed. On a
    ``cluster``, the system metrics of each trial carry its node's id. ``watch`` hears of every trial finished;
    ``still_to_plan()`` is what the progress line says open searches will add."""

    def finished(batch: list[Trial]) -> None:  # called every turn of the scheduler's loop, batch or not
        tracker.log_finished(batch, store)
        for trial in batch if watch is not None else ():
            watch.finished(trial)

    resources = spec.resources.model_dump()
    auto = resources["gpus"] == "auto"
    waves = [[t for t in todo if t.stage == stage] for stage in (1, 2)] if auto else [todo]
    total = Outcome()
    for wave in (w for w in waves if w):
        gpus = None
        if auto:
            peaks = measure_kinds(wave, store, {"data_dir": data_dir})
            gpus = trial_gpus(wave, peaks, resources["device_memory_gb"] * 1024, resources["packing_margin"])
            resources = {**resources, "gpus": min(gpus.values())}
        with LiveView(still_to_plan=still_to_plan) as view:
            outcome = run_trials(
                wave,
                store,
                resources=resources,
                retries=spec.retries,
                options={"data_dir": data_dir, "cluster": cluster},
                max_concurrent=max_concurrent,
                trial_gpus=gpus,
                trial_resources={t.key: spec.resources_for(t.model) for t in wave} if spec.model_resources else None,
                on_update=view.update,
                on_finished=finished,
                more=None if auto else more,  # packed stages are probed first: they wait for the next wave
            )
        total.done += outcome.done
        total.failed.update(outcome.failed)
        total.retried_alone += outcome.retried_alone
        total.seconds += outcome.seconds
    return total


class SourceWatch:
    """Names each source adapter whose output dwarfs its layer's (``scalearn.source_scale``), once, before the
    transfer trials that mix it run: as a source that is no search point finishes, and as transfer trials are
    planned on a source that is done (a searched source is chosen only then: a diverged point that loses its
    search is no one's source, and nothing is said of it)."""

    def __init__(self, spec: ExperimentSpec, store: Store, say: Callable[[str], None]):
        self.spec, self.store, self.say = spec, store, say
        self.named: set[str] = set()

    def finished(self, trial: Trial) -> None:
        if trial.stage == 1 and trial.role == "final":
            self._check(trial)

    def planned(self, trials: list[Trial]) -> None:
        by_key = {t.key: t for t in trials}
        for trial in trials:
            for key in trial.depends_on if trial.stage == 2 else ():
                if key in by_key:
                    self._check(by_key[key])

    def _check(self, source: Trial) -> None:
        if source.key in self.named or not self.store.is_done(source.key):
            return
        result = self.store.result(source.key)
        scale = swamping_adapter(result)
        if scale is None:
            return
        self.named.add(source.key)
        floor = (result.get("constant_dev_loss") or {}).get(source.task)
        best = (result.get("best_dev") or {}).get("loss")
        versus = f"; its dev loss {best:.4g} against a constant's {floor:.4g}" if best is not None and floor else ""
        self.say(
            f"{self.spec.name}: the {source.method} of {source.task} on {source.model} puts out {scale['ratio']:.1f}x "
            f"its layer's own output (layer {scale['layer']}{versus}): every transfer trial that mixes it measures a "
            "broken source; check its training"
        )


def record_choices(spec: ExperimentSpec, store: Store, plan: Plan, say: Callable[[str], None] = print) -> list[dict]:
    """Write each searched group's state to ``<store>/choices/<group>.json`` (its points, their dev values, the
    chosen point), for the record: the choice itself is always recomputed from the results. Says so when a
    group's recorded choice moved (a point added to the space, or a failed point retried). Returns the rows
    (`harness.selection.selection_rows`)."""

    rows = selection_rows(spec, store, plan.groups.values())
    for row in rows:
        earlier = store.choice(row["group"])
        chosen = row["points"][row["chosen"]]["point"] if row["chosen"] is not None else None
        if earlier and earlier.get("chosen_point") not in (None, chosen) and chosen is not None:
            where = f"{row['method']} · {row['task']} · {row['model']}"
            say(f"{spec.name}: the choice of {where} moved from {earlier['chosen_point']} to {chosen}")
        record = {**row, "experiment": spec.name, "sampler": spec.search.sampler, "chosen_point": chosen}
        store.write_choice(row["group"], record)
    return rows
