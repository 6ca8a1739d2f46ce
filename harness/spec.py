"""Experiment files: YAML → a validated ExperimentSpec, or one line `FILE:key.path: what is wrong (expected)`.

version: 1
name: glue-roberta-base          # the MLflow experiment; default: the file's stem
include: base.yaml               # optional; this file's keys override the included file's
models: [roberta-base]
methods: [adapter, adapterfusion, scalearn, scalearn_pp]
benchmark: glue                  # or `tasks: [...]` (then sources default to those tasks)
targets: [rte, mrpc]             # default: every task of the benchmark
sources: [mnli, qnli, rte]       # default: every task of the benchmark; the target's own goes last
seeds: 3                         # a count (0..n-1) or a list
seeds_per_task: {rte: 10}        # the paper: 10 seeds for small tasks, 3 for large ones
joint_seeds: 3                   # joint multi-task methods (FT-m, HyperFormer, …): one trial per seed trains
                                 # every task of `tasks`/`benchmark` at once; default: `seeds`
source_seed: 0                   # stage-1 adapters used as sources (the paper always uses seed 0)
hyperparameters:                 # per method, or `all`; method fields or training-loop fields
  all: {epochs: 30}
  scalearn: {learning_rate: 0.006}
search:                          # per method, or `all`: values per hyper-parameter, chosen on dev
  all: {learning_rate: [0.0001, 0.001, 0.01]}   # a grid: every combination of the lists
  # sampler: random                # or tpe (Optuna): `trials` points per group, drawn with `seed`; a field
  # trials: 8                      # may then be a range, e.g. learning_rate: {low: 0.0001, high: 0.01, log: true}
search_seeds: 1                  # seeds each point trains (the first final seeds); the chosen point then
                                 # trains every seed (a search trial at a final seed is that final trial)
model_hyperparameters:           # per backbone (a name of `models`): what must change with its size; these
  roberta-large: {batch_size: 16, gradient_accumulation: 2}   # win over `hyperparameters` and a task's block
data: {max_length: 128, few_shot: null, max_dev_examples: null}   # the paper's few-shot runs: 5000
resources: {cpus: 1, gpus: 0, memory_gb: 4}
model_resources:                 # per backbone: what one of its trials needs instead (unset keys: `resources`)
  roberta-large: {gpus: 1, memory_gb: 16}
source_adapters:                 # sources trained elsewhere, in place of their stage-1 trials: a folder (ours,
  rte: AdapterHub/roberta-base-pf-rte   # AdapterHub's or PEFT's layout; relative: to this file) or a hub id;
  mnli: {roberta-base: ./adapters/mnli} # per backbone where the sweep has several
retries: 1
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from scalearn.methods import method_class  # torch-free: the registry of methods and their hyper-parameters

SPEC_VERSION = 1


class SpecError(ValueError):
    """A malformed experiment file; str() is the one line shown to the user."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


Seeds = Annotated[int, Field(ge=1)] | Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]
"""A seed count n (seeds 0..n-1), or a list of seeds."""


class Resources(_Strict):
    cpus: float = Field(1.0, gt=0)
    gpus: Annotated[float, Field(ge=0)] | Literal["auto"] = 0.0
    """GPUs per trial (a fraction shares a device), or "auto": packed by measured memory (harness/packing.py)."""
    memory_gb: float | None = Field(None, gt=0)
    device_memory_gb: float | None = Field(None, gt=0)
    """Memory of one GPU, for gpus: auto (e.g. 80 for an A100/H100 80GB)."""
    packing_margin: float = Field(0.15, ge=0, lt=1)

    @model_validator(mode="after")
    def _auto_needs_device_memory(self):
        if self.gpus == "auto" and self.device_memory_gb is None:
            raise ValueError("gpus: auto needs device_memory_gb (the memory of one GPU, e.g. 80)")
        return self


class ModelResources(_Strict):
    """What one backbone's trials need instead of `resources` (unset keys keep the experiment's)."""

    cpus: float | None = Field(None, gt=0)
    gpus: Annotated[float, Field(ge=0)] | None = None
    memory_gb: float | None = Field(None, gt=0)


class DataOptions(_Strict):
    max_length: int | None = Field(None, gt=0)
    few_shot: int | None = Field(None, gt=0)
    max_dev_examples: int | None = Field(None, gt=0)


class Range(_Strict):
    """A range a sampler draws from (`sampler: random` or `tpe`): whole numbers when both ends are."""

    low: int | float
    high: int | float
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

    model_config = ConfigDict(extra="allow")
    sampler: Literal["grid", "random", "tpe"] = "grid"
    """grid: every combination of the lists; random: `trials` points drawn with `seed`; tpe: Optuna's
    tree-structured Parzen estimator, `startup` random points first, then each point from the finished ones."""
    trials: Annotated[int, Field(ge=1)] | None = None
    """Points per group (random and tpe)."""
    seed: Annotated[int, Field(ge=0)] = 0
    """The sampler's seed (random and tpe): the same seed draws the same points."""
    startup: Annotated[int, Field(ge=1)] | None = None
    """tpe: random points before the model takes over (default: a third of `trials`, at most 10)."""
    __pydantic_extra__: dict[str, dict[str, SearchValues]] = Field(init=False)

    def spaces(self) -> dict[str, dict[str, list | Range]]:
        """Method (or `all`) → hyper-parameter → its values or range."""
        return dict(self.__pydantic_extra__ or {})

    def __bool__(self) -> bool:
        return bool(self.__pydantic_extra__)


class ExperimentSpec(_Strict):
    version: Literal[1]
    name: str | None = None
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
    source_seed: int = Field(0, ge=0)
    hyperparameters: dict[str, dict[str, Any]] = Field(default_factory=dict)
    task_hyperparameters: dict[str, dict[str, Any]] = Field(default_factory=dict)
    search: SearchSpec = Field(default_factory=SearchSpec)
    search_seeds: Annotated[int, Field(ge=1)] = 1
    model_hyperparameters: dict[str, dict[str, Any]] = Field(default_factory=dict)
    data: DataOptions = Field(default_factory=DataOptions)
    resources: Resources = Field(default_factory=Resources)
    model_resources: dict[str, ModelResources] = Field(default_factory=dict)
    source_adapters: dict[str, str | dict[str, str]] = Field(default_factory=dict)
    retries: int = Field(1, ge=0)

    # -- derived --------------------------------------------------------------------------------

    def task_list(self) -> list[str]:
        from scalearn.tasks import BENCHMARKS

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
        from scalearn.methods import METHODS

        two_stage = any(method_class(m).uses_sources for m in self.methods if m in METHODS)
        return [*self.methods, *(["adapter"] if two_stage and "adapter" not in self.methods else [])]


def _for_model(blocks: dict, model: str | None):
    """The block of ``blocks`` (keyed by model names: aliases or hub ids) that names ``model``, or None."""
    if model is None or not blocks:
        return None
    from scalearn.catalog import canonical_name

    wanted = canonical_name(model)
    for name, block in blocks.items():
        if canonical_name(name) == wanted:
            return block
    return None


def _having(methods: list[str], key: str) -> list[str]:
    """Those of ``methods`` that have the hyper-parameter ``key``."""
    return [m for m in methods if key in method_class(m).model_fields]


def _value_error(methods: list[str], key: str, value) -> str | None:
    """What is wrong with ``value`` for ``key`` in the first of ``methods`` it does not fit, or None."""
    from scalearn.methods import value_problems

    for method in methods:
        problems = value_problems(method, {key: value})
        if problems:
            return problems[0][1]
    return None


def _hyperparameter_errors(spec: ExperimentSpec) -> list[tuple[str, str]]:
    """Every key of ``hyperparameters`` and ``task_hyperparameters`` names a field of a method, and its value
    is what that field takes (type and range, from the method's own model): `all` and a task's block are
    checked against every method of the experiment that has the key (any registered one if none has it)."""
    from scalearn.methods import method_names

    errors = []
    blocks = [(f"hyperparameters.{m}", m, o) for m, o in spec.hyperparameters.items()]
    blocks += [(f"task_hyperparameters.{t}", "all", o) for t, o in spec.task_hyperparameters.items()]
    blocks += [(f"model_hyperparameters.{m}", "all", o) for m, o in spec.model_hyperparameters.items()]
    for location, owner, overrides in blocks:
        if owner != "all" and owner not in method_names():
            known = ["all", *method_names()]
            errors.append((location, _unknown("method", owner, known, "a method name or `all`")))
            continue
        if not isinstance(overrides, dict):
            errors.append((location, f"must be a mapping of hyper-parameters (got {overrides!r})"))
            continue
        for key, value in overrides.items():
            having = _having([owner] if owner != "all" else spec.trained_methods(), key)
            if owner == "all" and not having:
                having = _having(method_names(), key)
            if not having:
                whose = f"method {owner}" if owner != "all" else "any method"
                expected = "one of its fields, e.g. learning_rate, epochs, precision; `harness ls methods`"
                errors.append((f"{location}.{key}", f"unknown hyper-parameter for {whose} (expected {expected})"))
                continue
            problem = _value_error(having, key, value)
            if problem is not None:
                errors.append((f"{location}.{key}", problem))
    return errors


def _search_errors(spec: ExperimentSpec) -> list[tuple[str, str]]:
    """A searched method trains in the experiment and has the field; every value (a range's ends) is in the
    field's range; ranges and `trials` fit the sampler; no more search seeds than a searched group has seeds."""
    from scalearn.methods import method_names

    errors = []
    search = spec.search
    trained = spec.trained_methods()
    sampled = search.sampler != "grid"
    if sampled and search.trials is None:
        errors.append(("search.trials", f"missing: sampler {search.sampler} needs `trials`, the points per group"))
    if not sampled and search.trials is not None:
        errors.append(("search.trials", "a grid trains every combination (expected sampler: random or tpe)"))
    if search.startup is not None and search.sampler != "tpe":
        errors.append(("search.startup", f"only sampler tpe has random start-up points (sampler is {search.sampler})"))
    for owner, space in search.spaces().items():
        if owner != "all" and owner not in method_names():
            errors.append((f"search.{owner}", _unknown("method", owner, ["all", *method_names()], "a method or `all`")))
            continue
        if owner != "all" and owner not in trained:
            errors.append(
                (f"search.{owner}", f"method {owner!r} does not train in this experiment (it trains {trained})")
            )
            continue
        owners = [owner] if owner != "all" else trained
        for key, values in space.items():
            having = _having(owners, key)
            if not having:
                whose = f"method {owner}" if owner != "all" else f"any method of the experiment ({', '.join(trained)})"
                errors.append((f"search.{owner}.{key}", f"unknown hyper-parameter for {whose}"))
                continue
            if isinstance(values, Range):
                if not sampled:
                    where = f"search.{owner}.{key}"
                    errors.append((where, "a range needs sampler: random or tpe (a grid takes a list of values)"))
                    continue
                named = {"low": values.low, "high": values.high}
            else:
                named = dict(enumerate(values))
            for index, value in named.items():
                problem = _value_error(having, key, value)
                if problem is not None:
                    errors.append((f"search.{owner}.{key}.{index}", problem))
                    break
    if sampled and search.trials is not None and not errors:
        from harness.search import grid_points, space_for

        for method in trained:
            space = space_for(spec, method)
            if space and not any(isinstance(v, Range) for v in space.values()):
                size = len(grid_points(space))
                if search.trials > size:
                    problem = f"{search.trials} is more than the {size} points of {method}'s space (expected ≤ {size})"
                    errors.append(("search.trials", problem))
                    break
    if search and spec.search_seeds > 1:
        fewest = min(len(spec.seeds_for(task)) for task in spec.target_list())
        if spec.search_seeds > fewest:
            errors.append(("search_seeds", f"{spec.search_seeds} is more than the seeds of a target ({fewest})"))
    return errors


def semantic_errors(spec: ExperimentSpec) -> list[tuple[str, str]]:
    """(key.path, message) for names that do not exist and sets that do not fit together."""
    from scalearn.catalog import known_model_names
    from scalearn.methods import method_names
    from scalearn.tasks import BENCHMARKS, TASKS

    errors = []
    models = known_model_names()
    for i, model in enumerate(spec.models):
        if model not in models and not Path(model).is_dir():
            errors.append((f"models.{i}", _unknown("model", model, models, "`harness ls models`, or a local folder")))
    for i, method in enumerate(spec.methods):
        if method not in method_names():
            errors.append((f"methods.{i}", _unknown("method", method, method_names(), "`harness ls methods`")))
    if spec.benchmark is None and spec.tasks is None:
        errors.append(("benchmark", "missing: needs `benchmark` or `tasks` (expected one of them)"))
    if spec.benchmark is not None and spec.benchmark not in BENCHMARKS:
        errors.append(("benchmark", _unknown("benchmark", spec.benchmark, list(BENCHMARKS), ", ".join(BENCHMARKS))))
    for field_name in ("tasks", "targets", "sources"):
        for i, task in enumerate(getattr(spec, field_name) or []):
            if task not in TASKS:
                errors.append((f"{field_name}.{i}", _unknown("task", task, list(TASKS), "`harness ls tasks`")))
    for field_name in ("seeds_per_task", "task_hyperparameters"):
        for task in getattr(spec, field_name):
            if task not in TASKS:
                errors.append((f"{field_name}.{task}", _unknown("task", task, list(TASKS), "`harness ls tasks`")))
    errors.extend(_model_block_errors(spec))
    if errors:
        return errors  # the checks below need valid names
    universe = spec.task_list()
    for field_name in ("targets", "sources"):
        for i, task in enumerate(getattr(spec, field_name) or []):
            if task not in universe:
                errors.append((f"{field_name}.{i}", f"task {task!r} is not among the experiment's tasks {universe}"))
    errors.extend(_hyperparameter_errors(spec))
    errors.extend(_search_errors(spec))
    errors.extend(_source_adapter_errors(spec))
    return errors


def _source_adapter_errors(spec: ExperimentSpec) -> list[tuple[str, str]]:
    """`source_adapters` names sources of the transfer trials (and, per model, models of `models`)."""
    from scalearn.catalog import canonical_name

    errors = []
    sources = sorted({s for target in spec.target_list() for s in spec.source_list(target)})
    ours = {canonical_name(m) for m in spec.models}
    for task, given in spec.source_adapters.items():
        if task not in sources:
            errors.append((f"source_adapters.{task}", _unknown("source task", task, sources, "a source of a target")))
        for name in given if isinstance(given, dict) else ():
            if canonical_name(name) not in ours:
                location = f"source_adapters.{task}.{name}"
                errors.append((location, _unknown("model", name, spec.models, "a name of `models`")))
    if spec.source_adapters and not any(method_class(m).uses_sources for m in spec.methods):
        errors.append(("source_adapters", "no method of this experiment uses source adapters"))
    return errors


def _model_block_errors(spec: ExperimentSpec) -> list[tuple[str, str]]:
    """`model_hyperparameters` and `model_resources` name models of `models`; per-model GPUs and gpus: auto
    (packing by measured memory) do not mix yet."""
    from scalearn.catalog import canonical_name

    errors = []
    ours = {canonical_name(m) for m in spec.models}
    for field_name in ("model_hyperparameters", "model_resources"):
        for name in getattr(spec, field_name):
            if canonical_name(name) not in ours:
                errors.append((f"{field_name}.{name}", _unknown("model", name, spec.models, "a name of `models`")))
    if spec.model_resources and spec.resources.gpus == "auto":
        errors.append(("model_resources", "per-model resources do not combine with resources.gpus: auto yet"))
    return errors


def _unknown(kind: str, value: str, known: list[str], expected: str) -> str:
    close = difflib.get_close_matches(value, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown {kind} {value!r}{hint} (expected {expected})"


# -- loading ----------------------------------------------------------------------------------------


def _read_yaml(path: Path, chain: tuple[Path, ...] = ()) -> dict:
    if path in chain:
        raise SpecError(f"{path}:include: includes itself through {' → '.join(str(p) for p in chain)}")
    try:
        text = path.read_text()
    except OSError as error:
        raise SpecError(f"{path}: cannot read ({error.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark, context = getattr(error, "problem_mark", None), getattr(error, "context_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "?"
        problem = getattr(error, "problem", None) or "invalid YAML"
        opened = f" ({error.context} at line {context.line + 1})" if context is not None and error.context else ""
        raise SpecError(f"{path}:{where}: YAML syntax: {problem}{opened}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecError(f"{path}: the file must hold a mapping of keys (expected `key: value` lines)")
    include = data.get("include")
    if include is not None:
        if not isinstance(include, str):
            raise SpecError(f"{path}:include: expected a file name")
        base = _read_yaml((path.parent / include).resolve(), (*chain, path))
        data = {**base, **data}
    return data


_TYPE_TAGS = {"int", "float", "str", "bool"}


def _is_type_tag(part) -> bool:
    """Pydantic puts the member type of a union into the location (``seeds.int``); users do not need it."""
    if not isinstance(part, str):
        return False
    return part in _TYPE_TAGS or "[" in part or part.startswith(("constrained-", "function-"))


def _field_at(location: list) -> tuple[Any, list] | None:
    """(annotation, constraints) of the field a location names, from the spec's own models; None if unknown."""
    import typing

    annotation, metadata = ExperimentSpec, []
    for part in location:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            info = annotation.model_fields.get(str(part))
            if info is None:
                return None
            annotation, metadata = info.annotation, list(info.metadata)
            continue
        members = [annotation, *typing.get_args(annotation)]
        containers = [m for m in members if typing.get_origin(m) in (dict, list)]
        if not containers:
            return None
        container = containers[0]
        annotation, metadata = typing.get_args(container)[-1], []
    return annotation, metadata


def _format(path: Path, error: dict, fields: list[str], all_errors: list[dict]) -> str:
    from scalearn.config import describe

    parts = [part for part in error["loc"] if not _is_type_tag(part)]
    location = ".".join(str(part) for part in parts) or "(top level)"
    kind, message = error["type"], error["msg"]
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(str(error["loc"][-1]), fields, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"{path}:{location}: unknown key{hint} (expected one of {', '.join(fields)})"
    if kind == "missing":
        return f"{path}:{location}: missing (required)"
    if location == "version":
        return f"{path}:version: version {error.get('input')!r} is not supported (expected {SPEC_VERSION})"
    if parts[:1] == ["search"] and len(parts) >= 2 and parts[1] not in SearchSpec.model_fields:
        return f"{path}:{_search_value_error(error, parts, all_errors)}"
    field = _field_at(parts) if not kind.startswith("value_error") else None
    if field is not None:
        return f"{path}:{location}: must be {describe(*field)} (got {error.get('input')!r})"
    message = message.removeprefix("Value error, ")
    return f"{path}:{location}: {message}"


_SEARCH_VALUES = "a non-empty list of values, or a range {low: …, high: …, log: true|false}"


def _search_value_error(error: dict, parts: list, all_errors: list[dict]) -> str:
    """A method's block of `search:`: the error of the union member the user meant (a list or a range)."""
    if len(parts) == 2:
        return f"search.{parts[1]}: must be a mapping of hyper-parameters to {_SEARCH_VALUES} (got {error['input']!r})"
    where = ".".join(str(part) for part in parts[:3])
    value = error["input"] if len(parts) == 3 else None
    in_range = [e for e in all_errors if [p for p in e["loc"] if not _is_type_tag(p)][:3] == parts[:3]]
    in_range = [e for e in in_range if any("Range" in str(p) for p in e["loc"])]
    if in_range and not (len(parts) == 3 and isinstance(value, list)):
        first = in_range[0]
        inner = [str(p) for p in first["loc"] if not _is_type_tag(p)][3:]
        if first["type"] == "extra_forbidden":
            return f"{where}.{inner[0]}: unknown key (expected one of low, high, log)"
        if first["type"] == "missing":
            return f"{where}.{inner[0]}: missing (a range needs low and high)"
        if first["type"] != "model_type":
            spot = ".".join([where, *inner])
            if first["type"] == "value_error":  # Range's own check, which names what it got
                return f"{spot}: {first['msg'].removeprefix('Value error, ')}"
            return f"{spot}: {first['msg']} (got {first.get('input')!r})"
    return f"{where}: must be {_SEARCH_VALUES} (got {value!r})"


def parse_override(text: str) -> tuple[list[str | int], Any]:
    """``KEY=VALUE`` of ``--set``: the dotted key of the file's schema (a number indexes a list) and the value
    as YAML reads it (``0`` a number, ``[rte, cb]`` a list, ``{cpus: 1}`` a mapping)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise SpecError(f"--set {text}: expected KEY=VALUE, e.g. --set resources.gpus=0")
    parts = [int(part) if part.isdigit() else part for part in key.strip().split(".")]
    if any(part == "" for part in parts):
        raise SpecError(f"--set {text}: the key has an empty part (expected e.g. hyperparameters.all.epochs)")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        raise SpecError(f"--set {text}: the value is not valid YAML") from None
    return parts, parsed


def apply_overrides(data: dict, overrides: Sequence[str]) -> dict[str, str]:
    """Set each ``--set KEY=VALUE`` in ``data`` (the file as read, includes merged), as if the file said so;
    returns dotted key → the flag's text, to name the flag in an error about what it set."""
    applied = {}
    for text in overrides:
        parts, value = parse_override(text)
        node = data
        for depth, part in enumerate(parts[:-1]):
            here = ".".join(map(str, parts[: depth + 1]))
            if isinstance(node, list) and isinstance(part, int):
                if part >= len(node):
                    raise SpecError(f"--set {text}: {here} is past the end of the list ({len(node)} items)")
                node = node[part]
                continue
            if not isinstance(node, dict):
                raise SpecError(f"--set {text}: {here.rpartition('.')[0] or here} is not a mapping")
            if not isinstance(node.get(part), dict | list):
                node[part] = {}
            node = node[part]
        last = parts[-1]
        in_list = isinstance(node, list) and isinstance(last, int) and last < len(node)
        if in_list or isinstance(node, dict):
            node[last] = value
        else:
            where = ".".join(map(str, parts[:-1]))
            raise SpecError(f"--set {text}: {where} is a list; index it with a number below {len(node)}")
        applied[".".join(map(str, parts))] = text
    return applied


def _blame(line: str, path: Path, applied: dict[str, str]) -> str:
    """An error about a value a ``--set`` gave names the flag, not the file."""
    head = f"{path}:"
    if not applied or not line.startswith(head):
        return line
    location, _, message = line[len(head) :].partition(": ")
    for key, text in applied.items():
        if location == key or key.startswith(location + "."):
            return f"--set {text}: {message}"
        if location.startswith(key + "."):
            return f"--set {text}: {location}: {message}"
    return line


def load_spec(path: str | Path, overrides: Sequence[str] = ()) -> ExperimentSpec:
    """The validated spec of an experiment file, with ``overrides`` (``--set KEY=VALUE``) applied as if the
    file said them; raises SpecError with one line on any problem, naming the file's key or the flag."""
    path = Path(path)
    data = _read_yaml(path.resolve())
    data.pop("include", None)
    applied = apply_overrides(data, overrides)
    try:
        spec = ExperimentSpec.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        fields = list(ExperimentSpec.model_fields)
        if first["loc"] and first["loc"][0] in ("resources", "data") and len(first["loc"]) > 1:
            fields = list((Resources if first["loc"][0] == "resources" else DataOptions).model_fields)
        raise SpecError(_blame(_format(path, first, fields, error.errors()), path, applied)) from None
    errors = semantic_errors(spec)
    if errors:
        location, message = errors[0]
        raise SpecError(_blame(f"{path}:{location}: {message}", path, applied))
    if spec.name is None:
        spec.name = path.stem
    _resolve_source_paths(spec, path.resolve().parent)
    return spec


def _resolve_source_paths(spec: ExperimentSpec, folder: Path) -> None:
    """A relative folder in `source_adapters` is relative to the experiment file; a hub id stays as it is."""

    def resolved(value: str) -> str:
        candidate = Path(value).expanduser()
        if not candidate.is_absolute() and (folder / candidate).exists():
            return str(folder / candidate)
        return str(candidate) if candidate.is_absolute() or candidate.exists() else value

    for task, given in spec.source_adapters.items():
        if isinstance(given, dict):
            spec.source_adapters[task] = {model: resolved(value) for model, value in given.items()}
        else:
            spec.source_adapters[task] = resolved(given)
