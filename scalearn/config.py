"""The trial contract: what one trial trains, typed, versioned and checked — without importing torch.

    LoopConfig    how the one training loop runs (scalearn.train): optimiser, schedule, budget, selection,
                  precision, engine; each method's defaults are its own (scalearn.methods)
    DataConfig    how the task's data is cut: maximum length, few-shot subset
    TrialConfig   method + its settings + loop + data + model + task(s) + seed (+ the source tasks of a
                  transfer trial): what the harness hashes into a trial's content key and hands, unchanged,
                  to ``scalearn.run.run``

Every value is checked where it enters (an experiment file, a notebook call) with the same models, and a
wrong one is named with what it must be: ``must be a number > 0 (got 'fast')`` (``describe``,
``value_errors``). Fields marked ``in_key=False`` (logging cadence) do not change what is trained and stay
out of the content key; fields marked ``in_key="unless_default"`` (added after keys were in use) enter it only
when set to something else, so adding one leaves every existing trial's key as it was.
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, Literal, Union

import annotated_types
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic.fields import FieldInfo

CONFIG_VERSION = 1
"""The schema of TrialConfig; a stored config of another version is refused, not guessed at."""

PRECISIONS = ("fp32", "bf16", "fp16")
ENGINE_NAMES = ("torch", "deepspeed")


def _not_a_bool(value):
    """YAML's `yes` and `true` are not numbers (pydantic would read True as 1)."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    return value


_Number = Annotated[float, BeforeValidator(_not_a_bool)]
_Whole = Annotated[int, BeforeValidator(_not_a_bool)]
Positive = Annotated[_Number, Field(gt=0)]
NonNegative = Annotated[_Number, Field(ge=0)]
Fraction = Annotated[_Number, Field(ge=0, lt=1)]
"""A rate in [0, 1): dropout, sparsity, warm-up share."""
Count = Annotated[_Whole, Field(ge=1)]
Seed = Annotated[_Whole, Field(ge=0)]
Number, Whole = _Number, _Whole
"""Any number / any whole number, a boolean refused (for the experiment file's own keys too)."""


class Settings(BaseModel):
    """Strict about names, lax about spelling: YAML's ``1e-4`` (a string to PyYAML) is the number 0.0001,
    ``fast`` is an error; unknown keys are errors; NaN and infinities are refused."""

    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, use_attribute_docstrings=True, allow_inf_nan=False
    )


class LoopConfig(Settings):
    """How the training loop runs. The defaults are the paper's for most methods; a method overrides the ones
    the paper sets differently (``scalearn.methods``), the experiment file the ones it names."""

    model_config = ConfigDict(frozen=True)

    learning_rate: Positive = 3e-4
    epochs: Count = 30
    """30 epochs for every method of the main tables (docs/method.md §2.1, §4.3); ReCoRD 3 (a task override)."""
    patience: Count = 5
    """Early-stopping patience in evaluations; 5 for the baselines (docs/method.md §2.1, §2.2)."""
    batch_size: Count = 32
    """docs/method.md §2.1, §4.3."""
    weight_decay: NonNegative = 0.0
    """HF AdamW default, not overridden by the scripts (docs/method.md §4.3)."""
    warmup_ratio: Fraction = 0.0
    """Linear decay with no warm-up (docs/method.md §4.3)."""
    max_grad_norm: Positive = 1.0
    """HF default (docs/method.md §4.3)."""
    gradient_accumulation: Count = 1
    max_steps: Count | None = None
    """Stop after this many optimizer steps (few-shot: 1,000, docs/method.md §4.5)."""
    eval_every_steps: Count | None = None
    """Evaluate every N optimizer steps instead of every epoch (joint runs: every pass over the tasks)."""
    sampling_temperature: Positive = 1.0
    """Joint multi-task runs: task sampling p_t ∝ n_t^(1/T) (docs/method.md §3 notes)."""
    select_by: Literal["auto", "loss", "metric"] = "auto"
    """'loss' (dev loss), 'metric' (the task's reported metric), or 'auto': what the task selects by."""
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    backbone_dtype: Annotated[
        Literal["fp32", "bf16", "fp16"], Field(json_schema_extra={"in_key": "unless_default"})
    ] = "fp32"
    """The frozen weights' storage (the backbone's, and stage 2's source adapters'): 'bf16' halves their memory
    (an 8B decoder: 16 GB, not 32); what trains stays fp32. Needs the same `precision` (autocast). DeepSpeed
    with bf16/fp16 stores the whole model so anyway."""
    gradient_checkpointing: bool = False
    engine: Literal["torch", "deepspeed"] = "torch"
    """'torch', or 'deepspeed' (ZeRO; multi-process under a launcher or Ray Train)."""
    zero_stage: Annotated[_Whole, Field(ge=0, le=3)] = 2
    offload_optimizer: bool = False
    zero3_persistence_threshold: Annotated[_Whole, Field(ge=0)] = 100_000
    """ZeRO-3 keeps parameters smaller than this whole on every rank (DeepSpeed's default)."""
    eval_batch_size: Count = 64
    """In the key: batches padded to another length can differ in the last bits, and so select another epoch."""
    log_every_steps: Annotated[Count, Field(json_schema_extra={"in_key": False})] = 20
    """How often the loop reports a step to its callback; changes nothing that is trained."""

    @model_validator(mode="after")
    def _frozen_dtype_fits_precision(self) -> LoopConfig:
        if self.backbone_dtype != "fp32" and self.backbone_dtype != self.precision:
            raise ValueError(
                f"backbone_dtype {self.backbone_dtype} needs precision {self.backbone_dtype} (got {self.precision}): "
                "the trained fp32 parameters meet the frozen weights under autocast"
            )
        return self


class DataConfig(Settings):
    model_config = ConfigDict(frozen=True)

    max_length: Count | None = None
    """Tokens per example; None: the task's own (128 for most, docs/method.md §4.1)."""
    few_shot: Count | None = None
    """Train on k examples of the training split (docs/method.md §4.5); None: all of it."""
    max_dev_examples: Annotated[Count | None, Field(json_schema_extra={"in_key": "unless_default"})] = None
    """Select on the first N rows of the dev split only (the paper's few-shot runs: 5,000, docs/method.md §4.5);
    None: all of it."""
    sample: Annotated[Literal["first", "spread"], Field(json_schema_extra={"in_key": "unless_default"})] = "first"
    """Which rows ``few_shot`` and ``max_dev_examples`` keep: "first", the split's first (the paper's protocol:
    GLUE's 90% split is shuffled); "spread", those whose text hashes first, a fixed sample spread over a split
    stored in another order (the offline corpora keep their files' order, by label or by review, docs/data.md).
    The same rows for every seed either way."""


class TrialConfig(Settings):
    """Everything that decides what one trial computes, with every default filled in.

    Built by ``scalearn.resolve.create_config`` (from names and overrides, validated against the method's own
    hyper-parameter model: the check needs the method registry, which sits above this module), hashed by the
    harness (``scalearn.resolve.key_fields``), run by ``scalearn.run.run``. A joint multi-task trial
    names its ``tasks`` and calls their set ``task`` (e.g. "glue"); a transfer trial names the ``sources``
    whose adapters it mixes, in bank order, the target's own last.
    """

    model_config = ConfigDict(frozen=True)

    version: Literal[1] = CONFIG_VERSION
    method: str
    method_config: dict[str, Any]
    """The method's own settings (those that are not LoopConfig's)."""
    loop: LoopConfig
    data: DataConfig = DataConfig()
    model: str
    task: str
    tasks: tuple[str, ...] = ()
    task_versions: dict[str, int]
    seed: Seed = 0
    sources: tuple[str, ...] = ()

    @property
    def joint(self) -> bool:
        return bool(self.tasks)

    def with_loop(self, **changes) -> TrialConfig:
        """The same trial with loop settings changed (checked as any other loop value)."""
        return TrialConfig(**{**self.model_dump(), "loop": {**self.loop.model_dump(), **changes}})


def _in_key_mark(info: FieldInfo):
    extra = info.json_schema_extra
    if isinstance(extra, dict) and "in_key" in extra:
        return extra["in_key"]
    return next(
        (mark for m in info.metadata if isinstance(m, FieldInfo) and (mark := _in_key_mark(m)) is not None), None
    )


def at_default(fields: dict[str, FieldInfo], values: dict) -> set[str]:
    """The names among ``values`` marked ``in_key="unless_default"`` that are at their default (equal as JSON
    says: a stored tuple comes back a list)."""
    import json

    def same(value, default) -> bool:
        return json.dumps(value, sort_keys=True, default=str) == json.dumps(default, sort_keys=True, default=str)

    return {
        name
        for name, value in values.items()
        if name in fields and _key_unless_default(fields[name]) and same(value, fields[name].default)
    }


def outside_key(info: FieldInfo) -> bool:
    return _in_key_mark(info) is False


def _key_unless_default(info: FieldInfo) -> bool:
    return _in_key_mark(info) == "unless_default"


# -- saying what a value must be ------------------------------------------------------------------


def _bounds(metadata: list) -> str:
    low = high = None
    for item in metadata:
        if isinstance(item, FieldInfo):
            item_low, item_high = _bound_pair(item.metadata)
        else:
            item_low, item_high = _bound_pair([item])
        low, high = item_low or low, item_high or high
    if low and high:
        return f" in {'[' if low[0] == '≥' else '('}{low[1]}, {high[1]}{']' if high[0] == '≤' else ')'}"
    if low:
        return f" {low[0]} {low[1]}"
    if high:
        return f" {high[0]} {high[1]}"
    return ""


def _bound_pair(metadata: list) -> tuple[tuple[str, Any] | None, tuple[str, Any] | None]:
    low = high = None
    for item in metadata:
        if isinstance(item, annotated_types.Gt):
            low = (">", item.gt)
        elif isinstance(item, annotated_types.Ge):
            low = ("≥", item.ge)
        elif isinstance(item, annotated_types.Lt):
            high = ("<", item.lt)
        elif isinstance(item, annotated_types.Le):
            high = ("≤", item.le)
    return low, high


def describe(annotation, metadata: list | None = None) -> str:
    """What a value of this type must be, in words: "a number > 0", "a whole number ≥ 1 or null"."""
    metadata = list(metadata or [])
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        base, *extra = typing.get_args(annotation)
        return describe(base, [*metadata, *extra])
    if origin in (Union, types.UnionType):
        members = typing.get_args(annotation)
        words = [describe(member, metadata) for member in members if member is not type(None)]
        return " or ".join(words) + (" or null" if type(None) in members else "")
    if origin is Literal:
        choices = typing.get_args(annotation)
        return repr(choices[0]) if len(choices) == 1 else "one of " + ", ".join(repr(choice) for choice in choices)
    if origin in (list, tuple):
        (member, *_) = typing.get_args(annotation) or (Any,)
        nonempty = any(_min_length(item) for item in metadata)
        return f"a {'non-empty ' if nonempty else ''}list of {_plural(describe(member))}"
    if origin is dict:
        return "a mapping"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"a mapping of {', '.join(annotation.model_fields)}"
    if annotation is bool:
        return "true or false"
    if annotation is int:
        return "a whole number" + _bounds(metadata)
    if annotation is float:
        return "a number" + _bounds(metadata)
    if annotation is str:
        return "a string"
    return getattr(annotation, "__name__", str(annotation))


def _min_length(item) -> bool:
    if isinstance(item, FieldInfo):
        return any(_min_length(inner) for inner in item.metadata)
    return isinstance(item, annotated_types.MinLen) and item.min_length > 0


def _plural(words: str) -> str:
    for singular, plural in (("a whole number", "whole numbers"), ("a number", "numbers"), ("a string", "strings")):
        if words.startswith(singular):
            return plural + words[len(singular) :]
    return words


def describe_field(model: type[BaseModel], name: str) -> str:
    info = model.model_fields[name]
    return describe(info.annotation, info.metadata)


def value_errors(model: type[BaseModel], error: ValidationError, defaults: dict | None = None) -> list[tuple[str, str]]:
    """(dotted key, message) for each wrong value of a ``model`` validation: "must be … (got …)", or
    "unknown key". The key is the field's name as the user wrote it; "" for a rule between fields (e.g.
    backbone_dtype against precision), its message as the rule says it."""
    found: dict[str, str] = {}
    for item in error.errors():
        location = [part for part in item["loc"] if isinstance(part, str | int)]
        name = str(location[0]) if location else ""
        if name in found:
            continue
        if not name:
            found[""] = item["msg"].removeprefix("Value error, ")
        elif item["type"] == "extra_forbidden":
            found[name] = "unknown key"
        elif name in model.model_fields and len(location) == 1:
            found[name] = f"must be {describe_field(model, name)} (got {item.get('input')!r})"
        elif name in model.model_fields:  # inside a list or mapping
            found[name] = f"must be {describe_field(model, name)} ({item['msg']})"
        else:
            found[name] = item["msg"].removeprefix("Value error, ")
    return list(found.items())
