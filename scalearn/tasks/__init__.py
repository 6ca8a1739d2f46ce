"""Registry of tasks and benchmarks. `harness ls tasks` lists them.

A benchmark is an ordered list of task names; a task may belong to several (RTE is in GLUE, SuperGLUE
and GSG, as in the paper, where SuperGLUE's RTE is the GLUE RTE data).
"""

from __future__ import annotations

import difflib

from scalearn.tasks.base import TaskSpec
from scalearn.tasks.glue import GLUE_TASKS
from scalearn.tasks.humset import HUMSET_TASKS
from scalearn.tasks.offline import OFFLINE_TASKS, load_offline_task
from scalearn.tasks.superglue import SUPERGLUE_TASKS
from scalearn.tasks.synthetic import SYNTHETIC_TASKS, load_synthetic_task


class UnknownTaskError(ValueError):
    pass


def _loader(load, name: str, package: str | None = None):
    def load_task():
        return load(name)

    load_task.package = package  # its version is part of the data's identity (cache keys)
    return load_task


def _offline_spec(entry) -> TaskSpec:
    return TaskSpec(
        name=entry.name,
        benchmark="offline",
        kind=entry.kind,
        metric=entry.metric,
        metrics=(entry.metric, "accuracy")
        if entry.kind == "classification" and entry.metric != "accuracy"
        else (entry.metric,)
        if entry.kind == "classification"
        else ("pearson", "spearman"),
        num_labels=entry.num_labels,
        label_names=entry.label_names,
        protocol="official",
        splits={"train": "train", "dev": "dev", "test": "test"},
        text_fields=("text",),
        loader=_loader(load_offline_task, entry.name, entry.package),
        origin=entry.origin,
        licence=entry.licence,
        description=entry.description,
        version=entry.version,
    )


def _synthetic_spec(entry) -> TaskSpec:
    regression = entry.kind == "regression"
    return TaskSpec(
        name=entry.name,
        benchmark="synthetic",
        kind=entry.kind,
        num_labels=1 if regression else 2,
        metric="pearson" if regression else "accuracy",
        metrics=("pearson",) if regression else ("accuracy",),
        protocol="official",
        splits={"train": "train", "dev": "dev", "test": "test"},
        text_fields=("text",),
        loader=_loader(load_synthetic_task, entry.name),
        origin="generated (scalearn.tasks.synthetic)",
        licence="Apache-2.0 (this project)",
        description=f"concept {entry.concept}, rule {entry.rule}",
    )


def _with_simple(spec: TaskSpec) -> TaskSpec:
    from dataclasses import replace
    from functools import partial

    from scalearn.tasks.base import simple_examples

    return replace(spec, preprocess=partial(simple_examples, spec))


TASKS: dict[str, TaskSpec] = {}
for _spec in [
    *GLUE_TASKS,
    *SUPERGLUE_TASKS,
    *HUMSET_TASKS,
    *(_with_simple(_offline_spec(e)) for e in OFFLINE_TASKS.values()),
    *(_with_simple(_synthetic_spec(e)) for e in SYNTHETIC_TASKS.values()),
]:
    if _spec.name in TASKS:
        raise ValueError(f"task {_spec.name!r} is registered twice")
    TASKS[_spec.name] = _spec

_GLUE = [t.name for t in GLUE_TASKS]
_SUPERGLUE = ["record", "multirc", "boolq", "wic", "wsc", "copa", "cb", "rte"]
BENCHMARKS: dict[str, list[str]] = {
    "glue": _GLUE,
    "superglue": _SUPERGLUE,
    "humset": [t.name for t in HUMSET_TASKS],
    "gsg": _GLUE + [t for t in _SUPERGLUE if t not in _GLUE],  # 15 tasks, RTE once (docs/method.md §4.6)
    "offline": list(OFFLINE_TASKS),
    "synthetic": list(SYNTHETIC_TASKS),
}


def task_names() -> list[str]:
    return list(TASKS)


def get_task(name: str) -> TaskSpec:
    if name not in TASKS:
        close = difflib.get_close_matches(name, TASKS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UnknownTaskError(f"unknown task {name!r}{hint}; `harness ls tasks` lists the {len(TASKS)} registered")
    return TASKS[name]


def benchmark_tasks(name: str) -> list[TaskSpec]:
    if name not in BENCHMARKS:
        raise UnknownTaskError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
    return [TASKS[t] for t in BENCHMARKS[name]]


__all__ = ["BENCHMARKS", "TASKS", "TaskSpec", "UnknownTaskError", "benchmark_tasks", "get_task", "task_names"]
