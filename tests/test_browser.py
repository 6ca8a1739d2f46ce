"""The MLflow UI as a colleague finds it, in a real browser (Debian's Chromium, headless; skipped where it is
absent): every address `harness ui` prints, the experiment's plain address and a run link from a description
open in model-training mode, the shared view on the comparison's columns."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (apt install chromium)")]
TINY = Path(__file__).resolve().parent.parent / "experiments" / "tiny.yaml"


def rendered(url: str, profile: Path) -> str:
    """The page's DOM once its scripts have run, in a fresh browser profile (nothing remembered)."""
    command = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}"]
    port = re.search(r":(\d+)/", url).group(1)  # a port Chrome blocks (e.g. 5060, 6000) is let through too
    command += [f"--explicitly-allowed-ports={port}", "--window-size=1600,1000", "--virtual-time-budget=10000"]
    command += ["--dump-dom", url]
    return subprocess.run(command, capture_output=True, text=True, timeout=120).stdout


def text_of(dom: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))


def model_training_runs_table(dom: str) -> bool:
    """The runs table of model-training mode, not GenAI's traces overview (its "Usage" tab, "Detect Issues")."""
    text = text_of(dom)
    return "matching runs" in text and 'col-id="attributes.`Run Name`"' in dom and "Detect Issues" not in text


@pytest.fixture(scope="module")
def viewer(tmp_path_factory):
    """A finished tiny sweep's store, and `harness ui` over it: (the addresses it printed, the store)."""
    from conftest import local_ray

    from harness.cli import main as harness
    from harness.store import Store
    from scalearn.ports import free_port

    local_ray()
    root = tmp_path_factory.mktemp("browser")
    store = Store(root / "store")
    assert harness(["submit", str(TINY), "--store", str(store.root)]) == 0
    port = free_port()
    command = [sys.executable, "-m", "harness.cli", "ui", "--store", str(store.root), "--port", str(port)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True
    )
    printed = [process.stdout.readline() for _ in range(2)]
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    yield [re.search(r"http://\S+", line).group(0) for line in printed], store, root
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


def test_every_printed_address_opens_the_runs_table_in_model_training_mode(viewer):
    (home, page), store, root = viewer
    assert "workflowType=machine_learning" in home and "viewStateShareKey=harness" in page
    dom = rendered(page, root / "profile-page")
    assert model_training_runs_table(dom), text_of(dom)[:2000]
    for column in (
        "avg_test_score_mean",
        "syn_a_low/test_accuracy_mean",
        "syn_a_low/test_accuracy_sd",
        "test_accuracy",  # the one the trials fill
    ):
        assert f'col-id="metrics.`{column}`"' in dom
    text = text_of(dom)  # the competitors, and the sources apart, as the table's top level: nested, not flat
    assert all(f"{name} · tiny-bert" in text for name in ("adapter", "scalearn", "adapterfusion", "sources"))
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store.tracking_uri)
    (adapter,) = client.search_runs(
        [client.get_experiment_by_name("tiny").experiment_id],
        filter_string="tags.`harness.level` = 'method' and tags.method = 'adapter'",
    )
    for column in ("avg_test_score_mean", "syn_a_low/test_accuracy_sd"):  # numbers in the cells, as MLflow rounds
        shown = f"{adapter.data.metrics[column]:.4f}".rstrip("0").rstrip(".")
        assert shown in text, (column, shown)
    assert "seed 0" not in text  # the trials sit folded under their groups
    home_dom = text_of(rendered(home, root / "profile-home"))
    assert "tiny" in home_dom and "Model training" in home_dom


def test_the_plain_address_and_a_run_link_open_in_model_training_mode_too(viewer):
    """What MLflow opens as GenAI by default (its traces overview; a run as an "Evaluation run"): the viewer
    stores the mode before the UI reads it."""
    (_, page), store, root = viewer
    from mlflow.tracking import MlflowClient

    base = page.split("/#/")[0]
    client = MlflowClient(tracking_uri=store.tracking_uri)
    experiment = client.get_experiment_by_name("tiny")
    plain = rendered(f"{base}/#/experiments/{experiment.experiment_id}", root / "profile-plain")
    assert model_training_runs_table(plain), text_of(plain)[:2000]
    linked = client.search_runs([experiment.experiment_id], filter_string="tags.source_runs != ''")[0]
    link = re.search(r"\]\((#/experiments/[^)]+)\)", linked.data.tags["mlflow.note.content"]).group(1)
    assert link.endswith("?workflowType=machine_learning")  # for a UI other than ours, too
    run_page = text_of(rendered(f"{base}/{link}", root / "profile-run"))
    assert "Evaluation run" not in run_page and "Run ID" in run_page and "Model metrics" in run_page
