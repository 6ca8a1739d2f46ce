"""Several submits on one store at once (issue: concurrent submits): real drivers in their own processes,
started at the same moment, each a Ray job of its own on the tests' shared Ray (as several users of one cluster
would be; tests/test_submit.py kills a driver together with the Ray it started). They share the work: every trial
trains once (proved from the store's attempt records, not from timing), has one result, and exactly one MLflow
child run; each group has one parent run; creating the store's database is serialised."""

import subprocess
import sys
from collections import Counter
from pathlib import Path

from conftest import shared_ray_address

from harness.plan import expand
from harness.spec import load_spec
from harness.store import Store
from harness.tracking import GROUP_TAG, KEY_TAG

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "experiments" / "tiny.yaml"


def start(file, store, *extra):
    command = [sys.executable, "-m", "harness.cli", "submit", str(file), "--store", str(store)]
    command += ["--address", shared_ray_address()]
    return subprocess.Popen([*command, *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)


def run_together(*commands):
    """Start every driver before waiting for any (no sleep between them); their exit codes and outputs."""
    processes = [start(*command) for command in commands]
    outputs = [process.communicate(timeout=600)[0] for process in processes]
    return [process.returncode for process in processes], outputs


def mlflow_runs(uri: str, experiment: str):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id], max_results=5000) if found else []


def check_once(store: Store, uri: str, files: list[Path]):
    """Every trial of the files: one result, trained once, one child run; every group: one parent run (a
    report's run, `harness report`'s, aside)."""
    for file in files:
        spec = load_spec(file)
        trials = expand(spec, store)
        runs = mlflow_runs(uri, spec.name)
        children = Counter(r.data.tags[KEY_TAG] for r in runs if KEY_TAG in r.data.tags)
        parents = Counter(r.data.tags[GROUP_TAG] for r in runs if r.data.tags.get(GROUP_TAG, "report") != "report")
        assert all(store.is_done(t.key) for t in trials)
        assert {t.key: len(store.attempts(t.key)) for t in trials} == {t.key: 1 for t in trials}  # trained once
        assert children == Counter({t.key: 1 for t in trials}), f"{spec.name}: twin or missing child runs"
        groups = {f"stage{t.stage}/{t.method}/{t.task}/{t.model}" for t in trials}
        tops = {top_of(t, spec) for t in trials}  # each model × method's run, and each model's source adapters'
        assert parents == Counter(dict.fromkeys(groups | tops, 1)), f"{spec.name}: twin or missing parent runs"
        for run in runs:
            if KEY_TAG in run.data.tags:  # each child under its group's one parent
                trial = next(t for t in trials if t.key == run.data.tags[KEY_TAG])
                group = f"stage{trial.stage}/{trial.method}/{trial.task}/{trial.model}"
                parent = next(r for r in runs if r.data.tags.get(GROUP_TAG) == group)
                assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
                top = next(r for r in runs if r.data.tags.get(GROUP_TAG) == top_of(trial, spec))
                assert parent.data.tags["mlflow.parentRunId"] == top.info.run_id


def top_of(trial, spec) -> str:
    """The top-level run a trial sits under: its competitor's, or, for a source adapter of a task that is no
    target, its model's sources run."""
    if trial.stage == 1 and not trial.joint and trial.task not in spec.target_list():
        return f"sources/{trial.model}"
    return f"method/{trial.model}/{trial.method}"


def test_two_submits_of_one_sweep_and_another_file_on_a_fresh_store(tmp_path):
    """Three drivers at once on a fresh store: two of one sweep, and a second file (its own experiment, in the
    same database) whose trials are all trials of the sweep, so the three share the work. (A submit that joins
    a store with results, and parent runs, already there is test_submit's new seed, checked the same way.)"""
    store = Store(tmp_path / "store")
    other = tmp_path / "other.yaml"
    other.write_text(TINY.read_text().replace("name: tiny", "name: tiny-other").replace("seeds: 2", "seeds: 1"))
    codes, outputs = run_together((TINY, store.root), (TINY, store.root), (other, store.root))
    assert codes == [0, 0, 0], "\n".join(o[-3000:] for o in outputs)
    assert any("another submit is running on this store" in output for output in outputs)
    check_once(store, store.tracking_uri, [TINY, other])  # one database, two experiments, shared trials
    assert store.drivers() == []  # every submit ended and took its record with it
