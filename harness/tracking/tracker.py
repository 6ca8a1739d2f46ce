"""The driver's tracker: the run hierarchy of one experiment, opened as a submit begins, trials logged as they
finish, parents summarised and closed as it ends. No SQL (`harness.tracking.backend`), no statistics
(`harness.tracking.summaries`), no store paths (`harness.tracking.claims`)."""

from __future__ import annotations

import contextlib
import getpass
import os
import time

from harness.plan import Trial, reached_keys, task_results
from harness.stats import scaled
from harness.store import Store
from harness.tracking.backend import backend_for
from harness.tracking.claims import Claims
from harness.tracking.records import (
    GROUP_TAG,
    KEY_TAG,
    LEVEL_TAG,
    ORDER_TAG,
    REPORT_GROUP,
    check_metrics,
    group_of,
    ms,
    number,
    short_hash,
    trial_record,
)
from harness.tracking.server import seed_database, share_view, store_tracking_uri
from harness.tracking.summaries import group_summary, method_params, method_summary, search_lines, shared_params
from scalearn.tasks import get_task

EXPERIMENT_KIND = "custom_model_development"
"""MLflow 3's ``mlflow.experimentKind`` for model training: the experiment opens on its runs table."""

COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
"""``mlflow.runColor`` per method (in the experiment file's order), shared by its parents and trials."""

LOG_EVERY_SECONDS = 1.0
"""Trials Ray reports finished are held until this long after the last write, then written together: one
transaction per second at most, whatever the rate they finish at (a commit costs ~10 ms on this machine's
disk, more than the rows of a run; benchmarks/mlflow_throughput.py)."""


UPSERT_ATTEMPTS = 4


def upsert(call, *args, **kwargs):
    """``call(*args, **kwargs)``, tried again when MLflow refuses it. MLflow writes a tag (and a latest metric) by
    reading, then inserting or updating: two submits that finish the same parent runs at the same moment can
    both insert, and the database refuses the second (a unique-key violation, seen on PostgreSQL). Both write
    the same summary, so the retry, which finds the row and updates it, loses nothing."""
    from mlflow.exceptions import MlflowException

    for attempt in range(UPSERT_ATTEMPTS):
        try:
            return call(*args, **kwargs)
        except MlflowException:
            if attempt == UPSERT_ATTEMPTS - 1:
                raise
            time.sleep(0.1 * 2**attempt)
    return None


class Coalescer:
    """``add(items)`` holds items and hands all held to ``write`` once ``seconds`` have passed since the last
    write; ``flush()`` hands over what is held. What a killed driver held is simply not written: a resubmit
    writes it, as for any trial finished but not logged."""

    def __init__(self, write, seconds: float = LOG_EVERY_SECONDS):
        self.write, self.seconds = write, seconds
        self.held: list = []
        self.last = time.monotonic()

    def add(self, items) -> int:
        self.held.extend(items)
        return self.flush() if time.monotonic() - self.last >= self.seconds else 0

    def flush(self) -> int:
        held, self.held, self.last = self.held, [], time.monotonic()
        return self.write(held) if held else 0


class Tracker:
    """One experiment's runs in one MLflow destination: a top-level run per (model, method), a run per
    (method, task) group under it, a child run per trial under that, and the report's run.

    Parents are created once whichever driver asks first (`Claims.once`), RUNNING while a submit may still run
    their trials (`begin`), then summarised and ended by `finish`. A child run is written once per trial key
    (`log_trials`), found again by its key tag or the store's marker, so a resubmit never makes a twin.
    """

    def __init__(
        self,
        tracking_uri: str,
        experiment: str,
        artifact_location: str | None = None,
        store: Store | None = None,
        source: str | None = None,
    ):
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # one line per run is noise here
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        self.store = store
        setup = store.locked("tracking/setup.lock") if store is not None else contextlib.nullcontext()
        with setup:  # a fresh database is created (or an old one upgraded) by one driver at a time
            if store is not None and tracking_uri == store.tracking_uri:
                seed_database(store.root / "mlflow.db")
            self.client = MlflowClient(tracking_uri=tracking_uri)
            found = self.client.get_experiment_by_name(experiment)
            if found is None:
                try:
                    self.experiment_id = self.client.create_experiment(experiment, artifact_location)
                except MlflowException:  # created meanwhile by a driver on another store, same server
                    found = self.client.get_experiment_by_name(experiment)
                    if found is None:
                        raise
            if found is not None:
                self.experiment_id = found.experiment_id
            self._describe_experiment(experiment, found.tags if found is not None else {})
        self.backend = backend_for(self.client, self.experiment_id)
        self.source_tags = {
            "mlflow.source.name": str(source or experiment),
            "mlflow.source.type": "LOCAL",
            "mlflow.user": getpass.getuser(),
        }
        self.colours: dict[str, str] = {}
        self.claims: Claims | None = None
        if store is not None:
            destination = "store" if tracking_uri == store.tracking_uri else short_hash(tracking_uri)
            self.claims = Claims(store, f"tracking/{destination}/{self.experiment_id}")
        self.parent_of: dict[str, str | None] = {}
        self.logged = self.backend.tagged(KEY_TAG)
        self.parents = self.backend.tagged(GROUP_TAG, self.parent_of)
        if self.claims is not None:
            self.logged.update(self.claims.markers("logged"))
        self.opened: set[str] = set()
        self.coalescer: Coalescer | None = None
        self.regrouped: set[str] = set()  # searched seeds whose runs `_regroup` moved under their final group
        self.known: dict[str, Trial] = {}
        """Every trial this tracker was shown, by key: a transfer trial's sources are logged before it even when
        they are not in its batch (a source finished by a process that outlived a killed driver)."""
        self.targets: set[str] = set()
        """The sweep's targets: a stage-1 trial of another task is a source adapter, under "sources · <model>"
        rather than inside the adapter competitor. Empty: every trial under its method (as before)."""

    def _describe_experiment(self, name: str, tags: dict[str, str]) -> None:
        """The experiment's kind (model training), and a description unless someone wrote one."""
        if tags.get("mlflow.experimentKind") != EXPERIMENT_KIND:
            upsert(self.client.set_experiment_tag, self.experiment_id, "mlflow.experimentKind", EXPERIMENT_KIND)
        if "mlflow.note.content" not in tags:
            text = (
                f"ScaLearn harness sweep `{name}`. Top level: one run per model × method (each task's seed "
                "mean and sd, and `avg_test_score_mean` over the targets), and one per model for the source "
                "adapters; below each, a run per (method, task) and below that one run per trial. "
                "Scores are ×100 as in the report; losses as they are (a trial's result.json keeps the "
                "fractions the loop computed: 0.7087 there is 70.87 here). "
                "`best_dev_*` is the evaluation that selected the test checkpoint, at its optimizer step."
            )
            upsert(self.client.set_experiment_tag, self.experiment_id, "mlflow.note.content", text)

    def colour(self, method: str) -> str:
        return self.colours.setdefault(method, COLOURS[len(self.colours) % len(COLOURS)])

    # -- the hierarchy ------------------------------------------------------------------------------

    def _group_run(self, group: str, tags: dict[str, str], run_name: str, start_ms: int | None = None) -> str:
        """The parent run of ``group``, created (RUNNING) once whichever driver asks first; the others wait
        for its marker (or find it in the database). An existing one is moved under the parent ``tags`` name
        and given ``run_name`` if it was logged otherwise (by an earlier version)."""
        if group not in self.parents:

            def create() -> str:
                return self.backend.find(GROUP_TAG, group) or self._create_group_run(group, tags, run_name, start_ms)

            if self.claims is None:
                self.parents[group] = self._create_group_run(group, tags, run_name, start_ms)
            else:
                name = short_hash(group)
                self.parents[group] = self.claims.once("parents", name, f"parent-{name}", create, group=group)
        run_id = self.parents[group]
        parent = tags.get("mlflow.parentRunId")
        if parent is not None and self.parent_of.get(run_id) != parent:
            upsert(self.client.set_tag, run_id, "mlflow.parentRunId", parent)
            upsert(self.client.update_run, run_id, name=run_name)
            self.parent_of[run_id] = parent
        return run_id

    def _create_group_run(self, group: str, tags: dict[str, str], run_name: str, start_ms: int | None) -> str:
        tags = {GROUP_TAG: group, **self.source_tags, **tags}
        run = self.client.create_run(self.experiment_id, start_time=start_ms, run_name=run_name, tags=tags)
        self.parent_of[run.info.run_id] = tags.get("mlflow.parentRunId")
        self.opened.add(run.info.run_id)
        return run.info.run_id

    def _method_run(self, model: str, method: str, stage: int, start_ms: int | None = None, order: int = 0) -> str:
        """A competitor's top-level run; ``order``, its place in the experiment file, is kept as a tag (its start
        is its first trial's, so the newest-first table does not keep that order)."""
        tags = {LEVEL_TAG: "method", "method": method, "model": model, "stage": str(stage)}
        tags.update({"mlflow.runColor": self.colour(method), ORDER_TAG: f"{order:04d}"})
        return self._group_run(f"method/{model}/{method}", tags, f"{method} · {model}", start_ms)

    def is_source(self, trial: Trial) -> bool:
        """A stage-1 adapter (or LoRA) of a task that is no target: an input of the transfer trials, not a
        competitor's result."""
        return bool(self.targets) and trial.stage == 1 and not trial.joint and trial.task not in self.targets

    def _sources_run(self, model: str) -> str:
        tags = {LEVEL_TAG: "sources", "model": model, "stage": "1", ORDER_TAG: "9999"}  # after every competitor
        return self._group_run(f"sources/{model}", tags, f"sources · {model}")

    def _parent(self, trial: Trial) -> str:
        if self.is_source(trial):
            top = self._sources_run(trial.model)
        else:
            top = self._method_run(trial.model, trial.method, trial.stage)
        tags = {"stage": str(trial.stage), "method": trial.method, "task": trial.task, "model": trial.model}
        tags.update({LEVEL_TAG: "group", "mlflow.parentRunId": top, "mlflow.runColor": self.colour(trial.method)})
        suffix = f" · {trial.role}" if trial.role in ("search", "import") else ""
        return self._group_run(group_of(trial), tags, f"{trial.task}{suffix}")  # its method is its parent's

    def arrange(self, trials: list[Trial]) -> list[tuple]:
        """The methods' top-level runs of ``trials``, created in reverse order with their place in the experiment
        file (the default newest-first table then lists them in the file's), before any trial is logged under
        them; returns the (model, method, stage) of each."""
        methods = list(dict.fromkeys((t.model, t.method, t.stage) for t in trials if not self.is_source(t)))
        for trial in trials:
            self.colour(trial.method)
        now = ms(time.time())
        for offset, (model, method, stage) in enumerate(reversed(methods)):
            self._method_run(model, method, stage, start_ms=now + offset, order=len(methods) - 1 - offset)
        return methods

    def begin(self, trials: list[Trial]) -> None:
        """Open the parent runs of ``trials`` (RUNNING: their trials may run now), the methods' in the file's
        order (`arrange`)."""
        methods = self.arrange(trials)
        self.known.update((trial.key, trial) for trial in trials)
        groups = {self._parent(trial) for trial in trials}
        sources = {self._sources_run(t.model) for t in trials if self.is_source(t)}  # reopened as the rest are
        for run_id in {self.parents[f"method/{m}/{me}"] for m, me, _ in methods} | groups | sources:
            if run_id not in self.opened:
                self.backend.set_state(run_id, "RUNNING")
                self.opened.add(run_id)

    # -- children -------------------------------------------------------------------------------------

    def run_record(self, trial: Trial, store: Store):
        """What the child run of a finished trial holds (`harness.tracking.records.trial_record`)."""
        folder = store.pull(trial.key)  # a remote store's artifacts, downloaded once to log them
        tags = {
            **self.source_tags,
            "mlflow.parentRunId": self._parent(trial),
            "mlflow.runColor": self.colour(trial.method),
        }
        source_runs = [self.logged.get(key, "") for key in trial.depends_on]
        result = store.result(trial.key)
        return trial_record(trial, result, folder, tags, source_runs, self.experiment_id, store.model_dir(trial.key))

    def log_trials(self, trials: list[Trial], store: Store) -> int:
        """A child run for each finished trial not logged yet (found by its key tag), and for each finished
        source of one; returns how many. A trial whose source another driver is logging right now waits for a
        later call, so that its ``source_runs`` never name an empty run. On a SQL backend all runs of the call
        go in one transaction; elsewhere, e.g. over HTTP, three batched requests per run."""
        self.known.update((t.key, t) for t in trials)
        # one run per key: a promoted halving point comes twice (its pause, then its end), its latest plan last
        unlogged = list({t.key: t for t in self._with_sources(trials) if t.key not in self.logged}.values())
        done = store.done_keys(t.key for t in unlogged)  # one listing on a remote store
        todo = [t for t in unlogged if t.key in done]
        if not todo:
            return 0
        if self.claims is None:
            return self._write(todo, store)
        self.logged.update(self.claims.markers("logged", self.logged))  # logged meanwhile by another submit
        todo = [t for t in todo if t.key not in self.logged]
        with self.claims.claimed([t.key for t in todo]) as claimed:
            claimed = set(claimed)  # a trial another driver is logging right now is left to it
            ours = [t for t in todo if t.key in claimed and self.claims.marker("logged", t.key) is None]
            in_database = self.backend.runs_with_keys([t.key for t in ours])  # its driver died before the marker
            for key, run_id in in_database.items():
                self.claims.mark("logged", key, run_id)
                self.logged[key] = run_id
            return self._write([t for t in ours if t.key not in in_database], store)

    def _with_sources(self, trials: list[Trial]) -> list[Trial]:
        """``trials`` and, before them, the known trials they depend on (a source's key is in ``depends_on``)."""
        keys = {t.key for t in trials}
        sources = {k: self.known[k] for t in trials for k in t.depends_on if k in self.known and k not in keys}
        return [*sources.values(), *trials]

    def _write(self, todo: list[Trial], store: Store) -> int:
        """Stage by stage, so that a transfer trial links to its sources' runs even when both are new; one whose
        known source has no run yet is left for a later call."""
        written = 0
        for stage in sorted({t.stage for t in todo}):
            batch = [t for t in todo if t.stage == stage and self._sources_logged(t)]
            ids = self.backend.write_runs([self.run_record(t, store) for t in batch]) if batch else []
            for trial, run_id in zip(batch, ids, strict=True):
                if self.claims is not None:
                    self.claims.mark("logged", trial.key, run_id)
                self.logged[trial.key] = run_id
            written += len(batch)
        return written

    def _sources_logged(self, trial: Trial) -> bool:
        return all(key in self.logged or key not in self.known for key in trial.depends_on)

    def log_finished(self, batch: list[Trial], store: Store) -> int:
        """What submit calls as Ray reports trials finished: written at most once per LOG_EVERY_SECONDS
        (`Coalescer`); the submit's closing `log_trials` writes what is still held."""
        if self.coalescer is None:
            self.coalescer = Coalescer(lambda held: self.log_trials(held, store))
        return self.coalescer.add(batch)

    def log_trial(self, trial: Trial, store: Store) -> str | None:
        """One trial's child run (none if it exists already); its run id."""
        self.log_trials([trial], store)
        return self.logged.get(trial.key)

    def add_checks(self, trial: Trial, result: dict) -> int:
        """The learned-anything checks of ``result`` (`check_metrics`) that ``trial``'s run lacks, added to it (a
        store older than the checks, measured by `harness measure`); returns how many. Nothing if it has no run."""
        from mlflow.entities import Metric

        run_id = self.logged.get(trial.key)
        if run_id is None:
            return 0
        has = self.client.get_run(run_id).data.metrics
        end = ms(result.get("finished_at") or time.time())
        points = [p for p in check_metrics(result, end, trial.joint) if p[0] not in has]
        if points:
            metrics = [Metric(key, value, timestamp, step) for key, value, timestamp, step in points]
            upsert(self.client.log_batch, run_id, metrics=metrics)
        return len(points)

    # -- the sweep's summary ----------------------------------------------------------------------------

    def finish(
        self,
        trials: list[Trial],
        store: Store,
        targets: list[str] | None = None,
        choices: list[dict] | None = None,
        unfinished: str | None = "FAILED",
    ) -> None:
        """End the parent runs of ``trials``: each group FINISHED when all its trials are done, else
        ``unfinished`` (FAILED; KILLED for a submit stopped by Ctrl-C; None: left RUNNING, as while another submit
        still runs them), spanning its children; the seed mean and sd of its final trials, and a description naming the
        checkpoint each seed selected. A searched group's search parent describes its points and the chosen
        one, its final group names the chosen point (``choices``: `harness.selection.selection_rows`). Then each
        method's top-level run: every task's means, and the average over ``targets`` of their main metric."""
        self._regroup(trials, choices or [])
        done = store.done_keys(t.key for t in trials)
        reached = reached_keys(trials, store, done)  # the listing above, not a second one
        groups: dict[str, list[Trial]] = {}
        for trial in trials:
            groups.setdefault(self._parent(trial), []).append(trial)
        searched = self._searched(trials, choices or [])
        now = ms(time.time())
        spans = self.backend.child_spans(list(groups))
        tops: dict[str, list[str]] = {}
        top_params: dict[str, list[dict[str, str]]] = {}
        failed: dict[str, bool] = {}
        task_scores: dict[str, dict[str, dict[str, list[float]]]] = {}
        for run_id, members in groups.items():
            top = self.parent_of.get(run_id) or self._method_run(members[0].model, members[0].method, members[0].stage)
            tops.setdefault(top, []).append(run_id)
            results = {t.key: store.result(t.key) for t in members if t.key in done and t.role == "final"}
            lines = []
            if results:
                finished = [t for t in members if t.key in results]
                metrics, lines = group_summary(finished, results)
                if not finished[0].joint:  # also under the competitors' column names, so expanded rows fill them
                    metrics += [(f"{finished[0].task}/{k}", v) for k, v in metrics if k.startswith("test_")]
                params = shared_params(finished, results)
                self._log_params(run_id, params)
                top_params.setdefault(top, []).append(params)
                for trial in (t for t in members if t.key in results):
                    for task, per_task in task_results(results[trial.key]):
                        for name, value in per_task["test"].items():
                            if number(value):
                                scores = task_scores.setdefault(top, {}).setdefault(task, {})
                                scores.setdefault(name, []).append(scaled(name, value))
                self._log_metrics(run_id, metrics, now)
            if run_id in searched:
                lines = search_lines(*searched[run_id], lines)
            text = "\n".join(lines) or "No trial of this group finished."
            upsert(self.client.set_tag, run_id, "mlflow.note.content", text)
            # a point successive halving stopped at a rung has trained all it will: it counts as done here
            status = "FINISHED" if all(t.key in reached for t in members) else unfinished
            failed[top] = failed.get(top, False) or status != "FINISHED"
            start, end = spans.get(run_id, (None, now))  # exactly its children's span; a failed group ends now
            if status is not None:
                self.backend.set_state(run_id, status, start, end if status == "FINISHED" else max(end, now))
        top_spans = self.backend.child_spans(list(tops))
        columns = ["avg_test_score_mean"] if targets else []
        for top in tops:
            scores = task_scores.get(top, {})
            metrics, text, shown_columns = method_summary(scores, {t: get_task(t).metric for t in scores}, targets)
            columns += shown_columns
            self._log_metrics(top, metrics, now)
            self._log_params(top, method_params(top_params.get(top, [])))
            upsert(self.client.set_tag, top, "mlflow.note.content", "\n".join(text))
            start, end = top_spans.get(top, (None, now))
            if not failed[top]:
                self.backend.set_state(top, "FINISHED", start, end)
            elif unfinished is not None:
                self.backend.set_state(top, unfinished, start, end)
        if tops:
            charts = list(dict.fromkeys(columns))  # each target's bars of the means, then beside them its sds
            trial_columns = [f"test_{get_task(t).metric}" for t in targets or ()]  # what the trials' rows fill
            columns = list(dict.fromkeys(charts + trial_columns))
            upsert(share_view, self.client, self.experiment_id, columns, len(tops), charts)

    def _log_params(self, run_id: str, params: dict[str, str]) -> None:
        """MLflow keeps a param's first value: new ones are logged, one that moved since (a search's choice
        after a retried point) is named in the tag `harness.params_moved`, the param itself left as it was."""
        from mlflow.entities import Param

        if not params:
            return
        logged = self.client.get_run(run_id).data.params
        new = [Param(k, v) for k, v in params.items() if k not in logged]
        moved = sorted(k for k, v in params.items() if k in logged and logged[k] != v)
        if new:
            for first in range(0, len(new), 100):  # MLflow takes at most 100 params a batch
                upsert(self.client.log_batch, run_id, params=new[first : first + 100])
        if moved:
            upsert(self.client.set_tag, run_id, "harness.params_moved", ",".join(moved)[:5000])

    def _log_metrics(self, run_id: str, metrics: list[tuple[str, float]], now: int) -> None:
        from mlflow.entities import Metric

        if metrics:
            upsert(self.client.log_batch, run_id, metrics=[Metric(name, value, now, 0) for name, value in metrics])

    def _regroup(self, trials: list[Trial], choices: list[dict]) -> None:
        """A searched seed at the chosen point is a final trial: logged as it finished, while still a search
        point, its run went under the search's group; it moves under the final group, beside its other seeds."""
        by_key = {t.key: t for t in trials}
        for row in choices:
            for key in set(row.get("search_keys", [])) & set(row.get("final_keys", [])):
                trial, run_id = by_key.get(key), self.logged.get(key)
                if trial is None or run_id is None or trial.role != "final" or key in self.regrouped:
                    continue
                upsert(self.client.set_tag, run_id, "mlflow.parentRunId", self._parent(trial))
                self.regrouped.add(key)

    def _searched(self, trials: list[Trial], choices: list[dict]) -> dict[str, tuple[dict, str]]:
        """Parent run id → (its selection row, "search" or "final") for the groups a search chose for."""
        by_key = {t.key: t for t in trials}
        found: dict[str, tuple[dict, str]] = {}
        for row in choices:  # a search trial at the chosen point that is also a final trial sits in the final group
            for key in (k for k in [*row.get("search_keys", []), *row.get("final_keys", [])] if k in by_key):
                trial = by_key[key]
                found[self._parent(trial)] = (row, "search" if trial.role == "search" else "final")
        return found

    def log_report(self, files: list, figures: dict[str, list]) -> str:
        """The report on the sweep's "report" run (tables and every figure under report/), and each (method,
        target)'s mixing figure on its parent run, so the UI shows them where one looks. The report run is
        dated just before the sweep's first top-level run, so the newest-first table lists it last. Returns
        the run id."""
        earliest = self.backend.earliest_start([r for g, r in self.parents.items() if g.startswith("method/")])
        run_id = self._group_run(REPORT_GROUP, {LEVEL_TAG: "report"}, "report", start_ms=earliest)
        for path in files:
            self.client.log_artifact(run_id, str(path), artifact_path="report")
        for group, paths in figures.items():
            target, folder = (run_id, "report/figures") if group == "sweep" else (self.parents.get(group), "figures")
            for path in paths if target else []:
                self.client.log_artifact(target, str(path), artifact_path=folder)
        self.backend.set_state(run_id, "FINISHED", end_ms=ms(time.time()))
        return run_id


def store_tracker(store: Store, experiment: str, source: str | None = None) -> Tracker:
    """The tracker over the store's own database, artifacts under store/mlartifacts/<experiment>."""
    return Tracker(store_tracking_uri(store), experiment, store.tracking_artifacts(experiment).as_uri(), store, source)


def open_tracker(
    store: Store, experiment: str, source: str | None = None, tracking_uri: str | None = None, targets=()
) -> Tracker:
    """The tracker a submit writes with: the store's own database unless ``tracking_uri`` names another; a
    server keeps artifacts where it is told, a database gets them in the store. ``targets``: the sweep's, so
    that its source adapters sit apart from the competitors."""
    if tracking_uri is None:
        tracker = store_tracker(store, experiment, source)
    elif tracking_uri.startswith(("http://", "https://")):
        tracker = Tracker(tracking_uri, experiment, store=store, source=source)
    else:
        tracker = Tracker(tracking_uri, experiment, store.tracking_artifacts(experiment).as_uri(), store, source)
    tracker.targets = set(targets)
    return tracker
