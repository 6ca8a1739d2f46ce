"""An ExperimentSpec → the trials it needs, in stage order, each with its content key.

Stage 1 trains single-task models: the source adapters that transfer trials consume (seed
``source_seed``, as the paper uses the seed-0 adapters for every stage-2 seed) and the single-task
baselines (adapter, full_ft) on every target and seed. Stage 2 trains the transfer methods on every
target and seed, each naming the keys of its source adapters, the target's own last. A joint multi-task
method (FT-m, Adapter-m, ProPETL-m, HyperFormer) is one stage-1 trial per model and seed that trains every
task of the experiment at once (``Trial.tasks``; its ``task`` names the set, e.g. "glue") and yields a
result for each of them (``task_results``). A trial's key is
the hash of its fully resolved config, the keys it consumes and the core's version, so an identical
trial asked for twice (the seed-0 adapter baseline and the source adapter of the same task) is one
trial, and any change to what it computes makes a new one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from harness.spec import ExperimentSpec


@dataclass(frozen=True)
class Trial:
    key: str
    stage: int
    method: str
    task: str
    seed: int
    model: str
    config: dict = field(repr=False)
    depends_on: tuple[str, ...] = ()
    source_tasks: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    """A joint trial's tasks, all trained at once; empty for a single-task or transfer trial."""

    @property
    def joint(self) -> bool:
        return bool(self.tasks)

    def summary(self) -> dict:
        fields = ("key", "stage", "method", "task", "seed", "model")
        summary = {
            **{name: getattr(self, name) for name in fields},
            "depends_on": list(self.depends_on),
            "sources": list(self.source_tasks),
        }
        if self.tasks:
            summary["tasks"] = list(self.tasks)
        return summary


def task_results(trial: Trial, result: dict) -> list[tuple[str, dict]]:
    """(task, {"test": …, "parameters": …}) for each task a finished trial has results for: the trial's own
    task, or every task of a joint trial."""
    if not trial.joint:
        return [(trial.task, result)]
    per_task = result.get("tasks", {})
    return [(task, {**result, "test": per_task[task].get("test", {})}) for task in trial.tasks if task in per_task]


def resolved_config(spec: ExperimentSpec, method: str, task: str, seed: int, model: str, few_shot: int | None) -> dict:
    """Everything that decides what the trial computes, with every default filled in."""
    from scalearn.backbones import canonical_name
    from scalearn.run import resolve
    from scalearn.tasks import get_task

    resolved_method, loop = resolve(method, seed, spec.overrides_for(method, task))
    spec_task = get_task(task)
    return {
        "model": canonical_name(model),
        "method": method,
        "method_config": {k: v for k, v in resolved_method.to_dict().items() if k != "name"},
        "task": task,
        "task_version": spec_task.version,
        "seed": seed,
        "train": asdict(loop),
        "data": {"max_length": spec.data.max_length or spec_task.max_length, "few_shot": few_shot},
    }


def joint_config(
    spec: ExperimentSpec, method: str, tasks: list[str], label: str, seed: int, model: str, few_shot: int | None
) -> dict:
    """The resolved config of a joint trial: every task it trains, with their versions."""
    from scalearn.backbones import canonical_name
    from scalearn.run import resolve
    from scalearn.tasks import get_task

    resolved_method, loop = resolve(method, seed, spec.overrides_for(method))
    return {
        "model": canonical_name(model),
        "method": method,
        "method_config": {k: v for k, v in resolved_method.to_dict().items() if k != "name"},
        "task": label,
        "tasks": list(tasks),
        "task_versions": {task: get_task(task).version for task in tasks},
        "seed": seed,
        "train": asdict(loop),
        "data": {"max_length": spec.data.max_length, "few_shot": few_shot},
    }


def trial_key(config: dict, depends_on: tuple[str, ...]) -> str:
    from scalearn import CORE_VERSION

    canonical = json.dumps(
        {"config": config, "consumes": list(depends_on), "core_version": CORE_VERSION},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


def expand(spec: ExperimentSpec) -> list[Trial]:
    """Every trial of the experiment, stage 1 first, without duplicates."""
    from scalearn.methods import get_method

    trials: dict[str, Trial] = {}

    def add(stage, method, task, seed, model, few_shot, depends_on=(), source_tasks=()) -> str:
        config = resolved_config(spec, method, task, seed, model, few_shot)
        key = trial_key(config, depends_on)
        trials.setdefault(key, Trial(key, stage, method, task, seed, model, config, depends_on, source_tasks))
        return key

    few_shot = spec.data.few_shot
    for model in spec.models:
        for method in spec.methods:
            if getattr(get_method(method), "joint", False):
                tasks, label = spec.task_list(), spec.joint_label()
                for seed in spec.joint_seed_list():
                    config = joint_config(spec, method, tasks, label, seed, model, few_shot)
                    key = trial_key(config, ())
                    trials.setdefault(key, Trial(key, 1, method, label, seed, model, config, tasks=tuple(tasks)))
                continue
            two_stage = get_method(method).uses_sources
            for target in spec.target_list():
                for seed in spec.seeds_for(target):
                    if not two_stage:
                        add(1, method, target, seed, model, few_shot)
                        continue
                    sources = spec.source_list(target)
                    keys = tuple(
                        # in few-shot runs the target's own source adapter is the k-shot one (reference §4.5)
                        add(1, "adapter", source, spec.source_seed, model, few_shot if source == target else None)
                        for source in sources
                    )
                    add(2, method, target, seed, model, few_shot, keys, tuple(sources))
    return sorted(trials.values(), key=lambda t: t.stage)
