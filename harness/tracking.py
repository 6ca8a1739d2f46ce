"""MLflow, written by the driver only: workers never talk to MLflow, so there is no experiment-creation
race (MLflow #979, #10334) and the server sees one client that batches its requests.

Hierarchy: one experiment per experiment file; a parent run per (stage, method, task) carrying the seed
aggregate; a child run per trial with its params, tags, per-evaluation and final metrics and artifacts.
A child run is found again by its `harness.trial_key` tag, so a resubmit never creates a twin.

Several submits may run on one store at once (harness/submit.py); each logs what finishes, so each trial
and parent run is *claimed* before it is written: a short lease in the store
(``tracking/<destination>/<experiment id>/claims/``), then a marker with its run id (``…/logged/<key>.json``,
``…/parents/<hash>.json``) once written. A driver that finds a marker, or a claim held by another, skips
the trial; one that finds a run in the database but no marker (a driver killed between the two) writes the
marker instead of a twin. Creating or upgrading the database, and the experiment, happens under a lock in
the store (``tracking/setup.lock``), one driver at a time.

With no tracking URI the driver writes the store's own SQLite database (``store/mlflow.db``, artifacts in
``store/mlartifacts``): it is MLflow's only writer, so no server sits in between. `harness ui` serves
that database on 127.0.0.1; `EmbeddedServer` starts `mlflow server` over it where a URL is needed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from harness.plan import Trial, finals
from harness.store import Store, renewing
from scalearn.engines import free_port

KEY_TAG = "harness.trial_key"
GROUP_TAG = "harness.group"
REPORT_GROUP = "report"


@dataclass
class RunRecord:
    """One finished child run, backend-neutral. Metrics are (key, value, timestamp ms, step)."""

    name: str
    tags: dict[str, str]
    params: dict[str, str]
    metrics: list[tuple[str, float, int, int]]
    start_ms: int
    end_ms: int
    artifacts: list[tuple[Path, str | None]] = field(default_factory=list)  # (file or folder, artifact path)


def _copy_artifacts(artifact_uri: str, record: RunRecord) -> None:
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    if not record.artifacts:
        return
    repository = get_artifact_repository(artifact_uri)
    for path, artifact_path in record.artifacts:
        if path.is_dir():
            repository.log_artifacts(str(path), artifact_path)
        else:
            repository.log_artifact(str(path), artifact_path)


def write_runs_api(client, experiment_id: str, records: list[RunRecord]) -> list[str]:
    """Through MLflow's client (any backend, HTTP included): create with tags, batched params and metrics, end."""
    from mlflow.entities import Metric, Param

    ids = []
    for record in records:
        run = client.create_run(
            experiment_id, start_time=record.start_ms, tags={**record.tags, "mlflow.runName": record.name}
        )
        run_id = run.info.run_id
        params = [Param(k, v) for k, v in record.params.items()]
        metrics = [Metric(k, v, ts, step) for k, v, ts, step in record.metrics]
        for start in range(0, len(params), 100):  # MLflow's limits per request: 100 params, 1000 metrics
            client.log_batch(run_id, params=params[start : start + 100])
        for start in range(0, len(metrics), 1000):
            client.log_batch(run_id, metrics=metrics[start : start + 1000])
        _copy_artifacts(run.info.artifact_uri, record)
        client.set_terminated(run_id, end_time=record.end_ms)
        ids.append(run_id)
    return ids


def _sql_store(client):
    """The client's SqlAlchemyStore when the tracking URI is a database, else None (then the API path)."""
    try:
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    except ImportError:  # pragma: no cover — an MLflow without the SQL store
        return None
    store = getattr(getattr(client, "_tracking_client", None), "store", None)
    return store if isinstance(store, SqlAlchemyStore) else None


def write_runs_sql(
    sql_store, experiment_id: str, records: list[RunRecord], artifact_location: str | None = None
) -> list[str]:
    """Bulk path: every run of ``records`` in ONE transaction of multi-row inserts into MLflow's own tables
    (their SQLAlchemy definitions, so the installed MLflow's schema): exactly the rows that `create_run` +
    `log_batch` + `set_terminated` write, latest_metrics by MLflow's rule (greatest (step, timestamp, value)).
    Artifacts are copied first, so a kill between the two leaves at worst an orphan artifact folder, never a
    run without its artifacts; a kill inside the transaction leaves nothing. 5× the API path's runs per second
    with one run per transaction, ~45× with 100 (benchmarks/mlflow_throughput.json)."""
    from mlflow.entities import LifecycleStage, RunStatus, SourceType
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric, SqlParam, SqlRun, SqlTag
    from mlflow.utils.uri import append_to_uri_path
    from sqlalchemy import insert

    location = artifact_location or sql_store.get_experiment(experiment_id).artifact_location
    rows: dict = {SqlRun: [], SqlTag: [], SqlParam: [], SqlMetric: [], SqlLatestMetric: []}
    ids = []
    for record in records:
        run_id = uuid.uuid4().hex
        artifact_uri = append_to_uri_path(location, run_id, "artifacts")
        _copy_artifacts(artifact_uri, record)
        rows[SqlRun].append(
            dict(
                run_uuid=run_id,
                name=record.name,
                artifact_uri=artifact_uri,
                experiment_id=int(experiment_id),
                source_type=SourceType.to_string(SourceType.UNKNOWN),
                source_name="",
                entry_point_name="",
                user_id=record.tags.get("mlflow.user", "unknown"),
                status=RunStatus.to_string(RunStatus.FINISHED),
                start_time=record.start_ms,
                end_time=record.end_ms,
                deleted_time=None,
                source_version="",
                lifecycle_stage=LifecycleStage.ACTIVE,
            )
        )
        tags = {**record.tags, "mlflow.runName": record.name}
        rows[SqlTag] += [dict(key=k, value=v, run_uuid=run_id) for k, v in tags.items()]
        rows[SqlParam] += [dict(key=k, value=v, run_uuid=run_id) for k, v in record.params.items()]
        latest: dict[str, dict] = {}
        for key, value, timestamp, step in record.metrics:
            is_nan = math.isnan(value)
            row = dict(
                key=key, value=0.0 if is_nan else value, timestamp=timestamp, step=step, is_nan=is_nan, run_uuid=run_id
            )
            rows[SqlMetric].append(row)
            old = latest.get(key)
            if old is None or (step, timestamp, row["value"]) > (old["step"], old["timestamp"], old["value"]):
                latest[key] = row
        rows[SqlLatestMetric] += latest.values()
        ids.append(run_id)
    with sql_store.ManagedSessionMaker(read_only=False) as session:
        for model, values in rows.items():  # runs first: the other tables point at them
            if values:
                session.execute(insert(model.__table__), values)
    return ids


class EmbeddedServer:
    """`mlflow server` bound to 127.0.0.1 (by default over the store's SQLite file, artifacts in the store;
    ``backend_uri`` names another database, e.g. PostgreSQL), stopped with its process group."""

    def __init__(
        self,
        store: Store,
        port: int | None = None,
        host: str = "127.0.0.1",
        workers: int = 1,
        backend_uri: str | None = None,
    ):
        self.store, self.host, self.port, self.workers = store, host, port or free_port(), workers
        self.backend_uri = backend_uri or store.tracking_uri
        self.process: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 60.0) -> EmbeddedServer:
        self.store.root.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--backend-store-uri",
            self.backend_uri,
            "--default-artifact-root",
            str(self.store.tracking_artifacts()),
            "--workers",
            str(self.workers),
        ]
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no huey workers outliving us
        log = open(self.store.root / "mlflow-server.log", "ab")  # noqa: SIM115 — lives as long as the server
        self.process = subprocess.Popen(command, env=env, stdout=log, stderr=log, start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited; see {self.store.root / 'mlflow-server.log'}")
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"mlflow server did not answer on {self.uri} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process = None

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def metric_name(name: str) -> str:
    """MLflow's name of a result metric. A joint trial's per-task metrics ("dev_rte/loss", "test_rte/accuracy")
    become "rte/dev_loss", "rte/test_accuracy": the UI groups charts by the part before the slash, so each task
    gets its own section."""
    if "/" not in name:
        return name
    prefix, rest = name.split("_", 1)
    task, metric = rest.split("/", 1)
    return f"{task}/{prefix}_{metric}"


def _flatten(prefix: str, value, out: dict) -> dict:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    else:
        out[prefix] = json.dumps(value) if isinstance(value, list | tuple) else str(value)
    return out


def store_tracking_uri(store: Store) -> str:
    """The store's own MLflow database. The driver is the only writer, so it writes to it directly (no HTTP
    round trips: ~3× the runs per second of the embedded server, benchmarks/mlflow_throughput.py)."""
    store.root.mkdir(parents=True, exist_ok=True)
    return store.tracking_uri


def store_tracker(store: Store, experiment: str) -> Tracker:
    """The tracker over the store's own database, artifacts under store/mlartifacts/<experiment>."""
    return Tracker(store_tracking_uri(store), experiment, store.tracking_artifacts(experiment).as_uri(), store)


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


CLAIM_WAIT_SECONDS = 600.0
"""How long a driver waits for another to create a parent run it claimed. Claims live as long as leases
(renewed while their holder writes): a dead driver's claim lapses within a minute, at once on its own host."""


class Tracker:
    def __init__(
        self, tracking_uri: str, experiment: str, artifact_location: str | None = None, store: Store | None = None
    ):
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # one line per run is noise here
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        self.store = store
        setup = store.locked("tracking/setup.lock") if store is not None else contextlib.nullcontext()
        with setup:  # a fresh database is created (or an old one upgraded) by one driver at a time
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
        self.artifact_location: str | None = None
        self.claims = None
        if store is not None:
            destination = "store" if tracking_uri == store.tracking_uri else _short_hash(tracking_uri)
            self.claims = f"tracking/{destination}/{self.experiment_id}"
        self.logged = self._existing(KEY_TAG)
        self.parents = self._existing(GROUP_TAG)
        if self.claims is not None:
            self.logged.update(self._markers("logged"))

    def _existing(self, tag: str) -> dict[str, str]:
        """Tag value → run id, for every run of the experiment that carries the tag (paged)."""
        found, token = {}, None
        while True:
            page = self.client.search_runs(
                [self.experiment_id], filter_string=f"tags.`{tag}` != ''", max_results=5000, page_token=token
            )
            for run in page:
                found.setdefault(run.data.tags[tag], run.info.run_id)
            token = page.token
            if not token:
                return found

    def _markers(self, kind: str, known=()) -> dict[str, str]:
        """Name → run id of the markers in the store: one listing, and a read for each name not ``known``."""
        names = [name.removesuffix(".json") for name in self.store.names_at(f"{self.claims}/{kind}")]
        return {name: record["run_id"] for name in names if name not in known and (record := self._marker(kind, name))}

    def _marker(self, kind: str, name: str) -> dict | None:
        return self.store.read_at(f"{self.claims}/{kind}/{name.removesuffix('.json')}.json")

    def _mark(self, kind: str, name: str, run_id: str, **extra) -> None:
        self.store.write_at(f"{self.claims}/{kind}/{name}.json", {"run_id": run_id, **extra})

    @contextlib.contextmanager
    def _claimed(self, names: list[str]):
        """Claim each name for this driver; yields the names claimed (those another driver holds are left
        out), renewing the claims until the block ends, then releasing them."""
        owners = {}
        for name in names:
            owner = self.store.acquire_at(f"{self.claims}/claims/{name}.json")
            if owner is not None:
                owners[name] = owner

        def renew():
            for name, owner in owners.items():
                with contextlib.suppress(OSError):
                    self.store.renew_at(f"{self.claims}/claims/{name}.json", owner)

        try:
            with renewing(renew):
                yield list(owners)
        finally:
            for name, owner in owners.items():
                self.store.release_at(f"{self.claims}/claims/{name}.json", owner)

    def _group_run(self, group: str, tags: dict[str, str], run_name: str | None = None) -> str:
        """The parent run of ``group``, created once whichever driver asks first; the others wait for its
        marker (or find it in the database)."""
        if group in self.parents:
            return self.parents[group]
        if self.claims is None:
            self.parents[group] = self._create_group_run(group, tags, run_name)
            return self.parents[group]
        name = _short_hash(group)
        deadline = time.time() + CLAIM_WAIT_SECONDS
        while group not in self.parents:
            marker = self._marker("parents", name)
            if marker is not None:
                self.parents[group] = marker["run_id"]
                break
            with self._claimed([f"parent-{name}"]) as claimed:
                if claimed:
                    marker = self._marker("parents", name)
                    run_id = marker["run_id"] if marker else self._find(GROUP_TAG, group)
                    run_id = run_id or self._create_group_run(group, tags, run_name)
                    self._mark("parents", name, run_id, group=group)
                    self.parents[group] = run_id
                    break
            if time.time() > deadline:
                raise RuntimeError(f"MLflow parent run {group!r}: still claimed by another submit")
            time.sleep(0.2)
        return self.parents[group]

    def _create_group_run(self, group: str, tags: dict[str, str], run_name: str | None) -> str:
        run = self.client.create_run(self.experiment_id, run_name=run_name or group, tags={GROUP_TAG: group, **tags})
        self.client.set_terminated(run.info.run_id)
        return run.info.run_id

    def _find(self, tag: str, value: str) -> str | None:
        quoted = value.replace("'", "\\'")
        runs = self.client.search_runs([self.experiment_id], filter_string=f"tags.`{tag}` = '{quoted}'", max_results=1)
        return runs[0].info.run_id if runs else None

    def _runs_with_keys(self, keys: list[str]) -> dict[str, str]:
        """Trial key → run id for those of ``keys`` that have a child run in the database already."""
        if not keys:
            return {}
        sql_store = _sql_store(self.client)
        if sql_store is None:  # over HTTP: a search per key (only for the trials this driver claimed)
            return {key: run_id for key in keys if (run_id := self._find(KEY_TAG, key))}
        from mlflow.store.tracking.dbmodels.models import SqlRun, SqlTag
        from sqlalchemy import select

        found = {}
        with sql_store.ManagedSessionMaker() as session:
            for start in range(0, len(keys), 500):
                query = (
                    select(SqlTag.value, SqlTag.run_uuid)
                    .join(SqlRun, SqlRun.run_uuid == SqlTag.run_uuid)
                    .where(SqlTag.key == KEY_TAG, SqlTag.value.in_(keys[start : start + 500]))
                    .where(SqlRun.experiment_id == int(self.experiment_id), SqlRun.lifecycle_stage == "active")
                )
                for value, run_id in session.execute(query):
                    found.setdefault(value, run_id)
        return found

    def _parent(self, trial: Trial) -> str:
        group = f"stage{trial.stage}/{trial.method}/{trial.task}/{trial.model}"
        if trial.role == "search":  # a group's search points under a parent of their own
            group += "/search"
        tags = {"stage": str(trial.stage), "method": trial.method, "task": trial.task, "model": trial.model}
        return self._group_run(group, tags)

    def run_record(self, trial: Trial, store: Store) -> RunRecord:
        """What the child run of a finished trial holds: tags, params, per-evaluation and final metrics."""
        result = store.result(trial.key)
        provenance = result.get("provenance", {})
        tags = {
            "mlflow.parentRunId": self._parent(trial),
            KEY_TAG: trial.key,
            "stage": str(trial.stage),
            "method": trial.method,
            "task": trial.task,
            "seed": str(trial.seed),
            "model": trial.model,
            "source_keys": ",".join(trial.depends_on),
            "source_tasks": ",".join(trial.source_tasks),
            "node": result.get("node", ""),
            "host": provenance.get("hardware", {}).get("host", ""),
            "git_commit": provenance.get("git_commit", ""),
        }
        if trial.joint:
            tags["tasks"] = ",".join(trial.tasks)
        tags["role"] = trial.role
        if trial.point is not None:
            tags["search_point"] = json.dumps(trial.point, sort_keys=True)
        folder = store.pull(trial.key)  # a remote store's artifacts, downloaded once to log them
        finished = result.get("finished_at") or (folder / "result.json").stat().st_mtime
        end = int(finished * 1000)
        start = end - int(1000 * float(result.get("wall_seconds", 0)))
        # a joint trial evaluates every N steps: its history is stepped by training step, not epoch
        step_of = (lambda row: int(row.get("step", 0))) if trial.joint else (lambda row: int(row.get("epoch", 0)))
        metrics = [
            (metric_name(k), float(v), end, step_of(row))
            for row in result.get("history", [])
            for k, v in row.items()
            if k.startswith("dev_") and isinstance(v, int | float)
        ]
        metrics += [(metric_name(f"test_{k}"), float(v), end, 0) for k, v in result.get("test", {}).items()]
        metrics += [(f"params_{k}", float(v), end, 0) for k, v in result.get("parameters", {}).items()]
        metrics += [
            ("wall_seconds", float(result.get("wall_seconds", 0)), end, 0),
            ("best_epoch", float(result.get("best_epoch", -1)), end, 0),
        ]
        artifacts = [(folder / "result.json", None)]
        if store.model_dir(trial.key).exists():
            artifacts.append((store.model_dir(trial.key), "model"))
        return RunRecord(
            name=f"{trial.method}/{trial.task}/seed{trial.seed}",
            tags=tags,
            params={k: v[:6000] for k, v in _flatten("", trial.config.model_dump(mode="json"), {}).items()},
            metrics=metrics,
            start_ms=start,
            end_ms=end,
            artifacts=artifacts,
        )

    def log_trials(self, trials: list[Trial], store: Store) -> int:
        """A child run for each finished trial not logged yet (found by its key tag); returns how many.

        On a SQL backend all runs of the call go in one transaction (`write_runs_sql`); elsewhere, e.g. over
        HTTP, three batched requests per run (`write_runs_api`)."""
        unlogged = [t for t in trials if t.key not in self.logged]
        done = store.done_keys(t.key for t in unlogged)  # one listing on a remote store
        todo = [t for t in unlogged if t.key in done]
        if not todo:
            return 0
        if self.claims is None:
            return self._write(todo, store)
        self.logged.update(self._markers("logged", self.logged))  # logged meanwhile by another submit
        todo = [t for t in todo if t.key not in self.logged]
        with self._claimed([t.key for t in todo]) as claimed:
            claimed = set(claimed)  # a trial another driver is logging right now is left to it
            ours = [t for t in todo if t.key in claimed and self._marker("logged", t.key) is None]
            in_database = self._runs_with_keys([t.key for t in ours])  # its driver died before the marker
            for key, run_id in in_database.items():
                self._mark("logged", key, run_id)
                self.logged[key] = run_id
            return self._write([t for t in ours if t.key not in in_database], store)

    def _write(self, todo: list[Trial], store: Store) -> int:
        if not todo:
            return 0
        records = [self.run_record(t, store) for t in todo]
        sql_store = _sql_store(self.client)
        if sql_store is not None:
            if self.artifact_location is None:
                self.artifact_location = self.client.get_experiment(self.experiment_id).artifact_location
            ids = write_runs_sql(sql_store, self.experiment_id, records, self.artifact_location)
        else:
            ids = write_runs_api(self.client, self.experiment_id, records)
        for trial, run_id in zip(todo, ids, strict=True):
            if self.claims is not None:
                self._mark("logged", trial.key, run_id)
            self.logged[trial.key] = run_id
        return len(todo)

    def log_trial(self, trial: Trial, store: Store) -> str | None:
        """One trial's child run (none if it exists already); its run id."""
        self.log_trials([trial], store)
        return self.logged.get(trial.key)

    def log_report(self, files: list, figures: dict[str, list]) -> str:
        """The report on the sweep's "report" run (tables and every figure under report/), and each (method,
        target)'s mixing figure on its parent run, so the UI shows them where one looks. Returns the run id."""
        run_id = self._group_run(REPORT_GROUP, {}, run_name="report")
        for path in files:
            self.client.log_artifact(run_id, str(path), artifact_path="report")
        for group, paths in figures.items():
            target, folder = (run_id, "report/figures") if group == "sweep" else (self.parents.get(group), "figures")
            for path in paths if target else []:
                self.client.log_artifact(target, str(path), artifact_path=folder)
        return run_id

    def log_aggregates(self, trials: list[Trial], store: Store) -> None:
        """Seed mean and sd of every test metric on each parent run."""
        from mlflow.entities import Metric

        groups: dict[str, list[dict]] = {}
        for trial in finals(trials):
            if store.is_done(trial.key):
                groups.setdefault(self._parent(trial), []).append(store.result(trial.key).get("test", {}))
        now = int(time.time() * 1000)
        for run_id, tests in groups.items():
            metrics = [Metric("seeds", float(len(tests)), now, 0)]
            for name in tests[0]:
                values = [t[name] for t in tests if name in t]
                metrics.append(Metric(metric_name(f"test_{name}_mean"), float(statistics.mean(values)), now, 0))
                if len(values) > 1:
                    metrics.append(Metric(metric_name(f"test_{name}_sd"), float(statistics.stdev(values)), now, 0))
            self.client.log_batch(run_id, metrics=metrics)


def ui_command(store: Store) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        store.tracking_uri,
        "--host",
        "127.0.0.1",
    ]


__all__ = [
    "EmbeddedServer",
    "RunRecord",
    "Tracker",
    "store_tracker",
    "store_tracking_uri",
    "ui_command",
    "write_runs_api",
    "write_runs_sql",
]
