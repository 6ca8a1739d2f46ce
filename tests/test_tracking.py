"""The bulk MLflow path writes exactly what MLflow's own client writes: the same run, read back through the
client (tags, params, latest metrics, full metric histories, status, times, artifacts), whether a batch
holds one run or many; NaN metrics round-trip as NaN."""

import json
import math
import time

import pytest

from harness.store import Store
from harness.tracking import RunRecord, sql_store_of, store_tracking_uri, write_runs_api, write_runs_sql


def record(index: int, tmp_path) -> RunRecord:
    artifact = tmp_path / f"result{index}.json"
    artifact.write_text('{"ok": true}')
    folder = tmp_path / f"model{index}"
    folder.mkdir()
    (folder / "omega.json").write_text("[0.5, 0.5]")
    metrics = [("dev_loss", 1.0 / (s + 1), 1_700_000_000_000 + s, s) for s in range(5)]
    metrics += [
        ("dev_loss", 9.0, 1_700_000_000_000, 1),  # older point of a step already logged
        ("test_accuracy", 0.75, 1_700_000_000_500, 0),
        ("test_mcc", float("nan"), 1_700_000_000_500, 0),
    ]
    return RunRecord(
        name=f"scalearn/rte/seed{index}",
        tags={"harness.trial_key": f"k{index}", "stage": "2"},
        params={"lr": "0.006", "method_config.shape": "vector"},
        metrics=metrics,
        start_ms=1_699_999_990_000,
        end_ms=1_700_000_001_000,
        artifacts=[(artifact, None), (folder, "model")],
    )


def snapshot(client, run_id: str) -> dict:
    run = client.get_run(run_id)
    histories = {
        k: sorted(
            (m.step, m.timestamp, m.value if not math.isnan(m.value) else "nan")
            for m in client.get_metric_history(run_id, k)
        )
        for k in run.data.metrics
    }
    return {
        "tags": {k: v for k, v in run.data.tags.items()},
        "params": run.data.params,
        "metrics": {k: "nan" if math.isnan(v) else v for k, v in run.data.metrics.items()},
        "histories": histories,
        "status": run.info.status,
        "times": (run.info.start_time, run.info.end_time),
        "name": run.info.run_name,
        "user": run.info.user_id,
        "lifecycle": run.info.lifecycle_stage,
        "artifacts": sorted(f.path for f in client.list_artifacts(run_id)),
        "model": sorted(f.path for f in client.list_artifacts(run_id, "model")),
    }


@pytest.fixture(scope="module")
def store_client(tmp_path_factory):
    """One store's MLflow client for the tests that each make their own experiment in it (opening the
    database is most of such a test's time)."""
    from mlflow.tracking import MlflowClient

    store = Store(tmp_path_factory.mktemp("tracking") / "store")
    return store, MlflowClient(tracking_uri=store_tracking_uri(store))


@pytest.mark.parametrize("batch", [1, 3])
def test_bulk_runs_read_back_exactly_as_api_runs(tmp_path, batch, store_client):
    store, client = store_client
    experiment = client.create_experiment(f"bulk{batch}", (store.root / "mlartifacts").as_uri())
    records = [record(i, tmp_path) for i in range(batch)]
    by_api = write_runs_api(client, experiment, records)
    by_sql = write_runs_sql(sql_store_of(client), experiment, records)
    assert len(set(by_api + by_sql)) == 2 * batch
    for api_id, sql_id in zip(by_api, by_sql, strict=True):
        api, sql = snapshot(client, api_id), snapshot(client, sql_id)
        assert sql == api
        assert sql["metrics"]["dev_loss"] == 0.2 and sql["metrics"]["test_mcc"] == "nan"  # greatest step wins
        assert sql["status"] == "FINISHED" and sql["model"] == ["model/omega.json"]
    found = client.search_runs([experiment], filter_string="tags.`harness.trial_key` = 'k0'")
    assert len(found) == 2  # searchable by the key tag like any run


def test_a_run_is_found_by_a_tag_value_holding_quotes(store_client):
    """MLflow's filter strings have no escape for a quote: a group named after a folder like `it's "v2"` must
    still find its own run (and only it), or a resubmit opens a second parent run for it."""
    from harness.tracking.backend import backend_for

    store, client = store_client
    experiment = client.create_experiment("quotes", (store.root / "mlartifacts").as_uri())
    values = ["plain", "it's", 'say "hi"', 'it\'s "v2"', 'it_s "v2"', "50% off"]
    ids = {}
    for value in values:
        run = client.create_run(experiment)
        client.set_tag(run.info.run_id, "harness.group", value)
        ids[value] = run.info.run_id
    backend = backend_for(client, experiment)
    for value in values:
        assert backend.find("harness.group", value) == ids[value], value
    assert backend.tagged("harness.group") == ids


def test_a_long_run_logs_its_training_loss_as_window_means_at_their_last_step():
    from harness.tracking import LOSS_POINTS, loss_points

    losses = [float(step) for step in range(1, 1001)]  # optimizer steps 1..1000
    times = [1_700_000_000.0 + step for step in range(1000)]
    points = loss_points(losses, times, end=0)
    assert len(points) == LOSS_POINTS == 200
    assert [step for _, _, step in points] == list(range(5, 1001, 5))
    assert points[0] == (3.0, 1_700_000_004_000, 5)  # mean of steps 1-5, at step 5's time
    assert loss_points(losses[:7], times[:7], end=0) == [
        (float(s), 1_700_000_000_000 + 1000 * (s - 1), s) for s in range(1, 8)
    ]


def test_metrics_are_on_the_reports_scale_and_stepped_by_optimizer_step():
    from harness.tracking import result_metrics

    result = {
        "history": [
            {"epoch": 0, "step": 4, "dev_loss": 0.9, "dev_accuracy": 0.5},
            {"epoch": 1, "step": 8, "dev_loss": 0.7, "dev_accuracy": 0.6},
        ],
        "evaluation_times": [100.0, 200.0],
        "best_step": 8,
        "best_dev": {"loss": 0.7, "accuracy": 0.6},
        "test": {"loss": 0.8, "accuracy": 0.7087},
        "source_scales": {"sms_spam": {"ratio": 23.4, "layer": 8}, "mixed": {"ratio": 11.7, "layer": 8}},
        "constant_dev_loss": {"rte": 0.6931},
        "adapter_scale": {"ratio": 0.21, "layer": 3},
    }
    points = {(name, step): (value, ts) for name, value, ts, step in result_metrics(result, 0, 300_000, joint=False)}
    assert points[("source_scale/sms_spam", 8)] == (23.4, 300_000)  # stepped by the layer where it is largest
    assert points[("constant_dev_loss", 0)] == (0.6931, 300_000)  # a loss: not rescaled
    assert points[("adapter_scale", 3)] == (0.21, 300_000)
    assert points[("dev_accuracy", 4)] == (50.0, 100_000) and points[("dev_loss", 8)] == (0.7, 200_000)
    assert points[("best_dev_accuracy", 8)] == (60.0, 200_000)  # the selected evaluation, at its time
    assert points[("test_accuracy", 8)][0] == pytest.approx(70.87) and points[("test_loss", 8)][0] == 0.8


@pytest.mark.slow
def test_a_new_store_database_is_the_template_copy_and_behaves_as_one_mlflow_made(tmp_path, monkeypatch):
    """A store's first database is copied from an empty one made once per MLflow version (its migrations cost
    ~3 s): the same tables, schema version and Default experiment as MLflow's own, and it takes runs."""
    import sqlite3

    from mlflow.tracking import MlflowClient

    from harness.tracking import seed_database

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    made = tmp_path / "made.db"
    MlflowClient(tracking_uri=f"sqlite:///{made}").search_experiments()
    seeded = tmp_path / "store" / "mlflow.db"
    seed_database(seeded)
    assert [p.name for p in (tmp_path / "cache" / "scalearn-harness").iterdir()] == [
        f"mlflow-{__import__('mlflow').__version__}.db"
    ]

    def schema(path):
        with sqlite3.connect(path) as connection:
            rows = connection.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
            tables = [(kind, name, sorted((sql or "").split("\n"))) for kind, name, sql in rows]  # any constraint order
            version = connection.execute("SELECT version_num FROM alembic_version").fetchall()
            default = connection.execute("SELECT name, artifact_location, lifecycle_stage FROM experiments").fetchall()
        return tables, version, default

    assert schema(seeded) == schema(made)
    with sqlite3.connect(seeded) as connection:  # the Default experiment is created now, not with the template
        (created,) = connection.execute("SELECT creation_time FROM experiments").fetchone()
    assert created >= (tmp_path / "cache" / "scalearn-harness").stat().st_mtime_ns // 1_000_000 - 1000
    client = MlflowClient(tracking_uri=f"sqlite:///{seeded}")
    run = client.create_run(client.create_experiment("x"))
    client.log_metric(run.info.run_id, "accuracy", 0.5)
    assert client.get_run(run.info.run_id).data.metrics == {"accuracy": 0.5}
    before = seeded.stat().st_mtime_ns
    seed_database(seeded)  # an existing database is never touched
    assert seeded.stat().st_mtime_ns == before and not list(seeded.parent.glob(".*"))


def test_a_refused_upsert_is_tried_again_and_a_lasting_refusal_is_raised():
    """Two submits finishing the same parents at once: MLflow's read-then-insert of a tag can collide (a
    unique-key violation on PostgreSQL); the tracker tries again, and the second try updates the row."""
    from mlflow.exceptions import MlflowException

    from harness.tracking.tracker import UPSERT_ATTEMPTS, upsert

    calls = []

    def collides_once(run_id, key, value):
        calls.append((run_id, key, value))
        if len(calls) == 1:
            raise MlflowException('duplicate key value violates unique constraint "tag_pk"')
        return "written"

    assert upsert(collides_once, "r", "mlflow.note.content", "text") == "written" and len(calls) == 2

    def always(*_):
        calls.append(None)
        raise MlflowException("the database is gone")

    calls.clear()
    with pytest.raises(MlflowException, match="gone"):
        upsert(always)
    assert len(calls) == UPSERT_ATTEMPTS


@pytest.mark.slow
def test_harness_ui_is_a_light_viewer_unless_asked_for_the_full_server(tmp_path):
    """`harness ui` serves the store's runs from one worker process, with no job runner and no telemetry (MLflow's
    server as it comes starts 16 processes and ~3.8 GB here); `--full` gives that server."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    import psutil
    from mlflow.tracking import MlflowClient

    from harness.tracking import ui_command
    from scalearn.ports import free_port

    store = Store(tmp_path / "store")
    store.root.mkdir()
    experiment = MlflowClient(tracking_uri=store_tracking_uri(store)).create_experiment("seen")
    light, env = ui_command(store)
    assert light[light.index("--workers") + 1] == "1"
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false" and env["MLFLOW_DISABLE_TELEMETRY"] == "true"
    full, full_env = ui_command(store, full=True)
    assert "--workers" not in full and full_env == dict(os.environ)  # MLflow's defaults, untouched

    port = free_port()
    command = [sys.executable, "-m", "harness.cli", "ui", "--store", str(store.root), "--port", str(port)]
    viewer = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline, answer = time.time() + 90, None
        while answer is None and time.time() < deadline and viewer.poll() is None:
            try:
                url = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/get?experiment_id={experiment}"
                answer = json.loads(urllib.request.urlopen(url, timeout=2).read())
            except OSError:
                time.sleep(0.5)
        assert answer is not None and answer["experiment"]["name"] == "seen"
        tree = [psutil.Process(viewer.pid), *psutil.Process(viewer.pid).children(recursive=True)]
        assert len(tree) <= 3, [p.cmdline()[:4] for p in tree]  # the command, MLflow's launcher, one worker
    finally:
        os.killpg(viewer.pid, signal.SIGTERM)
        viewer.wait(timeout=30)


def test_group_and_method_runs_carry_what_their_trials_share_and_per_task_what_differs():
    from pathlib import Path

    from harness.plan import expand
    from harness.spec import load_spec
    from harness.tracking.summaries import method_params, shared_params

    spec = load_spec(Path(__file__).resolve().parent.parent / "experiments" / "tiny.yaml")
    seeds = [t for t in expand(spec) if t.method == "scalearn"]
    group = shared_params(seeds, {t.key: {"parameters": {"transfer": 9216}} for t in seeds})
    assert group["loop.learning_rate"] == "0.006" and group["parameters.transfer"] == "9216"
    assert "seed" not in group and group["task"] == "syn_a_low"
    other = {**group, "task": "syn_b", "loop.learning_rate": "0.002"}  # a second target chose another rate
    top = method_params([group, other])
    assert "loop.learning_rate" not in top and "task" not in top
    assert top["syn_a_low/loop.learning_rate"] == "0.006" and top["syn_b/loop.learning_rate"] == "0.002"
    assert top["parameters.transfer"] == "9216" and top["method"] == "scalearn"


def test_a_transfer_trial_is_logged_after_its_sources_even_when_they_finished_outside_its_batch(tmp_path):
    """A driver killed mid-sweep can leave a source running in a process that outlives it; the resubmit then
    learns of that source's result only from the store. Its transfer trial's run must still name the source's
    run, and a source another live driver is logging holds the transfer trial back rather than leave a gap."""
    import os
    import socket
    from pathlib import Path

    from harness.plan import expand
    from harness.spec import load_spec
    from harness.store import Store, lease_clock
    from harness.tracking.tracker import open_tracker

    spec = load_spec(Path(__file__).resolve().parent.parent / "experiments" / "tiny.yaml")
    trials = expand(spec)
    target = next(t for t in trials if t.method == "scalearn" and t.seed == 0)
    sources = [t for t in trials if t.key in target.depends_on]
    store = Store(tmp_path / "store")
    for trial in [*sources, target]:
        store.write_result(trial.key, {"trial": trial.summary(), "test": {"accuracy": 0.5}})

    def tags(tracker, trial):
        return tracker.client.get_run(tracker.logged[trial.key]).data.tags

    held_by = sources[0]
    tracker = open_tracker(store, "tiny", targets=spec.target_list())
    tracker.begin([*sources, target])  # the resubmit's plan: the sources were still running when it began
    other = f"{socket.gethostname()}:{os.getppid()}:alive"  # a live process of this host, not this one
    claim = store.root / tracker.claims.prefix / "claims" / f"{held_by.key}.json"
    claim.parent.mkdir(parents=True, exist_ok=True)
    claim.write_text(json.dumps({"owner": other, "expires": lease_clock() + 60}))
    assert tracker.log_trials([target], store) == len(sources) - 1  # the transfer trial waits for its source
    assert target.key not in tracker.logged and held_by.key not in tracker.logged
    claim.unlink()  # the other driver let go without logging it
    assert tracker.log_trials([target], store) == 2
    runs = tags(tracker, target)["source_runs"].split(",")
    assert runs == [tracker.logged[key] for key in target.depends_on] and all(runs)
    assert tracker.log_trials([*sources, target], store) == 0  # once each


def test_checks_measured_later_are_added_to_a_logged_run_once(tmp_path):
    """A run logged before the learned-anything checks existed gains them as metrics when `harness measure` adds
    them to the record (its other metrics untouched); added twice, they are not doubled."""
    from pathlib import Path

    from harness.plan import expand
    from harness.spec import load_spec
    from harness.store import Store
    from harness.tracking.tracker import open_tracker

    spec = load_spec(Path(__file__).resolve().parent.parent / "experiments" / "tiny.yaml")
    trials = expand(spec)
    target = next(t for t in trials if t.method == "scalearn" and t.seed == 0)
    store = Store(tmp_path / "store")
    old = {"trial": target.summary(), "test": {"accuracy": 0.5}, "finished_at": 1_790_000_000.0}
    store.write_result(target.key, old)
    tracker = open_tracker(store, "tiny", targets=spec.target_list())
    assert tracker.log_trials([target], store) == 1
    run_id = tracker.logged[target.key]
    assert "constant_dev_loss" not in tracker.client.get_run(run_id).data.metrics
    scales = {"syn_a": {"ratio": 0.21, "layer": 1}, "mixed": {"ratio": 0.3, "layer": 0}}
    store.write_result(target.key, {**old, "constant_dev_loss": {"syn_a_low": 0.6931}, "source_scales": scales})
    assert tracker.add_checks(target, store.result(target.key)) == 3
    assert tracker.add_checks(target, store.result(target.key)) == 0  # once
    metrics = tracker.client.get_run(run_id).data.metrics
    assert metrics["constant_dev_loss"] == pytest.approx(0.6931) and metrics["source_scale/syn_a"] == 0.21
    assert metrics["test_accuracy"] == 50.0  # what it logged before, as it was
    (point,) = tracker.client.get_metric_history(run_id, "source_scale/syn_a")
    assert point.step == 1 and point.timestamp == 1_790_000_000_000  # at the layer, when the trial finished


def test_the_shared_view_of_a_sweep_with_many_targets_fits_mlflows_tag_limit(tmp_path):
    """About 570 characters of view a target: past ~34 targets MLflow would refuse the tag, and every later
    submit would fail as it ends. The charts that fit are kept, the first first."""
    from mlflow.tracking import MlflowClient
    from mlflow.utils.validation import MAX_EXPERIMENT_TAG_VAL_LENGTH

    from harness.tracking.server import VIEW_TAG, seed_database, share_view

    seed_database(tmp_path / "mlflow.db")  # the empty template: no migrations
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("many", artifact_location=str(tmp_path / "artifacts"))
    metrics = [f"task{i}/test_accuracy_{kind}" for i in range(60) for kind in ("mean", "sd")]
    share_view(client, experiment, ["avg_test_score_mean", *metrics], runs=12)
    view = json.loads(client.get_experiment(experiment).tags[VIEW_TAG])
    assert len(json.dumps(view)) <= MAX_EXPERIMENT_TAG_VAL_LENGTH
    charts = [chart["metricKey"] for chart in view["compareRunCharts"]]
    assert 10 < len(charts) < 121 and charts == ["avg_test_score_mean", *metrics][: len(charts)]


def test_a_finished_trial_held_back_is_written_once_its_interval_passes_without_another_finishing():
    """The submit hands the tracker every turn of its loop, an empty batch too: a trial held back because one was
    just written is written once the interval passes, not when the next trial finishes (maybe hours later)."""
    from harness.tracking.tracker import Coalescer

    written = []
    coalescer = Coalescer(lambda held: written.extend(held) or len(held), seconds=0.2)
    coalescer.last = time.monotonic()  # a write just happened
    assert coalescer.add(["finished"]) == 0 and written == []
    time.sleep(0.25)
    assert coalescer.add([]) == 1 and written == ["finished"]


def test_a_competitor_without_every_target_shows_no_average_not_a_stale_one():
    """The report leaves Avg empty until every target has a finished seed; MLflow's competitor run says so too
    (NaN), rather than keeping an average an earlier submit logged over fewer targets."""
    from harness.tracking.summaries import method_summary

    scores = {"rte": {"accuracy": [70.0, 72.0]}, "stsb": {"pearson": [88.0, 90.0]}}
    metrics = dict(method_summary(scores, {"rte": "accuracy", "stsb": "pearson"}, ["rte", "stsb"])[0])
    assert metrics["avg_test_score_mean"] == pytest.approx(80.0)
    metrics = dict(method_summary({"rte": scores["rte"]}, {"rte": "accuracy"}, ["rte", "stsb"])[0])
    assert math.isnan(metrics["avg_test_score_mean"]) and metrics["rte/test_accuracy_mean"] == pytest.approx(71.0)
