"""A finished trial as an MLflow run record: tags, params, metrics (scores ×100), datasets, artifacts.

Pure: nothing here talks to MLflow or the store; `harness.tracking.backend` writes the records.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from harness.plan import Trial
from harness.selection import point_text
from harness.stats import scaled
from scalearn.catalog import canonical_name
from scalearn.result import ended_improving

KEY_TAG = "harness.trial_key"
"""The tag a child run is found again by: its trial's content key."""
GROUP_TAG = "harness.group"
"""The tag of a parent run: the group it stands for (`group_of`, or "method/<model>/<method>")."""
LEVEL_TAG = "harness.level"
"""Where a run sits: "method" (top level, one per model × method), "group", "trial", or "report"."""
REPORT_GROUP = "report"

ORDER_TAG = "harness.order"
"""A competitor's place in the experiment file (MLflow's table can sort by it, though it then shows its runs
flat: it nests them only when sorted by start)."""
UI_VIEW = "workflowType=machine_learning"
"""What an MLflow 3.17 address needs to open in model-training mode, for a UI other than `harness ui`'s
(harness/tracking/viewer.py); ``mlflow.experimentKind`` is what older and newer UIs read."""
LOSS_POINTS = 200
"""The most training-loss points a child run gets: every optimizer step up to this many, else the means of
this many consecutive windows of steps, each at its window's last step (result.json keeps every step). So a
run's cost to log does not grow with its length (benchmarks/mlflow_throughput.py)."""


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


def ms(seconds: float) -> int:
    return int(seconds * 1000)


def short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def group_of(trial: Trial) -> str:
    """The parent group of a trial: ``stage<s>/<method>/<task>/<model>``, a group's search points and imported
    sources in groups of their own."""
    group = f"stage{trial.stage}/{trial.method}/{trial.task}/{trial.model}"
    if trial.role in ("search", "import"):
        group += f"/{trial.role}"
    return group


def metric_name(name: str) -> str:
    """MLflow's name of a result metric. A joint trial's per-task metrics ("dev_rte/loss", "test_rte/accuracy")
    become "rte/dev_loss", "rte/test_accuracy": the UI groups charts by the part before the slash, so each task
    gets its own section."""
    if "/" not in name:
        return name
    prefix, rest = name.split("_", 1)
    task, metric = rest.split("/", 1)
    return f"{task}/{prefix}_{metric}"


def run_name(trial: Trial) -> str:
    """A trial's run name: what tells it apart under its group's run (which names the method and the task),
    so MLflow's nested rows do not all begin with the same cut-off "method/ta…": `seed 1`, and a search
    point's values."""
    if trial.role != "search" or not trial.point:
        return f"seed {trial.seed}"
    return f"seed {trial.seed} · {point_text(trial.point)}"


def flatten(prefix: str, value, out: dict) -> dict:
    """Nested dicts as dotted keys, lists as JSON, everything else as text (MLflow's params are strings)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    else:
        out[prefix] = json.dumps(value) if isinstance(value, list | tuple) else str(value)
    return out


def trial_span(result: dict, folder: Path | None = None) -> tuple[int, int]:
    """(start, end) in Unix ms of a finished trial: when its worker began and when its result was written."""
    finished = result.get("finished_at") or (folder / "result.json").stat().st_mtime
    started = result.get("started_at") or finished - float(result.get("wall_seconds", 0))
    return ms(started), ms(finished)


def loss_points(losses: list[float], times: list[float], end: int) -> list[tuple[float, int, int]]:
    """(value, timestamp ms, optimizer step) of the training loss, at most LOSS_POINTS of them."""
    count = len(losses)
    at = (lambda i: ms(times[i])) if len(times) == count else (lambda i: end)
    if count <= LOSS_POINTS:
        return [(float(losses[i]), at(i), i + 1) for i in range(count)]
    bounds = [round(j * count / LOSS_POINTS) for j in range(LOSS_POINTS + 1)]
    return [(statistics.fmean(losses[a:b]), at(b - 1), b) for a, b in itertools.pairwise(bounds)]


def result_metrics(result: dict, start: int, end: int, joint: bool) -> list[tuple[str, float, int, int]]:
    """Every metric point of a finished trial, scores ×100 (`harness.stats.scaled`), stepped by optimizer step:
    the training loss, each evaluation at its time, ``best_dev_*`` and test scores at the selected step, what
    it cost, and the system metrics sampled where it ran."""
    points = [
        ("train_loss", v, ts, step)
        for v, ts, step in loss_points(result.get("losses", []), result.get("step_times", []), end)
    ]
    times = result.get("evaluation_times", [])
    best_step = int(result.get("best_step", -1))
    selected = max(best_step, 0)
    chosen_at = end
    for index, row in enumerate(result.get("history", [])):
        timestamp = ms(times[index]) if index < len(times) else end
        if int(row.get("step", -2)) == best_step:
            chosen_at = timestamp
        points += [
            (metric_name(k), scaled(k, v), timestamp, int(row.get("step", 0)))
            for k, v in row.items()
            if k.startswith("dev_") and number(v)
        ]
    points += [
        (f"best_dev_{k}", scaled(k, v), chosen_at, selected) for k, v in result.get("best_dev", {}).items() if number(v)
    ]
    if joint:
        for task, scores in result.get("tasks", {}).items():
            best = scores.get("best_dev", {})
            points += [
                (f"{task}/best_dev_{k}", scaled(k, v), chosen_at, selected) for k, v in best.items() if number(v)
            ]
    points += [
        (metric_name(f"test_{k}"), scaled(k, v), end, selected) for k, v in result.get("test", {}).items() if number(v)
    ]
    for name in ("best_step", "best_epoch", "steps", "wall_seconds", "peak_memory_mb"):
        if number(result.get(name)):
            points.append((name, float(result[name]), end, 0))
    points += check_metrics(result, end, joint)
    system = result.get("system_metrics") or {}
    prefix = "system/" + (f"{system['node'][:12]}/" if system.get("node") else "")
    for index, (timestamp, values) in enumerate(system.get("samples", [])):
        points += [(prefix + k, float(v), int(timestamp), index) for k, v in values.items() if number(v)]
    return points


def check_metrics(result: dict, end: int, joint: bool) -> list[tuple[str, float, int, int]]:
    """The metric points of the learned-anything checks (scalearn.result): the best constant's dev loss, a
    trained adapter's scale and each source's scale at the start, stepped by the layer they were largest at."""
    # the floor of learning anything: the best constant prediction's dev loss (scalearn.metrics.constant_loss)
    points = [
        (f"{task}/constant_dev_loss" if joint else "constant_dev_loss", float(value), end, 0)
        for task, value in (result.get("constant_dev_loss") or {}).items()
        if number(value)
    ]
    own = result.get("adapter_scale") or {}  # a trained adapter's output against its layer's, as a future source
    if number(own.get("ratio")):
        points.append(("adapter_scale", float(own["ratio"]), end, int(own.get("layer", 0))))
    # each source's output against its layer's at the start (scalearn.source_scale): above 5 it swamps the mixture
    points += [
        (f"source_scale/{name}", float(scale["ratio"]), end, int(scale["layer"]))
        for name, scale in (result.get("source_scales") or {}).items()
        if number(scale.get("ratio"))
    ]
    return points


def result_inputs(result: dict) -> list[DatasetRecord]:
    """A dataset input per task and split the trial used: its fingerprint (the tokenised data's cache key)
    and its rows, under the split's name as MLflow's context."""
    inputs = []
    for task, data in result.get("datasets", {}).items():
        fingerprint = data.get("fingerprint", "")
        for split, rows in data.get("rows", {}).items():
            source = json.dumps({"task": task, "split": split, "fingerprint": fingerprint}, sort_keys=True)
            digest = short_hash(f"{fingerprint}:{split}")[:12]
            inputs.append(DatasetRecord(task, digest, source, json.dumps({"num_rows": rows}), split))
    return inputs


def trial_record(
    trial: Trial,
    result: dict,
    folder: Path,
    tags: dict[str, str],
    source_runs: list[str],
    experiment_id: str,
    model_dir: Path | None,
) -> RunRecord:
    """The child run of a finished ``trial`` whose result (and artifact ``folder``) are given. ``tags`` are the
    tracker's (source, parent run, colour); ``source_runs`` the run ids of its source adapters ("" for one not
    logged), linked from its description; ``model_dir`` its saved weights, if any."""
    provenance = result.get("provenance", {})
    start, end = trial_span(result, folder)
    on = "test" if result.get("selects_on_test") else "dev"
    tags = {
        **tags,
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
    if ended_improving(result):  # its best evaluation was its last: possibly under-trained
        tags["harness.still_improving"] = "true"
    if trial.depends_on:  # the source adapters' own runs, as ids and as links on the run's page
        tags["source_runs"] = ",".join(source_runs)
        links = [
            f"[{task}](#/experiments/{experiment_id}/runs/{run}?{UI_VIEW})" if run else f"{task} (not logged)"
            for task, run in zip(trial.source_tasks, source_runs, strict=False)
        ]
        tags["mlflow.note.content"] = f"Source adapters: {', '.join(links)}."
    if trial.joint:
        tags["tasks"] = ",".join(trial.tasks)
    if trial.point is not None:
        tags["search_point"] = json.dumps(trial.point, sort_keys=True)
    params = flatten("", trial.config.model_dump(mode="json"), {})
    params["model_id"] = canonical_name(trial.model)
    params.update({f"parameters.{k}": str(v) for k, v in result.get("parameters", {}).items()})
    artifacts = [(folder / "result.json", None)]
    if model_dir is not None and model_dir.exists():
        artifacts.append((model_dir, "model"))
    return RunRecord(
        name=run_name(trial),
        tags={k: v for k, v in tags.items() if v != ""},
        params={k: v[:6000] for k, v in params.items()},
        metrics=result_metrics(result, start, end, trial.joint),
        start_ms=start,
        end_ms=end,
        artifacts=artifacts,
        inputs=result_inputs(result),
    )
