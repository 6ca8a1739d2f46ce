"""MLflow, written by the driver only: workers never talk to MLflow, so there is no experiment-creation
race (MLflow #979, #10334) and the server sees one client that batches its requests.

Hierarchy: one experiment per experiment file; a parent run per (stage, method, task) carrying the seed
aggregate; a child run per trial with its params, tags, per-evaluation and final metrics and artifacts.
A child run is found again by its `harness.trial_key` tag, so a resubmit never creates a twin.

With no tracking URI the driver writes the store's own SQLite database (``store/mlflow.db``, artifacts in
``store/mlartifacts``): it is MLflow's only writer, so no server sits in between. `harness ui` serves
that database on 127.0.0.1; `EmbeddedServer` starts `mlflow server` over it where a URL is needed.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request

from harness.plan import Trial
from harness.store import Store
from scalearn.engines import free_port

KEY_TAG = "harness.trial_key"
GROUP_TAG = "harness.group"


class EmbeddedServer:
    """`mlflow server` over the store's SQLite file, bound to 127.0.0.1, stopped with its process group."""

    def __init__(self, store: Store, port: int | None = None, host: str = "127.0.0.1", workers: int = 1):
        self.store, self.host, self.port, self.workers = store, host, port or free_port(), workers
        self.process: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 60.0) -> EmbeddedServer:
        self.store.root.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "mlflow", "server", "--host", self.host, "--port", str(self.port),
                   "--backend-store-uri", f"sqlite:///{self.store.root / 'mlflow.db'}",
                   "--default-artifact-root", str(self.store.root / "mlartifacts"),
                   "--workers", str(self.workers)]  # fmt: skip
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
    return f"sqlite:///{store.root / 'mlflow.db'}"


class Tracker:
    def __init__(self, tracking_uri: str, experiment: str, artifact_location: str | None = None):
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # one line per run is noise here
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=tracking_uri)
        found = self.client.get_experiment_by_name(experiment)
        self.experiment_id = (
            found.experiment_id if found else self.client.create_experiment(experiment, artifact_location)
        )
        self.logged = self._existing(KEY_TAG)
        self.parents = self._existing(GROUP_TAG)

    def _existing(self, tag: str) -> dict[str, str]:
        """Tag value → run id, for every run of the experiment that carries the tag (paged)."""
        found, token = {}, None
        while True:
            page = self.client.search_runs([self.experiment_id], filter_string=f"tags.`{tag}` != ''",
                                           max_results=5000, page_token=token)  # fmt: skip
            for run in page:
                found[run.data.tags[tag]] = run.info.run_id
            token = page.token
            if not token:
                return found

    def _parent(self, trial: Trial) -> str:
        group = f"stage{trial.stage}/{trial.method}/{trial.task}/{trial.model}"
        if group not in self.parents:
            run = self.client.create_run(self.experiment_id, run_name=group, tags={GROUP_TAG: group,
                                         "stage": str(trial.stage), "method": trial.method, "task": trial.task,
                                         "model": trial.model})  # fmt: skip
            self.client.set_terminated(run.info.run_id)
            self.parents[group] = run.info.run_id
        return self.parents[group]

    def log_trial(self, trial: Trial, store: Store) -> str | None:
        """One child run for a finished trial (none if it exists already): few requests, batched."""
        from mlflow.entities import Metric, Param

        if trial.key in self.logged or not store.is_done(trial.key):
            return self.logged.get(trial.key)
        result = store.result(trial.key)
        provenance = result.get("provenance", {})
        tags = {"mlflow.parentRunId": self._parent(trial), KEY_TAG: trial.key, "stage": str(trial.stage),
                "method": trial.method, "task": trial.task, "seed": str(trial.seed), "model": trial.model,
                "source_keys": ",".join(trial.depends_on), "source_tasks": ",".join(trial.source_tasks),
                "node": result.get("node", ""), "host": provenance.get("hardware", {}).get("host", ""),
                "git_commit": provenance.get("git_commit", ""),
                "mlflow.runName": f"{trial.method}/{trial.task}/seed{trial.seed}"}  # fmt: skip
        run = self.client.create_run(self.experiment_id, tags=tags)
        now = int(time.time() * 1000)
        metrics = [Metric(f"dev_{k[4:]}" if k.startswith("dev_") else k, float(v), now, int(row.get("epoch", 0)))
                   for row in result.get("history", []) for k, v in row.items()
                   if k.startswith("dev_") and isinstance(v, int | float)]  # fmt: skip
        metrics += [Metric(f"test_{k}", float(v), now, 0) for k, v in result.get("test", {}).items()]
        metrics += [Metric(f"params_{k}", float(v), now, 0) for k, v in result.get("parameters", {}).items()]
        metrics += [Metric("wall_seconds", float(result.get("wall_seconds", 0)), now, 0),
                    Metric("best_epoch", float(result.get("best_epoch", -1)), now, 0)]  # fmt: skip
        params = [Param(k, v[:6000]) for k, v in _flatten("", trial.config, {}).items()]
        for start in range(0, len(params), 100):  # MLflow's limits per request: 100 params, 1000 metrics
            self.client.log_batch(run.info.run_id, params=params[start : start + 100])
        for start in range(0, len(metrics), 1000):
            self.client.log_batch(run.info.run_id, metrics=metrics[start : start + 1000])
        artifacts = store.trial_dir(trial.key)
        self.client.log_artifact(run.info.run_id, str(artifacts / "result.json"))
        model_dir = artifacts / "artifacts" / "model"
        if model_dir.exists():
            self.client.log_artifacts(run.info.run_id, str(model_dir), artifact_path="model")
        self.client.set_terminated(run.info.run_id)
        self.logged[trial.key] = run.info.run_id
        return run.info.run_id

    def log_aggregates(self, trials: list[Trial], store: Store) -> None:
        """Seed mean and sd of every test metric on each parent run."""
        from mlflow.entities import Metric

        groups: dict[str, list[dict]] = {}
        for trial in trials:
            if store.is_done(trial.key):
                groups.setdefault(self._parent(trial), []).append(store.result(trial.key).get("test", {}))
        now = int(time.time() * 1000)
        for run_id, tests in groups.items():
            metrics = [Metric("seeds", float(len(tests)), now, 0)]
            for name in tests[0]:
                values = [t[name] for t in tests if name in t]
                metrics.append(Metric(f"test_{name}_mean", float(statistics.mean(values)), now, 0))
                if len(values) > 1:
                    metrics.append(Metric(f"test_{name}_sd", float(statistics.stdev(values)), now, 0))
            self.client.log_batch(run_id, metrics=metrics)


def ui_command(store: Store) -> list[str]:
    return [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", f"sqlite:///{store.root / 'mlflow.db'}",
            "--host", "127.0.0.1"]  # fmt: skip


__all__ = ["EmbeddedServer", "Tracker", "store_tracking_uri", "ui_command"]
