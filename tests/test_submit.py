"""`harness submit` end to end on real Ray (a local cluster started per submit), tiny models, synthetic data:
the two-stage sweep runs, a resubmit runs nothing, a new seed runs only the delta, and a driver stopped by
Ctrl-C or killed with SIGKILL mid-sweep loses nothing."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_concurrent import check_once

from harness.cli import main
from harness.plan import expand
from harness.spec import load_spec
from harness.store import Store

TINY = Path(__file__).resolve().parent.parent / "experiments" / "tiny.yaml"
ORDER = "harness.order"  # a competitor's place in the experiment file


def logged_runs(store: Store, experiment: str = "tiny") -> list:
    """Every child run in the store's MLflow database, read from it directly."""
    from mlflow.tracking import MlflowClient

    from harness.tracking import KEY_TAG

    client = MlflowClient(tracking_uri=store.tracking_uri)
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    return list(client.search_runs([experiment_id], filter_string=f"tags.`{KEY_TAG}` != ''", max_results=5000))


def mlflow_runs(store: Store, experiment: str = "tiny"):
    """(client, experiment, every run) read straight from the store's database, as the UI would see them."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store.tracking_uri)
    found = client.get_experiment_by_name(experiment)
    return client, found, list(client.search_runs([found.experiment_id], max_results=5000))


def check_mlflow_tells_the_truth(store: Store, trials) -> None:
    """Issue 17's acceptance, through MLflow's client: parents FINISHED and spanning their children,
    best_dev_* the selected evaluation, scores ×100 as in the report, the training loss by optimizer step,
    dataset inputs, the experiment's kind."""
    client, experiment, runs = mlflow_runs(store)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    by_id = {r.info.run_id: r for r in runs}
    children = {}
    for run in runs:
        children.setdefault(run.data.tags.get("mlflow.parentRunId"), []).append(run)
    tops = [r for r in children[None] if r.data.tags.get("harness.level") == "method"]
    assert sorted(r.data.tags["method"] for r in tops) == sorted({t.method for t in trials})  # the competitors
    view = json.loads(experiment.tags["mlflow.sharedViewState.harness"])  # the view `harness ui` opens
    shown = [c.removeprefix("metrics.`").removesuffix("`") for c in view["selectedColumns"] if c.startswith("metrics.")]
    targets = sorted({t.task for t in trials if t.stage == 2})
    per_target = [f"{t}/test_accuracy_{s}" for t in targets for s in ("mean", "sd")]  # each mean beside its sd
    # the competitors' columns, then the one the trials' rows fill
    assert shown == ["avg_test_score_mean", *per_target, "test_accuracy"]
    assert all(name in top.data.metrics for top in tops if top.data.tags["stage"] == "2" for name in shown[:-1])
    assert view["runsHiddenMode"] == "SHOW_ALL"
    charts = [c["metricKey"] for c in view["compareRunCharts"] if c["metricSectionId"] == "harness-comparison"]
    assert charts == shown[:-1] and view["compareRunSections"][0]["uuid"] == "harness-comparison"  # sd beside mean
    for top in tops:  # expanded, a competitor's group rows fill the same columns, and its trials' rows theirs
        for group in (g for g in children[top.info.run_id] if g.data.tags["task"] in targets):
            assert all(name in group.data.metrics for name in per_target if name.startswith(group.data.tags["task"]))
            assert all("test_accuracy" in trial.data.metrics for trial in children[group.info.run_id])
    from harness.report import build_report  # the report's cells and MLflow's method runs: one set of numbers

    (table,) = build_report(load_spec(TINY), expand(load_spec(TINY), store), store).tables
    by_method = {top.data.tags["method"]: top.data.metrics for top in tops}
    for row in table.rows:
        for task, cell in row.cells.items():
            assert by_method[row.method][f"{task}/test_accuracy_mean"] == pytest.approx(cell.summary.mean, abs=1e-4)
            assert by_method[row.method][f"{task}/test_accuracy_sd"] == pytest.approx(cell.summary.sd, abs=1e-4)
        assert by_method[row.method]["avg_test_score_mean"] == pytest.approx(row.avg, abs=1e-4)
    from harness.tracking import ui_urls  # the runs tab's address (the experiment's would drop the key)

    page = f"http://ui/#/experiments/{experiment.experiment_id}/runs?workflowType=machine_learning"
    assert f"{page}&viewStateShareKey=harness  ({experiment.name})" in ui_urls("http://ui", store)
    for parent_id, below in children.items():
        if parent_id is None:
            continue
        parent = by_id[parent_id].info
        assert parent.status == "FINISHED", by_id[parent_id].info.run_name
        # exactly its children's span (issue: parents' durations), so Duration compares the competitors' cost
        assert parent.start_time == min(c.info.start_time for c in below), parent.run_name
        assert parent.end_time == max(c.info.end_time for c in below), parent.run_name
    assert "orderByKey" not in view  # MLflow nests runs only when sorted by start: the default, kept
    for top in tops:  # the runs where competitors are compared carry what tells them apart (issue 32, part 5)
        assert top.data.params["method"] == top.data.tags["method"] and "parameters.transfer" in top.data.params
        assert float(top.data.params["loop.learning_rate"]) > 0 and "seed" not in top.data.params
        for group in children[top.info.run_id]:
            assert group.data.params["task"] == group.data.tags["task"]
            assert group.info.run_name == group.data.tags["task"]  # named by what tells it apart below its method
            assert sorted(r.info.run_name for r in children[group.info.run_id]) == [
                f"seed {r.data.tags['seed']}"
                for r in sorted(children[group.info.run_id], key=lambda r: r.data.tags["seed"])
            ]
            assert group.data.params["parameters.transfer"] == top.data.params["parameters.transfer"]
    (sources,) = [r for r in children[None] if r.data.tags.get("harness.level") == "sources"]  # apart from them
    assert sorted(r.data.tags["task"] for r in children[sources.info.run_id]) == ["syn_a", "syn_b"]
    (adapter,) = [top for top in tops if top.data.tags["method"] == "adapter"]
    assert {r.data.tags["task"] for r in children[adapter.info.run_id]} == {"syn_a_low"}  # the competitor alone
    ordered = sorted(tops, key=lambda top: top.data.tags[ORDER])
    assert [top.data.tags["method"] for top in ordered] == [m for m in load_spec(TINY).methods]  # the file's order
    logged = {r.data.tags["harness.trial_key"]: r for r in runs if "harness.trial_key" in r.data.tags}
    for trial in trials:
        run, result = logged[trial.key], store.result(trial.key)
        selected = next(row for row in result["history"] if row["step"] == result["best_step"])
        for name, value in result["best_dev"].items():  # the evaluation that chose the test checkpoint
            assert run.data.metrics[f"best_dev_{name}"] == pytest.approx(value * (1 if "loss" in name else 100))
            assert selected[f"dev_{name}"] == value
        assert run.data.metrics["test_accuracy"] == pytest.approx(100 * result["test"]["accuracy"])
        losses = client.get_metric_history(run.info.run_id, "train_loss")
        assert sorted(m.step for m in losses) == list(range(1, result["steps"] + 1))
        assert [m.value for m in sorted(losses, key=lambda m: m.step)] == pytest.approx(result["losses"])
        assert len({m.timestamp for m in losses}) > 1 or result["steps"] == 1  # each point at its own time
        contexts = {d.tags[0].value: d.dataset for d in run.inputs.dataset_inputs}
        assert sorted(contexts) == ["dev", "test", "train"] and contexts["train"].name == trial.task
        assert json.loads(contexts["train"].profile)["num_rows"] == result["datasets"][trial.task]["rows"]["train"]
        if trial.depends_on:  # its sources' runs, by id
            assert run.data.tags["source_runs"].split(",") == [logged[k].info.run_id for k in trial.depends_on]


def result_times(store: Store, trials) -> dict[str, float]:
    return {t.key: os.stat(store.trial_dir(t.key) / "result.json").st_mtime_ns for t in trials if store.is_done(t.key)}


def test_two_stage_sweep_then_resubmit_then_a_new_seed(ray_local, tmp_path, capsys):
    store = Store(tmp_path / "store")
    assert main(["submit", str(TINY), "--store", str(store.root), "--num-cpus", "2"]) == 0
    out = capsys.readouterr().out
    trials = expand(load_spec(TINY))
    assert f"{len(trials)} to run" in out and "| tiny-bert | scalearn |" in out
    assert all(store.is_done(t.key) for t in trials)
    for trial in trials:
        result = store.result(trial.key)
        assert result["trial"]["key"] == trial.key and "accuracy" in result["test"]
        # one result, stored once: the trial's own task in `tasks` as a joint run's are, none among the artifacts
        assert result["version"] == 2 and result["tasks"][trial.task]["test"] == result["test"]
        assert not (store.trial_dir(trial.key) / "artifacts" / "result.json").exists()
        if trial.stage == 2:  # it consumed exactly the artifacts of the trials it depends on
            expected = [str(store.trial_dir(k) / "artifacts" / "adapter") for k in trial.depends_on]
            assert result["config"]["sources"] == expected
    before = result_times(store, trials)
    runs = logged_runs(store)
    assert sorted(r.data.tags["harness.trial_key"] for r in runs) == sorted(t.key for t in trials)
    transfer = next(r for r in runs if r.data.tags["method"] == "scalearn")
    assert transfer.data.tags["source_keys"] and transfer.data.tags["node"] and transfer.data.tags["mlflow.parentRunId"]
    assert "test_accuracy" in transfer.data.metrics and "dev_loss" in transfer.data.metrics
    assert transfer.data.params["method_config.omega_init_scale"] in ("2.0", "2")
    # figures of the learned mixing beside each transfer checkpoint, logged with its run
    for trial in trials:
        model_dir = store.trial_dir(trial.key) / "artifacts" / "model"
        expected = {"scalearn": "omega.png", "scalearn_uniform_pp": "omega.png", "adapterfusion": "attention.png"}
        if trial.method in expected:
            assert (model_dir / expected[trial.method]).stat().st_size > 5000
        if expected.get(trial.method) == "omega.png":  # and the numbers it shows
            omega = json.loads((model_dir / "omega.json").read_text())
            assert len(omega["sources"]) == len(trial.depends_on) and omega["initial"] > 0
    fusion = next(t for t in trials if t.method == "adapterfusion")
    attention = json.loads((store.trial_dir(fusion.key) / "artifacts" / "model" / "attention.json").read_text())
    assert all(
        abs(sum(layer) - 1) < 1e-4 and len(layer) == len(fusion.depends_on) for layer in attention["mean_attention"]
    )

    # the report: tables in four formats and figures, attached to the sweep in MLflow
    out = tmp_path / "report"
    assert main(["report", str(TINY), "--store", str(store.root), "--out", str(out)]) == 0
    assert "| scalearn |" in capsys.readouterr().out
    assert {p.name for p in out.iterdir()} == {"report.md", "report.tex", "report.csv", "report.json", "figures"}
    figures = {p.name for p in (out / "figures").iterdir()}
    assert "omega_summary_tiny-bert.png" in figures and "curves_tiny-bert_syn_a_low.png" in figures
    assert "mixing_tiny-bert_scalearn_syn_a_low.png" in figures
    artifacts = store.root / "mlartifacts" / "tiny"
    assert len(list(artifacts.glob("*/artifacts/report/report.md"))) == 1  # the sweep's report run
    assert len(list(artifacts.glob("*/artifacts/figures/mixing_*.png"))) == 3  # on the (method, target) parents
    assert len(list(artifacts.glob("*/artifacts/model/omega.png"))) == 4  # per trial: 2 variants × 2 seeds

    assert main(["submit", str(TINY), "--store", str(store.root)]) == 0
    assert f"{len(trials)} already done, 0 to run" in capsys.readouterr().out
    assert result_times(store, trials) == before
    assert len(logged_runs(store)) == len(trials)  # no twins after a resubmit

    # a store recorded before the learned-anything checks: `harness measure` adds what each trial would have recorded
    from harness.trial import CHECKS

    recorded = {t.key: store.result(t.key) for t in trials}
    for trial in trials:
        store.write_result(trial.key, {k: v for k, v in recorded[trial.key].items() if k not in CHECKS})
    assert main(["measure", str(TINY), "--store", str(store.root), "--dry-run"]) == 0
    assert f"{len(trials)} finished trial(s) recorded without the checks" in capsys.readouterr().out
    assert main(["measure", str(TINY), "--store", str(store.root)]) == 0
    said = capsys.readouterr().out
    assert "loudest source" in said and "added 0 metric(s)" in said  # the runs had them: not doubled
    for trial in trials:
        again = store.result(trial.key)
        assert again["remeasured"]["checks"] == sorted(c for c in CHECKS if recorded[trial.key].get(c))
        for check in ("source_scales", "adapter_scale"):  # ratios as recorded, to 4 decimals
            assert (again.get(check) or {}) == (recorded[trial.key].get(check) or {}), (trial.method, check)
        assert again["constant_dev_loss"] == pytest.approx(recorded[trial.key]["constant_dev_loss"])
    assert all(store.result(t.key)["finished_at"] == recorded[t.key]["finished_at"] for t in trials)  # kept
    before = result_times(store, trials)
    assert main(["measure", str(TINY), "--store", str(store.root)]) == 0
    assert "0 finished trial(s)" in capsys.readouterr().out  # once

    more = tmp_path / "more.yaml"
    more.write_text(TINY.read_text().replace("seeds: 2", "seeds: 3"))
    assert main(["submit", str(more), "--store", str(store.root), "--num-cpus", "2"]) == 0
    new = [t for t in expand(load_spec(more)) if t.key not in before]
    assert len(new) == 4  # seed 2 of adapter, scalearn, scalearn_uniform_pp, adapterfusion; sources reused
    assert "4 to run" in capsys.readouterr().out
    assert {k: v for k, v in result_times(store, expand(load_spec(more))).items() if k in before} == before
    check_once(store, store.tracking_uri, [more])  # the new seed's runs under the parents already there, no twins


def test_ctrl_c_then_sigkill_of_the_driver_mid_sweep_then_resubmit(ray_local, tmp_path, capsys):
    """Ctrl-C (SIGINT to the driver's whole process group, as a terminal sends it) stops the submit with one line
    and its parents KILLED; a SIGKILL later leaves them RUNNING; either way what finished is whole, and a
    resubmit runs only the rest, each trial logged once."""
    store = Store(tmp_path / "store")
    trials = expand(load_spec(TINY))
    command = [sys.executable, "-m", "harness.cli", "submit", str(TINY), "--store", str(store.root), "--num-cpus", "2"]

    def driver_until_more_done(at_least: int, text: bool = False) -> subprocess.Popen:
        driver = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while time.time() < deadline and len(result_times(store, trials)) < at_least:
            time.sleep(0.2)
        return driver

    driver = driver_until_more_done(1)
    os.killpg(driver.pid, signal.SIGINT)
    error = driver.communicate(timeout=60)[1].decode()
    done_at_ctrl_c = result_times(store, trials)
    assert driver.returncode == 130 and "Traceback" not in error, error
    assert error.strip().splitlines()[-1] == (
        f"harness submit: tiny: interrupted; {len(done_at_ctrl_c)} of {len(trials)} trials done, kept in "
        f"{store.location}; submitting the same file again goes on from there"
    )
    _, _, runs = mlflow_runs(store)
    parents = [r for r in runs if r.data.tags.get("harness.level") in ("method", "group")]
    assert "KILLED" in {r.info.status for r in parents} <= {"FINISHED", "KILLED"}  # none left RUNNING by a Ctrl-C
    assert len(logged_runs(store)) == len(done_at_ctrl_c)  # what finished is logged before it stops

    driver = driver_until_more_done(len(done_at_ctrl_c) + 1)
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Ray it started, at once
    driver.wait()
    done_before = result_times(store, trials)
    assert {k: done_before[k] for k in done_at_ctrl_c} == done_at_ctrl_c  # the second submit ran only the rest
    assert 0 < len(done_before) < len(trials)
    _, _, runs = mlflow_runs(store)  # the sweep is not over: its parents say so, the sources' run reopened too
    parents = [r for r in runs if r.data.tags.get("harness.level") in ("method", "group", "sources")]
    assert parents and all(r.info.status == "RUNNING" for r in parents if r.info.status != "FINISHED")
    assert any(r.info.status == "RUNNING" for r in parents)
    for key in done_before:  # what is there is whole
        assert store.result(key)["trial"]["key"] == key
    capsys.readouterr()  # the resubmit: the command line's code, in this process, on the tests' running Ray
    assert main(["submit", str(TINY), "--store", str(store.root), "--num-cpus", "2"]) == 0
    printed = capsys.readouterr().out
    assert all(store.is_done(t.key) for t in trials)
    after = result_times(store, trials)
    assert {k: after[k] for k in done_before} == done_before  # finished trials were not run again
    # (tasks already running in Ray's own processes when the driver died may still have finished)
    already = int(printed.split(" already done")[0].rsplit(" ", 1)[-1])
    assert len(done_before) <= already < len(trials)
    keys = [r.data.tags["harness.trial_key"] for r in logged_runs(store)]
    assert sorted(keys) == sorted(t.key for t in trials)  # every trial logged once, none twice
    check_mlflow_tells_the_truth(store, trials)
    # another file whose trials this sweep already ran: nothing to run, every trial logged under competitors
    # still in the file's order (they were created as its trials were logged, before their order was known)
    again = tmp_path / "again.yaml"
    again.write_text(TINY.read_text().replace("name: tiny", "name: tiny-again", 1))
    assert main(["submit", str(again), "--store", str(store.root)]) == 0
    _, _, runs = mlflow_runs(store, "tiny-again")
    tops = sorted((r for r in runs if r.data.tags.get("harness.level") == "method"), key=lambda r: r.data.tags[ORDER])
    assert [top.data.tags["method"] for top in tops] == load_spec(TINY).methods


def test_sigterm_stops_a_submit_as_ctrl_c_does(ray_local, tmp_path, capsys, monkeypatch):
    """SIGTERM (how Slurm, Kubernetes and systemd stop a job) winds a submit down as Ctrl-C does: one line and the
    shell's code for it (143), what finished logged, the parents KILLED, the queued trials on the Ray the process
    keeps cancelled, and the handler that was there before the submit put back."""
    from harness.tracking.tracker import Tracker

    store = Store(tmp_path / "store")
    trials = expand(load_spec(TINY))
    log_finished = Tracker.log_finished

    def sigterm_once_one_is_logged(self, batch, store):  # the real logging, then a SIGTERM to this driver
        logged = log_finished(self, batch, store)
        if logged:
            os.kill(os.getpid(), signal.SIGTERM)
        return logged

    monkeypatch.setattr(Tracker, "log_finished", sigterm_once_one_is_logged)
    before = signal.getsignal(signal.SIGTERM)
    code = main(["submit", str(TINY), "--store", str(store.root)])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    time.sleep(0.3)  # a kill in flight lands (a trial may end between the submit's count and its cancel)
    done = result_times(store, trials)
    said = int(last.partition("stopped by SIGTERM; ")[2].partition(" of ")[0] or -1)
    assert code == 143 and 0 < said <= len(done) < len(trials)
    assert last == (
        f"harness submit: tiny: stopped by SIGTERM; {said} of {len(trials)} trials done, kept in "
        f"{store.location}; submitting the same file again goes on from there"
    )
    assert signal.getsignal(signal.SIGTERM) == before
    _, _, runs = mlflow_runs(store)
    parents = [r for r in runs if r.data.tags.get("harness.level") in ("method", "group")]
    assert "KILLED" in {r.info.status for r in parents} <= {"FINISHED", "KILLED"}
    assert 0 < len(logged_runs(store)) <= said  # what had finished is logged before it stops
    time.sleep(2.0)  # what was queued on the kept Ray was cancelled: nothing more finishes
    assert result_times(store, trials) == done


class Stop(Exception):
    """A crash in the middle of a trial, raised from its callback."""


def stopping_at(evaluation: int):
    """A trial's callback that raises Stop at its ``evaluation``-th evaluation, before that evaluation's checkpoint
    (as a crash would land); ``callback.steps``: the steps of the evaluations before it."""

    def callback(event, payload):
        if event == "evaluation":
            if len(callback.steps) + 1 == evaluation:
                raise Stop
            callback.steps.append(payload["step"])

    callback.steps = []
    return callback


def three_evaluations():
    """tiny.yaml's first source trial, evaluated after each of its 3 steps."""
    first = next(t for t in expand(load_spec(TINY)) if t.stage == 1)
    return dataclasses.replace(first, config=first.config.with_loop(eval_every_steps=1))


def test_a_trial_stopped_midway_goes_on_from_its_last_evaluation(tmp_path, cache_dir):
    """Every trial checkpoints at each evaluation: one stopped at its second (Ctrl-C, a dead node, a session's end)
    runs again from the first, and ends as the uninterrupted trial does, loss for loss."""
    from harness.cli.status import running_lines
    from harness.submit import opening_line
    from harness.trial import run_trial
    from scalearn.layout import read_progress

    trial = three_evaluations()
    stop_at_second = stopping_at(2)
    store = Store(tmp_path / "stopped")
    with pytest.raises(Stop):
        run_trial(trial, store, cache_dir=cache_dir, callback=stop_at_second)
    assert opening_line("tiny", [trial], [trial], store).endswith("1 to run, 1 of them from their last checkpoint")
    (line,) = running_lines([trial], store, now=time.time())  # what `harness status` says of it meanwhile
    first = read_progress(store.checkpoint_dir(trial.key))["history"][0]
    assert line.endswith(
        f"seed 0: step 1 of 3, 1 evaluation(s), best dev loss {first['dev_loss']:.4f} at step 1; "
        "its last evaluation 0 min ago"
    ), line
    stopped_seconds = read_progress(store.checkpoint_dir(trial.key))["seconds"]  # its first stretch, to its checkpoint
    events = []
    resumed = run_trial(
        trial, store, cache_dir=cache_dir, callback=lambda event, payload: events.append((event, payload))
    )
    assert ("resume", {"epoch": 0, "step": stop_at_second.steps[0]}) in events
    assert [e for e, _ in events].count("evaluation") == len(resumed["history"]) - 1  # the first is not run again
    whole = run_trial(trial, Store(tmp_path / "whole"), cache_dir=cache_dir)
    assert resumed["losses"] == whole["losses"] and resumed["history"] == whole["history"]
    assert resumed["test"] == whole["test"]
    # its record counts both stretches (the time between the checkpoint and the stop was lost, not counted)
    assert resumed["wall_seconds"] > stopped_seconds > 0
    assert store.checkpoint_dir(trial.key).exists()  # kept until the result is stored: a kill before goes on from it
    store.write_result(trial.key, resumed)
    assert not store.checkpoint_dir(trial.key).exists()  # ended: nothing goes on from it


def test_checkpoint_every_sets_where_a_stopped_trial_goes_on_from(tmp_path, cache_dir):
    """`checkpoint_every: 2` writes a checkpoint at every second evaluation: a trial stopped at its third goes on
    from its second; `checkpoint_every: 0` writes none, so a stopped trial starts again. Both end as the
    uninterrupted trial does, loss for loss, and the setting is not part of the key. `harness status` says how far
    each got and where a stop would go on from."""
    from harness.cli.status import running_lines
    from harness.trial import run_trial
    from scalearn.layout import LIVE_PROGRESS, read_live_progress, read_progress

    plain = three_evaluations()
    whole = run_trial(plain, Store(tmp_path / "whole"), cache_dir=cache_dir)
    for every, stop_at, goes_on_from in [(2, 3, 2), (0, 2, None)]:
        trial = dataclasses.replace(plain, checkpoint_every=every)
        store = Store(tmp_path / f"every-{every}")
        with pytest.raises(Stop):
            run_trial(trial, store, cache_dir=cache_dir, callback=stopping_at(stop_at))
        progress = read_progress(store.checkpoint_dir(trial.key))
        assert (progress and progress["evaluations"]) == goes_on_from
        # every evaluation before the stop wrote the progress `harness status` reads, checkpointed or not
        live = read_live_progress(store.checkpoint_dir(trial.key))
        assert (live["evaluations"], live["checkpointed_at"]) == (stop_at - 1, goes_on_from)
        assert live["step"] == whole["history"][stop_at - 2]["step"]
        (line,) = running_lines([trial], store, now=time.time())
        assert line.endswith("its last evaluation 0 min ago" if goes_on_from else "0 min ago; no checkpoint yet"), line
        events = []
        resumed = run_trial(trial, store, cache_dir=cache_dir, callback=lambda e, _, seen=events: seen.append(e))
        assert ("resume" in events) == (goes_on_from is not None)
        assert events.count("evaluation") == 3 - (goes_on_from or 0)
        assert resumed["losses"] == whole["losses"] and resumed["history"] == whole["history"]
        assert resumed["test"] == whole["test"]
    spec = load_spec(TINY).model_copy(update={"checkpoint_every": 0})
    assert [t.key for t in expand(spec)] == [t.key for t in expand(load_spec(TINY))]
    # a trial two evaluations past its last checkpoint, as `harness status` sees it
    store = Store(tmp_path / "ahead")
    best = {"selected": {"loss": 0.5}, "step": 2}
    live = {"step": 3, "evaluations": 3, "best": best, "evaluation_time": time.time() - 120, "checkpointed_at": 1}
    (store.checkpoint_dir(plain.key) / LIVE_PROGRESS).parent.mkdir(parents=True)
    (store.checkpoint_dir(plain.key) / LIVE_PROGRESS).write_text(json.dumps(live))
    (line,) = running_lines([plain], store, now=time.time())
    assert line.endswith(
        "step 3 of 3, 3 evaluation(s), best dev loss 0.5000 at step 2; its last evaluation 2 min ago; "
        "stopped now, it would go on from evaluation 1"
    ), line
