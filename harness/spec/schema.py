"""The experiment file as typed data: what each key takes, before any registry is asked."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, model_validator

from scalearn.catalog import canonical_name
from scalearn.config import Count, Fraction, NonNegative, Number, Positive, Seed, Whole
from scalearn.methods import (
    METHODS,
    method_class,  # torch-free: the registry of methods and their hyper-parameters
)
from scalearn.tasks import BENCHMARKS

SPEC_VERSION = 1


def _plain_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise ValueError(f"a plain name of letters, digits, '.', '_' and '-' (it names runs/<name>), not {name!r}")
    return name


def _not_a_number_flag(value):
    if isinstance(value, bool):
        raise ValueError(f"a number, not {str(value).lower()}")
    return value


class SpecError(ValueError):
    """A malformed experiment file; str() is the one line shown to the user."""


class _Strict(BaseModel):
    """Unknown keys refused; numbers are numbers (a YAML `true` or `yes` is not 1, `.inf` and `.nan` are none)."""

    model_config = ConfigDict(extra="forbid", strict=False, allow_inf_nan=False)


Seeds = Count | Annotated[list[Seed], Field(min_length=1)]
"""A seed count n (seeds 0..n-1), or a list of seeds."""


class Resources(_Strict):
    cpus: Positive = 1.0
    gpus: NonNegative | Literal["auto"] = 0.0
    """GPUs per trial (a fraction shares a device), or "auto": packed by measured memory (harness/packing.py)."""
    memory_gb: Positive | None = None
    device_memory_gb: Positive | None = None
    """Memory of one GPU, for gpus: auto (e.g. 80 for an A100/H100 80GB)."""
    packing_margin: Fraction = 0.15

    @model_validator(mode="after")
    def _auto_needs_device_memory(self):
        if self.gpus == "auto" and self.device_memory_gb is None:
            raise ValueError("gpus: auto needs device_memory_gb (the memory of one GPU, e.g. 80)")
        return self


class ModelResources(_Strict):
    """What one backbone's trials need instead of `resources` (unset keys keep the experiment's)."""

    cpus: Positive | None = None
    gpus: NonNegative | None = None
    memory_gb: Positive | None = None


class DataOptions(_Strict):
    max_length: Count | None = None
    few_shot: Count | None = None
    max_dev_examples: Count | None = None
    sample: Literal["first", "spread"] = "first"
    """Which rows few_shot and max_dev_examples keep (scalearn.config.DataConfig.sample)."""


class Range(_Strict):
    """A range a sampler draws from (`sampler: random` or `tpe`): whole numbers when both ends are."""

    low: Whole | Number
    high: Whole | Number
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self):
        if not self.low < self.high:
            raise ValueError(f"low must be below high (got {self.low!r} and {self.high!r})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0 (got {self.low!r})")
        return self

    @property
    def integer(self) -> bool:
        return isinstance(self.low, int) and isinstance(self.high, int)


SearchValues = Annotated[list[Any], Field(min_length=1)] | Range
"""A grid's values (a sampler's choices), or a range."""


class SearchSpec(BaseModel):
    """The `search:` block: how points are chosen (sampler, trials, seed), and per method (or `all`) the
    values of each searched hyper-parameter; harness/search.py."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)
    sampler: Literal["grid", "random", "tpe"] = "grid"
    """grid: every combination of the lists; random: `trials` points drawn with `seed`; tpe: Optuna's
    tree-structured Parzen estimator, `startup` random points first, then each point from the finished ones."""
    trials: Count | None = None
    """Points per group (random and tpe)."""
    seed: Seed = 0
    """The sampler's seed (random and tpe): the same seed draws the same points."""
    startup: Count | None = None
    """tpe: random points before the model takes over (default: a third of `trials`, at most 10)."""
    pruner: Literal["none", "sha"] = "none"
    """none: every point trains its whole budget; sha: successive halving (docs/search.md): every point pauses at
    the first rung, and at each rung the best 1/`eta` of a group's points go on, from where they paused."""
    eta: Count = 3
    """sha: the fraction 1/eta of a rung's points promoted to the next, and the ratio of two rungs' budgets."""
    rungs: Count = 3
    """sha: how many rungs; the first is 1/eta^(rungs-1) of the budget, the last the whole budget."""
    __pydantic_extra__: dict[str, dict[str, SearchValues]] = Field(init=False)

    def spaces(self) -> dict[str, dict[str, list | Range]]:
        """Method (or `all`) → hyper-parameter → its values or range."""
        return dict(self.__pydantic_extra__ or {})

    def __bool__(self) -> bool:
        return bool(self.__pydantic_extra__)


class ExperimentSpec(_Strict):
    version: Annotated[Literal[1], BeforeValidator(_not_a_number_flag)]
    name: Annotated[str, AfterValidator(_plain_name)] | None = None
    """The experiment's name: MLflow's experiment, and the default store's folder (runs/<name>)."""
    include: str | None = None
    models: list[str] = Field(min_length=1)
    methods: list[str] = Field(min_length=1)
    benchmark: str | None = None
    tasks: list[str] | None = Field(None, min_length=1)
    targets: list[str] | None = Field(None, min_length=1)
    sources: list[str] | None = Field(None, min_length=1)
    seeds: Seeds = 1
    seeds_per_task: dict[str, Seeds] = Field(default_factory=dict)
    joint_seeds: Seeds | None = None
    source_seed: Seed = 0
    hyperparameters: dict[str, dict[str, Any]] = Field(default_factory=dict)
    task_hyperparameters: dict[str, dict[str, Any]] = Field(default_factory=dict)
    search: SearchSpec = Field(default_factory=SearchSpec)
    search_seeds: Count = 1
    model_hyperparameters: dict[str, dict[str, Any]] = Field(default_factory=dict)
    data: DataOptions = Field(default_factory=DataOptions)
    resources: Resources = Field(default_factory=Resources)
    model_resources: dict[str, ModelResources] = Field(default_factory=dict)
    source_adapters: dict[str, str | dict[str, str]] = Field(default_factory=dict)
    retries: Annotated[Whole, Field(ge=0)] = 1
    checkpoint_every: Annotated[Whole, Field(ge=0)] = 1
    _origins: dict[str, str] = PrivateAttr(default_factory=dict)
    """Top-level key → the file that gave it (`where`)."""

    def where(self, key: str) -> str:
        """``key`` as an error names it: ``FILE:key`` when the spec was loaded from a file."""
        origin = self._origins.get(key.split(".")[0])
        return f"{origin}:{key}" if origin else key

    # -- derived --------------------------------------------------------------------------------

    def task_list(self) -> list[str]:

        return list(self.tasks) if self.tasks is not None else list(BENCHMARKS[self.benchmark])

    def target_list(self) -> list[str]:
        return list(self.targets) if self.targets is not None else self.task_list()

    def source_list(self, target: str) -> list[str]:
        """The sources of a transfer trial: the source set with the target's own adapter moved last."""
        sources = list(self.sources) if self.sources is not None else self.task_list()
        return [s for s in sources if s != target] + [target]

    def source_adapter(self, task: str, model: str) -> str | None:
        """The adapter given for ``task`` on ``model`` in `source_adapters` (a folder or hub id), else None."""
        given = self.source_adapters.get(task)
        return _for_model(given, model) if isinstance(given, dict) else given

    def seeds_for(self, task: str) -> list[int]:
        seeds = self.seeds_per_task.get(task, self.seeds)
        return list(range(seeds)) if isinstance(seeds, int) else list(seeds)

    def joint_seed_list(self) -> list[int]:
        seeds = self.seeds if self.joint_seeds is None else self.joint_seeds
        return list(range(seeds)) if isinstance(seeds, int) else list(seeds)

    def joint_label(self) -> str:
        """What a joint trial's ``task`` says: the benchmark, or "joint" for a hand-picked task list."""
        return self.benchmark if self.tasks is None and self.benchmark is not None else "joint"

    def overrides_for(self, method: str, task: str | None = None, model: str | None = None) -> dict:
        """`all`, then the method's own, then the task's (e.g. ReCoRD's 3 epochs), then the backbone's (its
        memory limits win); keys a method lacks are for the other methods."""
        merged = {**self.hyperparameters.get("all", {}), **self.hyperparameters.get(method, {})}
        merged.update(self.task_hyperparameters.get(task, {}) if task is not None else {})
        merged.update(_for_model(self.model_hyperparameters, model) or {})
        fields = method_class(method).model_fields
        return {k: v for k, v in merged.items() if k in fields}

    def resources_for(self, model: str) -> dict:
        """What one trial of ``model`` needs: `resources`, with the backbone's `model_resources` over it."""
        own = _for_model(self.model_resources, model)
        base = self.resources.model_dump()
        return base if own is None else {**base, **own.model_dump(exclude_none=True)}

    def trained_methods(self) -> list[str]:
        """The methods that train in this experiment: its own, and the stage-1 adapter of two-stage ones."""

        two_stage = any(method_class(m).uses_sources for m in self.methods if m in METHODS)
        return [*self.methods, *(["adapter"] if two_stage and "adapter" not in self.methods else [])]


def _for_model(blocks: dict, model: str | None):
    """The block of ``blocks`` (keyed by model names: aliases or hub ids) that names ``model``, or None."""
    if model is None or not blocks:
        return None

    wanted = canonical_name(model)
    for name, block in blocks.items():
        if canonical_name(name) == wanted:
            return block
    return None
