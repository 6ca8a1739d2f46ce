"""MLflow on a real PostgreSQL (the server binaries ship in the `pgserver` wheel, started here in a temporary
folder on a Unix socket): `mlflow server` over it with four client processes logging at once; two submits
of a tiny sweep at once with --tracking-uri pointing at that server; the database named directly. Every run
and metric arrives, none twice."""

import multiprocessing
import time
from pathlib import Path

import pytest

from harness.store import Store

RUNS_PER_CLIENT, CLIENTS, POINTS = 25, 4, 20


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    pgserver = pytest.importorskip("pgserver")
    pytest.importorskip("psycopg2")  # MLflow 3 would pick psycopg 3 for a bare postgresql:// URI
    server = pgserver.get_server(str(tmp_path_factory.mktemp("pg")), cleanup_mode="stop")
    server.psql("CREATE DATABASE mlflow;")
    socket_dir = server.get_uri().split("host=")[1]
    yield f"postgresql+psycopg2://postgres@/mlflow?host={socket_dir}"
    server.cleanup()


@pytest.fixture(scope="module")
def server(postgres, tmp_path_factory):
    """One `mlflow server` (two workers) over the PostgreSQL database, for the module: (its store, its URI).
    Starting one takes ~5 s; the tests write to experiments of their own."""
    from harness.tracking import EmbeddedServer

    store = Store(tmp_path_factory.mktemp("served") / "store")
    with EmbeddedServer(store, workers=2, backend_uri=postgres) as running:
        yield store, running.uri


def log_runs(uri: str, experiment_id: str, client_index: int) -> None:
    from mlflow.tracking import MlflowClient

    from harness.tracking import RunRecord, write_runs_api

    now = int(time.time() * 1000)
    records = [
        RunRecord(
            name=f"c{client_index}/r{i}",
            tags={"harness.trial_key": f"c{client_index}-r{i}"},
            params={f"p{j}": str(j) for j in range(10)},
            metrics=[("dev_loss", 1.0 / (s + 1), now + s, s) for s in range(POINTS)],
            start_ms=now,
            end_ms=now + 1,
        )
        for i in range(RUNS_PER_CLIENT)
    ]
    write_runs_api(MlflowClient(tracking_uri=uri), experiment_id, records)


def test_concurrent_clients_through_mlflow_server_on_postgres(server, tmp_path):
    """Four client processes log 25 runs each at once through one server: every run and metric arrives, none
    twice."""
    from mlflow.tracking import MlflowClient

    from harness.tracking import KEY_TAG

    _, uri = server
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment("concurrent", (tmp_path / "artifacts").as_uri())
    context = multiprocessing.get_context("spawn")
    clients = [context.Process(target=log_runs, args=(uri, experiment_id, c)) for c in range(CLIENTS)]
    for process in clients:
        process.start()
    for process in clients:
        process.join(timeout=300)
        assert process.exitcode == 0
    runs = client.search_runs([experiment_id], max_results=1000)
    keys = [r.data.tags[KEY_TAG] for r in runs]
    assert len(keys) == len(set(keys)) == CLIENTS * RUNS_PER_CLIENT  # all arrived, none twice
    for run in runs[:: len(runs) // 10]:
        history = client.get_metric_history(run.info.run_id, "dev_loss")
        assert sorted(m.step for m in history) == list(range(POINTS)) and run.info.status == "FINISHED"
        assert len(run.data.params) == 10


def test_two_submits_at_once_through_a_server_on_postgres_log_each_trial_once(server, tmp_path, capsys):
    """Two drivers of one sweep, started at the same moment on a fresh store, both logging to one MLflow
    server over PostgreSQL: every trial trained once and logged once, every group one parent; a resubmit
    through the server logs nothing twice, and nothing goes to the store's own database."""
    from test_concurrent import TINY, check_once, run_together

    from harness.cli import main

    sweep = tmp_path / "two.yaml"  # both stages, two seeds of each target group; two methods are enough
    text = TINY.read_text().replace("name: tiny", "name: tiny-two")
    sweep.write_text(text.replace("scalearn, scalearn_uniform_pp, adapterfusion]", "scalearn]"))
    store, uri = server  # the store the server keeps its artifacts in
    flags = ("--tracking-uri", uri)
    codes, outputs = run_together(*[(sweep, store.root, *flags)] * 2)
    assert codes == [0, 0], "\n".join(o[-3000:] for o in outputs)
    check_once(store, uri, [sweep])
    assert main(["submit", str(sweep), "--store", str(store.root), *flags]) == 0  # all done: no Ray starts
    check_once(store, uri, [sweep])
    assert "its UI is the tracking server's, http://127.0.0.1" in capsys.readouterr().out
    assert not (store.root / "mlflow.db").exists()


def test_a_database_named_directly_as_tracking_uri_keeps_artifacts_in_the_store(ray_local, postgres, tmp_path):
    """--tracking-uri postgresql://… (no server): the runs go to PostgreSQL, their artifacts to the store,
    not to MLflow's default ./mlruns of whatever folder the user stood in."""
    from test_concurrent import TINY, check_once

    from harness.cli import main

    sweep = tmp_path / "direct.yaml"  # the adapter's two trials are enough to show where runs and files go
    text = TINY.read_text().replace("name: tiny", "name: tiny-direct")
    text = text.replace("methods: [adapter, scalearn, scalearn_uniform_pp, adapterfusion]", "methods: [adapter]")
    sweep.write_text(text)
    store = Store(tmp_path / "store")
    assert main(["submit", str(sweep), "--store", str(store.root), "--tracking-uri", postgres]) == 0
    check_once(store, postgres, [sweep])
    assert list((store.root / "mlartifacts" / "tiny-direct").glob("*/artifacts/result.json"))
    assert not (Path(__file__).resolve().parent.parent / "mlruns").exists()
