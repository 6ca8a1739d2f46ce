"""An ExperimentSpec → the trials it needs, in stage order, each with its content key.

Stage 1 trains single-task models: the source adapters that transfer trials consume (seed
``source_seed``, as the paper uses the seed-0 adapters for every stage-2 seed) and the single-task
baselines (adapter, full_ft) on every target and seed. Stage 2 trains the transfer methods on every
target and seed, each naming the keys of its source adapters, the target's own last. A joint multi-task
method (FT-m, Adapter-m, ProPETL-m, HyperFormer) is one stage-1 trial per model and seed that trains every
task of the experiment at once (its config's ``tasks``; its ``task`` names the set, e.g. "glue") and yields
a result for each of them (``task_results``).

A trial's config is scalearn's typed ``TrialConfig``, built and checked here without torch; its key is the
hash of that config (the fields marked outside the key left out), the keys it consumes and the core's
version, so an identical trial asked for twice (the seed-0 adapter baseline and the source adapter of the
same task) is one trial, and any change to what it computes makes a new one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from harness.spec import ExperimentSpec
from scalearn.config import TrialConfig


@dataclass(frozen=True)
class Trial:
    key: str
    stage: int
    model: str
    """The model as the experiment file names it (the config holds its canonical name)."""
    config: TrialConfig = field(repr=False)
    depends_on: tuple[str, ...] = ()

    @property
    def method(self) -> str:
        return self.config.method

    @property
    def task(self) -> str:
        return self.config.task

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def tasks(self) -> tuple[str, ...]:
        """A joint trial's tasks, all trained at once; empty for a single-task or transfer trial."""
        return self.config.tasks

    @property
    def source_tasks(self) -> tuple[str, ...]:
        return self.config.sources

    @property
    def joint(self) -> bool:
        return self.config.joint

    def summary(self) -> dict:
        names = ("key", "stage", "method", "task", "seed", "model")
        summary = {name: getattr(self, name) for name in names}
        summary.update(depends_on=list(self.depends_on), sources=list(self.source_tasks))
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


def trial_key(config: TrialConfig | dict, depends_on: tuple[str, ...]) -> str:
    from scalearn import CORE_VERSION

    fields = config.key_fields() if isinstance(config, TrialConfig) else config
    payload = {"config": fields, "consumes": list(depends_on), "core_version": CORE_VERSION}
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


def expand(spec: ExperimentSpec) -> list[Trial]:
    """Every trial of the experiment, stage 1 first, without duplicates."""
    from scalearn.methods import method_class

    trials: dict[str, Trial] = {}

    def add(stage: int, model: str, method: str, depends_on: tuple[str, ...] = (), **where) -> str:
        task = where.get("task")
        config = TrialConfig.create(
            method,
            model=model,
            overrides=spec.overrides_for(method, task),
            max_length=spec.data.max_length,
            **where,
        )
        key = trial_key(config, depends_on)
        trials.setdefault(key, Trial(key, stage, model, config, depends_on))
        return key

    few_shot = spec.data.few_shot
    for model in spec.models:
        for method in spec.methods:
            if method_class(method).joint:
                tasks, label = spec.task_list(), spec.joint_label()
                for seed in spec.joint_seed_list():
                    add(1, model, method, tasks=tasks, label=label, seed=seed, few_shot=few_shot)
                continue
            two_stage = method_class(method).uses_sources
            for target in spec.target_list():
                for seed in spec.seeds_for(target):
                    if not two_stage:
                        add(1, model, method, task=target, seed=seed, few_shot=few_shot)
                        continue
                    sources = spec.source_list(target)
                    keys = tuple(
                        # in few-shot runs the target's own source adapter is the k-shot one (docs/method.md §4.5)
                        add(
                            1,
                            model,
                            "adapter",
                            task=source,
                            seed=spec.source_seed,
                            few_shot=few_shot if source == target else None,
                        )
                        for source in sources
                    )
                    add(2, model, method, keys, task=target, seed=seed, few_shot=few_shot, sources=sources)
    return sorted(trials.values(), key=lambda t: t.stage)
