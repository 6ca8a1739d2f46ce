"""The store's MLflow database and how to look at it: seeding the database, the embedded server, the UI's
addresses and the shared view it opens on."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

from harness.store import Store
from harness.tracking.records import UI_VIEW, ms
from scalearn.ports import free_port

VIEW_KEY = "harness"
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"
"""Where the UI reads a shared view (its "share" button writes the same tag): JSON of the runs page's state."""
DEFAULT_COLUMNS = ["attributes.`Source`"]  # datasets are the trials', so that column stays empty up here


LIGHT_VIEWER = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
"""What `harness ui` turns off in MLflow's server: the job runner (its consumer processes run GenAI jobs we never
submit) and usage telemetry (its banner and its requests)."""


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
        if self.backend_uri == self.store.tracking_uri:  # a new store database: the template's copy, no migrations
            seed_database(self.store.root / "mlflow.db")
        command = [
            *(sys.executable, "-m", "mlflow", "server", "--host", self.host, "--port", str(self.port)),
            *("--backend-store-uri", self.backend_uri),
            *("--default-artifact-root", str(self.store.tracking_artifacts()), "--workers", str(self.workers)),
        ]
        env = {**os.environ, **LIGHT_VIEWER}  # no job runner outliving us, no telemetry
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

    if path.exists() or (template := _template_database()) is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    try:
        shutil.copyfile(template, partial)
        with contextlib.closing(sqlite3.connect(partial)) as connection, connection:
            default, now = str(Path.cwd() / "mlruns" / "0"), ms(time.time())
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


def share_view(client, experiment_id: str, metrics: list[str], runs: int, charts: list[str] | None = None) -> None:
    """The view `harness ui` opens (MLflow's shared view state, `?viewStateShareKey=harness`): the runs table
    with ``metrics`` (each method's average, per-target test means and their sds, the trials' own test scores)
    as columns, and the chart view opening on a section of bar charts of ``charts`` (default: the columns) over
    every top-level run (``runs`` of them), the UI's own per-metric charts after it. MLflow's bar charts draw no
    error bars: a target's sd over seeds is the chart beside its mean's."""
    from mlflow.utils.validation import MAX_EXPERIMENT_TAG_VAL_LENGTH

    section, title = "harness-comparison", "Comparison (test ×100): each target's mean over seeds, then its sd"
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
        for index, name in enumerate(metrics if charts is None else charts)
    ]
    state = {
        "selectedColumns": [*DEFAULT_COLUMNS, *(f"metrics.`{name}`" for name in metrics)],
        "runsHiddenMode": "SHOW_ALL",
        "compareRunCharts": charts,
        "compareRunSections": [{"uuid": section, "name": title, "display": True, "isReordered": True}],
        "isAccordionReordered": True,
    }
    # MLflow refuses a longer experiment tag (about 34 targets' charts): the charts past what fits are left to
    # the UI's own per-metric ones, then the columns past what fits to the table's column picker
    for kept in (state["compareRunCharts"], state["selectedColumns"]):
        while len(json.dumps(state)) > MAX_EXPERIMENT_TAG_VAL_LENGTH and len(kept) > 1:
            kept.pop()
    client.set_experiment_tag(experiment_id, VIEW_TAG, json.dumps(state))


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


def ui_command(store: Store, full: bool = False) -> tuple[list[str], dict[str, str]]:
    """`mlflow ui` over the store's database on 127.0.0.1, and its environment: by default a light viewer (one
    worker process, no job runner, no telemetry); ``full``: MLflow's server as it comes."""
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", store.tracking_uri, "--host", "127.0.0.1"]
    if full:
        return command, dict(os.environ)
    viewer = ["--app-name", "harness"] if _viewer_registered() else []  # harness/tracking/viewer.py
    return [*command, "--workers", "1", *viewer], {**os.environ, **LIGHT_VIEWER}


def _viewer_registered() -> bool:
    """Whether this install registers the harness's MLflow app (pyproject's `mlflow.app` entry point)."""
    from importlib.metadata import entry_points

    return any(point.name == "harness" for point in entry_points(group="mlflow.app"))
