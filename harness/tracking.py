"""MLflow, written by the driver only: workers never talk to MLflow, so there is no experiment-creation
race (MLflow #979, #10334) and the server sees one client that batches its requests.

What the UI shows (one experiment per experiment file, marked a model-training experiment):

- a top-level run per (model, method): the competitors, so the default table and chart view compare the
  methods; it holds each task's seed mean and sd (``<task>/test_<metric>_mean``) and the average over the
  targets (``avg_test_score_mean``);
- under it a run per (method, task) group (``stage<s>/<method>/<task>/<model>``; a group's search points
  and imported sources under groups of their own), with the group's mean and sd and, in its description,
  the checkpoint each seed selected;
- under that a child run per trial: params, MLflow's own tags (source, git commit, user), the training
  loss per optimizer step, each evaluation at its step and time, ``best_dev_<metric>`` at the selected
  step, test scores, system metrics sampled where it ran, its datasets (``log_input``), links to the
  runs of its source adapters;
- the report on a run of its own, sorted last.

One scale: scores ×100 as in the report (docs/method.md §4.2), losses as they are (`harness.stats.scaled`).
Parents are RUNNING while a submit may still run their trials, span their children's times and end
FINISHED, or FAILED when one of their trials failed for good or never ran.

A child run is found again by its `harness.trial_key` tag, so a resubmit never creates a twin. Several
submits may run on one store at once (harness/submit.py); each logs what finishes, so each trial and parent
run is *claimed* before it is written: a short lease in the store
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
import getpass
import hashlib
import itertools
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

from harness.plan import Trial
from harness.stats import scaled
from harness.store import Store, renewing
from scalearn.engines import free_port

KEY_TAG = "harness.trial_key"
GROUP_TAG = "harness.group"
REPORT_GROUP = "report"


@dataclass(frozen=True)
class DatasetRecord:
    """One dataset input of a run (MLflow's `log_input`): a task's split, named by the task, its digest
    the data's fingerprint and the split, its context the split's name, its profile the rows used."""

    name: str
    digest: str
    source: str
    profile: str
    context: str
    source_type: str = "harness"


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
    inputs: list[DatasetRecord] = field(default_factory=list)


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


def _dataset_inputs(record: RunRecord) -> list:
    from mlflow.entities import Dataset, DatasetInput, InputTag

    return [
        DatasetInput(
            Dataset(d.name, d.digest, d.source_type, d.source, None, d.profile),
            [InputTag("mlflow.data.context", d.context)],
        )
        for d in record.inputs
    ]


def write_runs_api(client, experiment_id: str, records: list[RunRecord]) -> list[str]:
    """Through MLflow's client (any backend, HTTP included): create with tags, batched params and metrics,
    dataset inputs, end."""
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
        if record.inputs:
            client.log_inputs(run_id, datasets=_dataset_inputs(record))
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


def _dataset_ids(session, experiment_id: int, records: list[RunRecord], rows: dict) -> dict:
    """(name, digest) → dataset id for every input of ``records``: the experiment's own where it has one
    (MLflow keeps one dataset per name and digest), else a new row added to ``rows``."""
    from mlflow.store.tracking.dbmodels.models import SqlDataset
    from sqlalchemy import select

    wanted = {(d.name, d.digest): d for record in records for d in record.inputs}
    if not wanted:
        return {}
    query = select(SqlDataset.name, SqlDataset.digest, SqlDataset.dataset_uuid).where(
        SqlDataset.experiment_id == experiment_id, SqlDataset.name.in_({name for name, _ in wanted})
    )
    ids = {(name, digest): uuid_ for name, digest, uuid_ in session.execute(query) if (name, digest) in wanted}
    for (name, digest), dataset in wanted.items():
        if (name, digest) not in ids:
            ids[(name, digest)] = uuid.uuid4().hex
            rows[SqlDataset].append(
                dict(
                    dataset_uuid=ids[(name, digest)],
                    experiment_id=experiment_id,
                    name=name,
                    digest=digest,
                    dataset_source_type=dataset.source_type,
                    dataset_source=dataset.source,
                    dataset_schema=None,
                    dataset_profile=dataset.profile,
                )
            )
    return ids


def write_runs_sql(
    sql_store, experiment_id: str, records: list[RunRecord], artifact_location: str | None = None
) -> list[str]:
    """Bulk path: every run of ``records`` in ONE transaction of multi-row inserts into MLflow's own tables
    (their SQLAlchemy definitions, so the installed MLflow's schema): exactly the rows that `create_run` +
    `log_batch` + `log_inputs` + `set_terminated` write, latest_metrics by MLflow's rule (greatest (step,
    timestamp, value)). Artifacts are copied first, so a kill between the two leaves at worst an orphan
    artifact folder, never a run without its artifacts; a kill inside the transaction leaves nothing. 5× the
    API path's runs per second with one run per transaction, ~45× with 100 (benchmarks/mlflow_throughput.json)."""
    from mlflow.entities import LifecycleStage, RunStatus, SourceType
    from mlflow.store.tracking.dbmodels.models import (
        SqlDataset,
        SqlInput,
        SqlInputTag,
        SqlLatestMetric,
        SqlMetric,
        SqlParam,
        SqlRun,
        SqlTag,
    )
    from mlflow.utils.uri import append_to_uri_path

    location = artifact_location or sql_store.get_experiment(experiment_id).artifact_location
    tables = (SqlRun, SqlTag, SqlParam, SqlMetric, SqlLatestMetric, SqlDataset, SqlInput, SqlInputTag)
    rows: dict = {model: [] for model in tables}  # in this order: the later tables point at the earlier
    ids = []
    with sql_store.ManagedSessionMaker(read_only=False) as session:
        datasets = _dataset_ids(session, int(experiment_id), records, rows)
        for record in records:
            run_id = uuid.uuid4().hex
            artifact_uri = append_to_uri_path(location, run_id, "artifacts")
            _copy_artifacts(artifact_uri, record)
            source_type = record.tags.get("mlflow.source.type", "UNKNOWN")
            rows[SqlRun].append(
                dict(
                    run_uuid=run_id,
                    name=record.name,
                    artifact_uri=artifact_uri,
                    experiment_id=int(experiment_id),
                    source_type=SourceType.to_string(SourceType.from_string(source_type)),
                    source_name=record.tags.get("mlflow.source.name", ""),
                    entry_point_name="",
                    user_id=record.tags.get("mlflow.user", "unknown"),
                    status=RunStatus.to_string(RunStatus.FINISHED),
                    start_time=record.start_ms,
                    end_time=record.end_ms,
                    deleted_time=None,
                    source_version=record.tags.get("mlflow.source.git.commit", ""),
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
                    key=key,
                    value=0.0 if is_nan else value,
                    timestamp=timestamp,
                    step=step,
                    is_nan=is_nan,
                    run_uuid=run_id,
                )
                rows[SqlMetric].append(row)
                old = latest.get(key)
                if old is None or (step, timestamp, row["value"]) > (old["step"], old["timestamp"], old["value"]):
                    latest[key] = row
            rows[SqlLatestMetric] += latest.values()
            for dataset in {(d.name, d.digest): d for d in record.inputs}.values():  # MLflow's dedup rule
                input_id = uuid.uuid4().hex
                rows[SqlInput].append(
                    dict(
                        input_uuid=input_id,
                        source_type="DATASET",
                        source_id=datasets[(dataset.name, dataset.digest)],
                        destination_type="RUN",
                        destination_id=run_id,
                    )
                )
                rows[SqlInputTag].append(dict(input_uuid=input_id, name="mlflow.data.context", value=dataset.context))
            ids.append(run_id)
        connection = session.connection()
        for model, values in rows.items():
            if values:
                _insert_many(connection, model.__table__, values)
    return ids


def _insert_many(connection, table, values: list[dict]) -> None:
    """One executemany of the driver's own INSERT into ``table`` (MLflow's SQLAlchemy definition names the
    table and columns): a third of the cost of SQLAlchemy's compiled multi-row insert per run logged."""
    dialect = connection.dialect
    columns = list(values[0])
    quote = dialect.identifier_preparer.quote
    markers = {"qmark": "?", "format": "%s", "pyformat": "%s", "numeric": None, "named": None}[dialect.paramstyle]
    if markers is None:  # pragma: no cover — no such driver behind MLflow today
        from sqlalchemy import insert

        connection.execute(insert(table), values)
        return
    statement = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
        f"VALUES ({', '.join([markers] * len(columns))})"
    )
    connection.exec_driver_sql(statement, [tuple(row[c] for c in columns) for row in values])


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


def _template_database() -> Path | None:
    """An empty MLflow database of the installed MLflow's schema, made once per version in the user's cache
    (creating one runs MLflow's migrations: ~3 s on 2 cores); None where the cache cannot be written."""
    import mlflow

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "scalearn-harness"
    template = cache / f"mlflow-{mlflow.__version__}.db"
    if template.is_file():
        return template
    partial = cache / f".{template.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    try:
        cache.mkdir(parents=True, exist_ok=True)
        from mlflow.tracking import MlflowClient

        MlflowClient(tracking_uri=f"sqlite:///{partial}").search_experiments()
        os.replace(partial, template)  # whole or absent, whoever else makes one at the same time
    except Exception:  # noqa: BLE001 - no template: MLflow creates the store's database itself
        return None
    finally:
        partial.unlink(missing_ok=True)
    return template


def seed_database(path: Path) -> None:
    """A store's new MLflow database as a copy of the empty template, its Default experiment created now with
    its artifacts where MLflow would have put them (./mlruns/0); MLflow creates it where no template can be made."""
    import shutil
    import sqlite3

    if path.exists() or (template := _template_database()) is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    try:
        shutil.copyfile(template, partial)
        with contextlib.closing(sqlite3.connect(partial)) as connection, connection:
            default, now = str(Path.cwd() / "mlruns" / "0"), _ms(time.time())
            connection.execute(
                "UPDATE experiments SET artifact_location = ?, creation_time = ?, last_update_time = ? "
                "WHERE experiment_id = 0",
                (default, now, now),
            )
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def store_tracking_uri(store: Store) -> str:
    """The store's own MLflow database. The driver is the only writer, so it writes to it directly (no HTTP
    round trips: ~3× the runs per second of the embedded server, benchmarks/mlflow_throughput.py)."""
    store.root.mkdir(parents=True, exist_ok=True)
    return store.tracking_uri


def store_tracker(store: Store, experiment: str, source: str | None = None) -> Tracker:
    """The tracker over the store's own database, artifacts under store/mlartifacts/<experiment>."""
    return Tracker(store_tracking_uri(store), experiment, store.tracking_artifacts(experiment).as_uri(), store, source)


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


CLAIM_WAIT_SECONDS = 600.0
"""How long a driver waits for another to create a parent run it claimed. Claims live as long as leases
(renewed while their holder writes): a dead driver's claim lapses within a minute, at once on its own host."""

LEVEL_TAG = "harness.level"
"""Where a run sits: "method" (top level, one per model × method), "group", "trial", or "report"."""

LOSS_POINTS = 200
"""The most training-loss points a child run gets: every optimizer step up to this many, else the means of
this many consecutive windows of steps, each at its window's last step (result.json keeps every step). So a
run's cost to log does not grow with its length (benchmarks/mlflow_throughput.py)."""

EXPERIMENT_KIND = "custom_model_development"
"""MLflow 3's ``mlflow.experimentKind`` for model training: the experiment opens on its runs table."""

COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
"""``mlflow.runColor`` per method (in the experiment file's order), shared by its parents and trials."""


LOG_EVERY_SECONDS = 1.0
"""Trials Ray reports finished are held until this long after the last write, then written together: one
transaction per second at most, whatever the rate they finish at (a commit costs ~10 ms on this machine's
disk, more than the rows of a run; benchmarks/mlflow_throughput.py)."""


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


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def trial_span(result: dict, folder: Path | None = None) -> tuple[int, int]:
    """(start, end) in Unix ms of a finished trial: when its worker began and when its result was written."""
    finished = result.get("finished_at") or (folder / "result.json").stat().st_mtime
    started = result.get("started_at") or finished - float(result.get("wall_seconds", 0))
    return _ms(started), _ms(finished)


def _loss_points(losses: list[float], times: list[float], end: int) -> list[tuple[float, int, int]]:
    """(value, timestamp ms, optimizer step) of the training loss, at most LOSS_POINTS of them."""
    count = len(losses)
    at = (lambda i: _ms(times[i])) if len(times) == count else (lambda i: end)
    if count <= LOSS_POINTS:
        return [(float(losses[i]), at(i), i + 1) for i in range(count)]
    bounds = [round(j * count / LOSS_POINTS) for j in range(LOSS_POINTS + 1)]
    return [(statistics.fmean(losses[a:b]), at(b - 1), b) for a, b in itertools.pairwise(bounds)]


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def result_metrics(result: dict, start: int, end: int, joint: bool) -> list[tuple[str, float, int, int]]:
    """Every metric point of a finished trial, scores ×100 (`harness.stats.scaled`), stepped by optimizer step:
    the training loss, each evaluation at its time, ``best_dev_*`` and test scores at the selected step, what
    it cost, and the system metrics sampled where it ran."""
    points = [
        ("train_loss", v, ts, step)
        for v, ts, step in _loss_points(result.get("losses", []), result.get("step_times", []), end)
    ]
    times = result.get("evaluation_times", [])
    best_step = int(result.get("best_step", -1))
    selected = max(best_step, 0)
    chosen_at = end
    for index, row in enumerate(result.get("history", [])):
        timestamp = _ms(times[index]) if index < len(times) else end
        if int(row.get("step", -2)) == best_step:
            chosen_at = timestamp
        points += [
            (metric_name(k), scaled(k, v), timestamp, int(row.get("step", 0)))
            for k, v in row.items()
            if k.startswith("dev_") and _number(v)
        ]
    points += [
        (f"best_dev_{k}", scaled(k, v), chosen_at, selected)
        for k, v in result.get("best_dev", {}).items()
        if _number(v)
    ]
    if joint:
        for task, scores in result.get("tasks", {}).items():
            best = scores.get("best_dev", {})
            points += [
                (f"{task}/best_dev_{k}", scaled(k, v), chosen_at, selected) for k, v in best.items() if _number(v)
            ]
    points += [
        (metric_name(f"test_{k}"), scaled(k, v), end, selected) for k, v in result.get("test", {}).items() if _number(v)
    ]
    for name in ("best_step", "best_epoch", "steps", "wall_seconds", "peak_memory_mb"):
        if _number(result.get(name)):
            points.append((name, float(result[name]), end, 0))
    system = result.get("system_metrics") or {}
    prefix = "system/" + (f"{system['node'][:12]}/" if system.get("node") else "")
    for index, (timestamp, values) in enumerate(system.get("samples", [])):
        points += [(prefix + k, float(v), int(timestamp), index) for k, v in values.items() if _number(v)]
    return points


def result_inputs(result: dict) -> list[DatasetRecord]:
    """A dataset input per task and split the trial used: its fingerprint (the tokenised data's cache key)
    and its rows, under the split's name as MLflow's context."""
    inputs = []
    for task, data in result.get("datasets", {}).items():
        fingerprint = data.get("fingerprint", "")
        for split, rows in data.get("rows", {}).items():
            source = json.dumps({"task": task, "split": split, "fingerprint": fingerprint}, sort_keys=True)
            inputs.append(
                DatasetRecord(
                    task, _short_hash(f"{fingerprint}:{split}")[:12], source, json.dumps({"num_rows": rows}), split
                )
            )
    return inputs


class Tracker:
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
        self.source_tags = {
            "mlflow.source.name": str(source or experiment),
            "mlflow.source.type": "LOCAL",
            "mlflow.user": getpass.getuser(),
        }
        self.colours: dict[str, str] = {}
        self.artifact_location: str | None = None
        self.claims = None
        if store is not None:
            destination = "store" if tracking_uri == store.tracking_uri else _short_hash(tracking_uri)
            self.claims = f"tracking/{destination}/{self.experiment_id}"
        self.parent_of: dict[str, str | None] = {}
        self.logged = self._existing(KEY_TAG)
        self.parents = self._existing(GROUP_TAG, self.parent_of)
        if self.claims is not None:
            self.logged.update(self._markers("logged"))
        self.opened: set[str] = set()
        self.coalescer: Coalescer | None = None

    def _describe_experiment(self, name: str, tags: dict[str, str]) -> None:
        """The experiment's kind (model training), and a description unless someone wrote one."""
        if tags.get("mlflow.experimentKind") != EXPERIMENT_KIND:
            self.client.set_experiment_tag(self.experiment_id, "mlflow.experimentKind", EXPERIMENT_KIND)
        if "mlflow.note.content" not in tags:
            text = (
                f"ScaLearn harness sweep `{name}`. Top level: one run per model × method (each task's seed "
                "mean and sd, and `avg_test_score_mean` over the targets); below each, a run per (method, task) "
                "and below that one run per trial. Scores are ×100 as in the report; losses as they are. "
                "`best_dev_*` is the evaluation that selected the test checkpoint, at its optimizer step."
            )
            self.client.set_experiment_tag(self.experiment_id, "mlflow.note.content", text)

    def colour(self, method: str) -> str:
        return self.colours.setdefault(method, COLOURS[len(self.colours) % len(COLOURS)])

    def _existing(self, tag: str, parents: dict | None = None) -> dict[str, str]:
        """Tag value → run id, for every run of the experiment that carries the tag (paged); with
        ``parents``, each run's parent run id is put there too."""
        found, token = {}, None
        while True:
            page = self.client.search_runs(
                [self.experiment_id], filter_string=f"tags.`{tag}` != ''", max_results=5000, page_token=token
            )
            for run in page:
                found.setdefault(run.data.tags[tag], run.info.run_id)
                if parents is not None:
                    parents[run.info.run_id] = run.data.tags.get("mlflow.parentRunId")
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

    def _group_run(self, group: str, tags: dict[str, str], run_name: str, start_ms: int | None = None) -> str:
        """The parent run of ``group``, created (RUNNING) once whichever driver asks first; the others wait
        for its marker (or find it in the database). An existing one is moved under the parent ``tags`` name
        and given ``run_name`` if it was logged otherwise (by an earlier version)."""
        if group not in self.parents:
            self.parents[group] = self._claim_group_run(group, tags, run_name, start_ms)
        run_id = self.parents[group]
        parent = tags.get("mlflow.parentRunId")
        if parent is not None and self.parent_of.get(run_id) != parent:
            self.client.set_tag(run_id, "mlflow.parentRunId", parent)
            self.client.update_run(run_id, name=run_name)
            self.parent_of[run_id] = parent
        return run_id

    def _claim_group_run(self, group: str, tags: dict[str, str], run_name: str, start_ms: int | None) -> str:
        if self.claims is None:
            return self._create_group_run(group, tags, run_name, start_ms)
        name = _short_hash(group)
        deadline = time.time() + CLAIM_WAIT_SECONDS
        while True:
            marker = self._marker("parents", name)
            if marker is not None:
                return marker["run_id"]
            with self._claimed([f"parent-{name}"]) as claimed:
                if claimed:
                    marker = self._marker("parents", name)
                    run_id = marker["run_id"] if marker else self._find(GROUP_TAG, group)
                    run_id = run_id or self._create_group_run(group, tags, run_name, start_ms)
                    self._mark("parents", name, run_id, group=group)
                    return run_id
            if time.time() > deadline:
                raise RuntimeError(f"MLflow parent run {group!r}: still claimed by another submit")
            time.sleep(0.2)

    def _create_group_run(self, group: str, tags: dict[str, str], run_name: str, start_ms: int | None) -> str:
        tags = {GROUP_TAG: group, **self.source_tags, **tags}
        run = self.client.create_run(self.experiment_id, start_time=start_ms, run_name=run_name, tags=tags)
        self.parent_of[run.info.run_id] = tags.get("mlflow.parentRunId")
        self.opened.add(run.info.run_id)
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

    # -- the hierarchy ------------------------------------------------------------------------------

    @staticmethod
    def group_of(trial: Trial) -> str:
        group = f"stage{trial.stage}/{trial.method}/{trial.task}/{trial.model}"
        if trial.role in ("search", "import"):  # a group's search points, and imported sources, apart
            group += f"/{trial.role}"
        return group

    def _method_run(self, model: str, method: str, stage: int, start_ms: int | None = None) -> str:
        tags = {LEVEL_TAG: "method", "method": method, "model": model, "stage": str(stage)}
        tags["mlflow.runColor"] = self.colour(method)
        return self._group_run(f"method/{model}/{method}", tags, f"{method} · {model}", start_ms)

    def _parent(self, trial: Trial) -> str:
        top = self._method_run(trial.model, trial.method, trial.stage)
        tags = {"stage": str(trial.stage), "method": trial.method, "task": trial.task, "model": trial.model}
        tags.update({LEVEL_TAG: "group", "mlflow.parentRunId": top, "mlflow.runColor": self.colour(trial.method)})
        suffix = f" · {trial.role}" if trial.role in ("search", "import") else ""
        return self._group_run(self.group_of(trial), tags, f"{trial.method}/{trial.task}{suffix}")

    def begin(self, trials: list[Trial]) -> None:
        """Open the parent runs of ``trials`` (RUNNING: their trials may run now), the methods' top-level runs
        created in reverse order so that the default newest-first table lists them in the experiment file's."""
        methods = list(dict.fromkeys((t.model, t.method, t.stage) for t in trials))
        for trial in trials:
            self.colour(trial.method)
        now = _ms(time.time())
        for offset, (model, method, stage) in enumerate(reversed(methods)):
            self._method_run(model, method, stage, start_ms=now + offset)
        groups = {self._parent(trial) for trial in trials}
        for run_id in {self.parents[f"method/{m}/{me}"] for m, me, _ in methods} | groups:
            if run_id not in self.opened:
                self._set_state(run_id, "RUNNING")
                self.opened.add(run_id)

    def _set_state(self, run_id: str, status: str, start_ms: int | None = None, end_ms: int | None = None) -> None:
        """Status and end (none while RUNNING) of a parent run; on a SQL backend its start too, moved back to
        its earliest child's where a child began before it (parents logged by earlier versions)."""
        sql_store = _sql_store(self.client)
        if sql_store is None:
            if status == "RUNNING":
                self.client.update_run(run_id, status="RUNNING")
            else:
                self.client.set_terminated(run_id, status=status, end_time=end_ms)
            return
        from mlflow.store.tracking.dbmodels.models import SqlRun
        from sqlalchemy import update

        values: dict = {"status": status, "end_time": end_ms}
        with sql_store.ManagedSessionMaker(read_only=False) as session:
            run = session.get(SqlRun, run_id)
            if run is not None and start_ms is not None and (run.start_time is None or start_ms < run.start_time):
                values["start_time"] = start_ms
            session.execute(update(SqlRun).where(SqlRun.run_uuid == run_id).values(**values))

    def _earliest_start(self, run_ids: list[str]) -> int | None:
        """A millisecond before the earliest start of ``run_ids`` (None for none): one query on a SQL backend."""
        if not run_ids:
            return None
        sql_store = _sql_store(self.client)
        if sql_store is None:
            return min(self.client.get_run(r).info.start_time for r in run_ids) - 1
        from mlflow.store.tracking.dbmodels.models import SqlRun
        from sqlalchemy import func, select

        with sql_store.ManagedSessionMaker() as session:
            earliest = session.execute(select(func.min(SqlRun.start_time)).where(SqlRun.run_uuid.in_(run_ids))).scalar()
        return None if earliest is None else earliest - 1

    def _child_spans(self, parent_ids: list[str]) -> dict[str, tuple[int, int]]:
        """Parent run id → (earliest start, latest end) of its child runs in the database."""
        sql_store = _sql_store(self.client)
        spans: dict[str, tuple[int, int]] = {}
        if sql_store is None:
            for parent in parent_ids:
                runs = self.client.search_runs(
                    [self.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent}'", max_results=50000
                )
                times = [(r.info.start_time, r.info.end_time) for r in runs if r.info.end_time]
                if times:
                    spans[parent] = (min(t[0] for t in times), max(t[1] for t in times))
            return spans
        from mlflow.store.tracking.dbmodels.models import SqlRun, SqlTag
        from sqlalchemy import func, select

        with sql_store.ManagedSessionMaker() as session:
            for first in range(0, len(parent_ids), 500):
                query = (
                    select(SqlTag.value, func.min(SqlRun.start_time), func.max(SqlRun.end_time))
                    .join(SqlRun, SqlRun.run_uuid == SqlTag.run_uuid)
                    .where(SqlTag.key == "mlflow.parentRunId", SqlTag.value.in_(parent_ids[first : first + 500]))
                    .where(SqlRun.lifecycle_stage == "active")
                    .group_by(SqlTag.value)
                )
                for parent, start, end in session.execute(query):
                    if end is not None:
                        spans[parent] = (start, end)
        return spans

    # -- children -------------------------------------------------------------------------------------

    def run_record(self, trial: Trial, store: Store) -> RunRecord:
        """What the child run of a finished trial holds: tags, params, metrics, datasets, artifacts."""
        from scalearn.backbones import canonical_name

        result = store.result(trial.key)
        provenance = result.get("provenance", {})
        folder = store.pull(trial.key)  # a remote store's artifacts, downloaded once to log them
        start, end = trial_span(result, folder)
        on = "test" if result.get("selects_on_test") else "dev"
        tags = {
            **self.source_tags,
            "mlflow.parentRunId": self._parent(trial),
            "mlflow.runColor": self.colour(trial.method),
            "mlflow.source.git.commit": provenance.get("git_commit", ""),
            KEY_TAG: trial.key,
            LEVEL_TAG: "trial",
            "stage": str(trial.stage),
            "method": trial.method,
            "task": trial.task,
            "seed": str(trial.seed),
            "model": trial.model,
            "role": trial.role,
            "selected_by": f"{on} {result['selected_by']}" if result.get("selected_by") else "",
            "source_keys": ",".join(trial.depends_on),
            "source_tasks": ",".join(trial.source_tasks),
            "node": result.get("node", ""),
            "host": provenance.get("hardware", {}).get("host", ""),
        }
        if trial.depends_on:  # the source adapters' own runs, as ids and as links on the run's page
            runs = [self.logged.get(key, "") for key in trial.depends_on]
            tags["source_runs"] = ",".join(runs)
            links = [
                f"[{task}](#/experiments/{self.experiment_id}/runs/{run})" if run else f"{task} (not logged)"
                for task, run in zip(trial.source_tasks, runs, strict=False)
            ]
            tags["mlflow.note.content"] = f"Source adapters: {', '.join(links)}."
        if trial.joint:
            tags["tasks"] = ",".join(trial.tasks)
        if trial.point is not None:
            tags["search_point"] = json.dumps(trial.point, sort_keys=True)
        params = _flatten("", trial.config.model_dump(mode="json"), {})
        with contextlib.suppress(Exception):  # an alias the catalogue no longer knows keeps its name only
            params["model_id"] = canonical_name(trial.model)
        params.update({f"parameters.{k}": str(v) for k, v in result.get("parameters", {}).items()})
        artifacts = [(folder / "result.json", None)]
        if store.model_dir(trial.key).exists():
            artifacts.append((store.model_dir(trial.key), "model"))
        return RunRecord(
            name=f"{trial.method}/{trial.task}/seed{trial.seed}",
            tags={k: v for k, v in tags.items() if v != ""},
            params={k: v[:6000] for k, v in params.items()},
            metrics=result_metrics(result, start, end, trial.joint),
            start_ms=start,
            end_ms=end,
            artifacts=artifacts,
            inputs=result_inputs(result),
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
        """Stage by stage, so that a transfer trial links to its sources' runs even when both are new."""
        for stage in sorted({t.stage for t in todo}):
            batch = [t for t in todo if t.stage == stage]
            records = [self.run_record(t, store) for t in batch]
            sql_store = _sql_store(self.client)
            if sql_store is not None:
                if self.artifact_location is None:
                    self.artifact_location = self.client.get_experiment(self.experiment_id).artifact_location
                ids = write_runs_sql(sql_store, self.experiment_id, records, self.artifact_location)
            else:
                ids = write_runs_api(self.client, self.experiment_id, records)
            for trial, run_id in zip(batch, ids, strict=True):
                if self.claims is not None:
                    self._mark("logged", trial.key, run_id)
                self.logged[trial.key] = run_id
        return len(todo)

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

    # -- the sweep's summary ----------------------------------------------------------------------------

    def finish(
        self, trials: list[Trial], store: Store, targets: list[str] | None = None, choices: list[dict] | None = None
    ) -> None:
        """End the parent runs of ``trials``: each group FINISHED when all its trials are done, else FAILED,
        spanning its children; the seed mean and sd of its final trials, and a description naming the
        checkpoint each seed selected. A searched group's search parent describes its points and the chosen
        one, its final group names the chosen point (``choices``: `harness.selection.selection_rows`). Then each
        method's top-level run: every task's means, and the average over ``targets`` of their main metric."""
        from mlflow.entities import Metric

        from harness.plan import task_results
        from scalearn.tasks import get_task

        done = store.done_keys(t.key for t in trials)
        groups: dict[str, list[Trial]] = {}
        for trial in trials:
            groups.setdefault(self._parent(trial), []).append(trial)
        searched = self._searched(trials, choices or [])
        now = _ms(time.time())
        spans = self._child_spans(list(groups))
        tops: dict[str, list[str]] = {}
        failed: dict[str, bool] = {}
        task_means: dict[str, dict[str, dict[str, list[float]]]] = {}
        for run_id, members in groups.items():
            top = self.parent_of.get(run_id) or self._method_run(members[0].model, members[0].method, members[0].stage)
            tops.setdefault(top, []).append(run_id)
            results = {t.key: store.result(t.key) for t in members if t.key in done and t.role == "final"}
            metrics, lines = [], []
            if results:
                metrics, lines = self._group_summary([t for t in members if t.key in results], results, now)
                for trial in (t for t in members if t.key in results):
                    for task, per_task in task_results(trial, results[trial.key]):
                        for name, value in per_task.get("test", {}).items():
                            if _number(value):
                                scores = task_means.setdefault(top, {}).setdefault(task, {})
                                scores.setdefault(name, []).append(scaled(name, value))
                self.client.log_batch(run_id, metrics=metrics)
            if run_id in searched:
                lines = _search_lines(*searched[run_id], lines)
            self.client.set_tag(run_id, "mlflow.note.content", "\n".join(lines) or "No trial of this group finished.")
            status = "FINISHED" if all(t.key in done for t in members) else "FAILED"
            failed[top] = failed.get(top, False) or status == "FAILED"
            start, end = spans.get(run_id, (None, now))
            self._set_state(run_id, status, start, max(end, now if status == "FAILED" else end))
        top_spans = self._child_spans(list(tops))
        columns = ["avg_test_score_mean"] if targets else []
        for top in tops:
            metrics, rows = [], []
            means = {}
            for task, scores in sorted(task_means.get(top, {}).items()):
                for name, values in scores.items():
                    metrics.append(Metric(f"{task}/test_{name}_mean", _shown(statistics.fmean(values)), now, 0))
                    if len(values) > 1:
                        metrics.append(Metric(f"{task}/test_{name}_sd", _shown(statistics.stdev(values)), now, 0))
                metric = get_task(task).metric
                if metric in scores:
                    means[task] = statistics.fmean(scores[metric])
                    if task in (targets or [task]):
                        columns.append(f"{task}/test_{metric}_mean")
                    rows.append(f"| {task} | {metric} | {_summary_text(scores[metric])} |")
            wanted = [t for t in (targets or means) if t in means]
            if wanted and len(wanted) == len(targets or means):
                average = statistics.fmean(means[t] for t in wanted)
                metrics.append(Metric("avg_test_score_mean", _shown(average), now, 0))
            if metrics:
                self.client.log_batch(top, metrics=metrics)
            text = ["Test scores ×100, mean ± sd over seeds; one run per task below, its seeds under it.", ""]
            text += ["| task | metric | test |", "|---|---|---|", *rows] if rows else ["No trial finished yet."]
            self.client.set_tag(top, "mlflow.note.content", "\n".join(text))
            start, end = top_spans.get(top, (None, now))
            self._set_state(top, "FAILED" if failed[top] else "FINISHED", start, end)
        if tops:
            self._share_view(list(dict.fromkeys(columns)), len(tops))

    def _share_view(self, metrics: list[str], runs: int) -> None:
        """The view `harness ui` opens (MLflow's shared view state, `?viewStateShareKey=harness`): the runs table
        with ``metrics`` (each method's average and per-target test means) as columns, and the chart view
        opening on a section of their bar charts over every top-level run (``runs`` of them), the UI's own
        per-metric charts after it."""
        section, title = "harness-comparison", "Comparison (test ×100)"
        charts = [
            {
                "uuid": f"harness-{index}",
                "type": "BAR",
                "metricKey": name,
                "displayName": name,
                "metricSectionId": section,
                "runsCountToCompare": max(10, runs),
                "deleted": False,
                "isGenerated": True,
            }
            for index, name in enumerate(metrics)
        ]
        state = {
            "selectedColumns": [*DEFAULT_COLUMNS, *(f"metrics.`{name}`" for name in metrics)],
            "runsHiddenMode": "SHOW_ALL",
            "compareRunCharts": charts,
            "compareRunSections": [{"uuid": section, "name": title, "display": True, "isReordered": True}],
            "isAccordionReordered": True,
        }
        self.client.set_experiment_tag(self.experiment_id, VIEW_TAG, json.dumps(state))

    def _searched(self, trials: list[Trial], choices: list[dict]) -> dict[str, tuple[dict, str]]:
        """Parent run id → (its selection row, "search" or "final") for the groups a search chose for."""
        by_key = {t.key: t for t in trials}
        found: dict[str, tuple[dict, str]] = {}
        for row in choices:  # a search trial at the chosen point that is also a final trial sits in the final group
            for key in (k for k in [*row.get("search_keys", []), *row.get("final_keys", [])] if k in by_key):
                trial = by_key[key]
                found[self._parent(trial)] = (row, "search" if trial.role == "search" else "final")
        return found

    def _group_summary(self, finished: list[Trial], results: dict[str, dict], now: int) -> tuple[list, list[str]]:
        """A group's seed means and sds (test and best dev, ×100), and the lines of its description."""
        from mlflow.entities import Metric

        metrics = [Metric("seeds", float(len(finished)), now, 0)]
        for kind in ("test", "best_dev"):
            names = dict.fromkeys(k for t in finished for k, v in results[t.key].get(kind, {}).items() if _number(v))
            for name in names:
                values = [
                    scaled(name, results[t.key][kind][name]) for t in finished if name in results[t.key].get(kind, {})
                ]
                metrics.append(Metric(metric_name(f"{kind}_{name}_mean"), _shown(statistics.fmean(values)), now, 0))
                if len(values) > 1:
                    metrics.append(Metric(metric_name(f"{kind}_{name}_sd"), _shown(statistics.stdev(values)), now, 0))
        first = results[finished[0].key]
        on = "test" if first.get("selects_on_test") else "dev"
        by = first.get("selected_by", "loss")
        lines = [
            f"**{finished[0].method}** on **{finished[0].task}** · {finished[0].model}: {len(finished)} seeds. "
            f"Scores ×100, losses as they are. The test checkpoint of each seed is its best {on} {by} "
            f"({'lowest' if by == 'loss' else 'highest'}):",
            "",
            f"| seed | step | epoch | best {on} {by} | test |",
            "|---|---|---|---|---|",
        ]
        for trial in sorted(finished, key=lambda t: t.seed):
            result = results[trial.key]
            best = result.get("best_dev", {}).get(by if by in result.get("best_dev", {}) else "loss")
            tests = ", ".join(f"{k} {scaled(k, v):.2f}" for k, v in result.get("test", {}).items() if _number(v))
            shown = f"{scaled(by, best):.4g}" if _number(best) else "–"
            step, epoch = result.get("best_step", "–"), result.get("best_epoch", "–")
            lines.append(f"| {trial.seed} | {step} | {epoch} | {shown} | {tests} |")
        return metrics, lines

    def log_report(self, files: list, figures: dict[str, list]) -> str:
        """The report on the sweep's "report" run (tables and every figure under report/), and each (method,
        target)'s mixing figure on its parent run, so the UI shows them where one looks. The report run is
        dated just before the sweep's first top-level run, so the newest-first table lists it last. Returns
        the run id."""
        earliest = self._earliest_start([r for g, r in self.parents.items() if g.startswith("method/")])
        run_id = self._group_run(REPORT_GROUP, {LEVEL_TAG: "report"}, "report", start_ms=earliest)
        for path in files:
            self.client.log_artifact(run_id, str(path), artifact_path="report")
        for group, paths in figures.items():
            target, folder = (run_id, "report/figures") if group == "sweep" else (self.parents.get(group), "figures")
            for path in paths if target else []:
                self.client.log_artifact(target, str(path), artifact_path=folder)
        self._set_state(run_id, "FINISHED", end_ms=_ms(time.time()))
        return run_id


def _search_lines(row: dict, kind: str, lines: list[str]) -> list[str]:
    """A searched group's description: on its search parent every point with its dev value and the chosen one
    marked; on its final group the chosen point, before the seeds' table."""
    from harness.selection import point_text

    chosen = row["points"][row["chosen"]]["point"] if row["chosen"] is not None else None
    if kind == "final":
        head = f"Hyper-parameters chosen on dev by the search: **{point_text(chosen)}**." if chosen else ""
        return [head, "", *lines] if head else lines
    on = row["selects_on"] or "–"
    measure = "loss" if row["lower_is_better"] else "score"  # scores ×100 as everywhere in MLflow, losses raw
    text = [
        f"**Search** of {row['method']} on {row['task']} · {row['model']}: {len(row['points'])} points, each with "
        f"the mean ± sd over its search seeds of the dev value its trials selected their checkpoint on ({on}; "
        "scores ×100, losses as they are).",
        "",
        "| point | dev | seeds | chosen |",
        "|---|---|---|---|",
    ]
    for index, point in enumerate(row["points"]):
        dev = "–" if point["dev_mean"] is None else f"{scaled(measure, point['dev_mean']):.4g}"
        if point["dev_sd"] is not None:
            dev += f" ± {scaled(measure, point['dev_sd']):.2g}"
        seeds = f"{point['done']}/{point['planned']}" + (f" ({point['failed']} failed)" if point["failed"] else "")
        mark = ""
        if index == row["chosen"]:
            mark = "✓" + (f" (at the edge: {', '.join(row['at_edge'])})" if row["at_edge"] else "")
        text.append(f"| {point_text(point['point'])} | {dev} | {seeds} | {mark} |")
    if chosen is None:
        text += ["", "No point chosen yet: the search has not finished."]
    return text


SHOWN_DECIMALS = 4
"""Seed means and sds on parent runs are rounded to this many decimals (on the ×100 scale: far below any seed
sd), so the UI's columns read 59.9775, not 59.97752575698244; a trial's own metrics are logged as they are."""


def _shown(value: float) -> float:
    return round(value, SHOWN_DECIMALS)


def _summary_text(values: list[float]) -> str:
    mean = statistics.fmean(values)
    return f"{mean:.2f} ± {statistics.stdev(values):.2f} (n={len(values)})" if len(values) > 1 else f"{mean:.2f} (n=1)"


UI_VIEW = "workflowType=machine_learning"
"""MLflow 3.17's UI opens every experiment as GenAI (traces overview) unless the page's address says
otherwise; ``mlflow.experimentKind`` is what older and newer UIs read."""
VIEW_KEY = "harness"
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"
"""Where the UI reads a shared view (its "share" button writes the same tag): JSON of the runs page's state."""
DEFAULT_COLUMNS = ["attributes.`Source`"]  # datasets are the trials', so that column stays empty up here


def ui_urls(base: str, store: Store) -> list[str]:
    """Where to open the UI: the experiment list, then each experiment's runs table, as model training."""
    urls = [f"{base}/#/?{UI_VIEW}"]
    if store.has_tracking:
        from mlflow.tracking import MlflowClient

        for experiment in MlflowClient(tracking_uri=store.tracking_uri).search_experiments():
            if experiment.name != "Default":
                page = f"{base}/#/experiments/{experiment.experiment_id}"
                if VIEW_TAG in experiment.tags:  # the runs tab's own address: the experiment's drops the key
                    page += f"/runs?{UI_VIEW}&viewStateShareKey={VIEW_KEY}"
                else:
                    page += f"?{UI_VIEW}"
                urls.append(f"{page}  ({experiment.name})")
    return urls


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
