"""What every method shares, and the registry. Importing a method costs no torch: a method's class is its
hyper-parameter model (the loop's settings with the method's defaults, plus its own), checked by pydantic
wherever values enter; torch is imported when ``build`` makes the model.

A method's hooks, each with a default here:
    build(encoder, head, sources)      the model for one trial, exactly the intended parameters trainable
    prepare(target, sources, …)        what it needs from the data before the seed draws (AdapterSoup)
    for_counting(num_sources)          the settings a config-only parameter count needs (the probe's ω)
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from pydantic import ConfigDict, PrivateAttr, ValidationError

from scalearn.config import Count, LoopConfig, Positive, value_errors

if TYPE_CHECKING:
    from torch import nn

    from scalearn.adapters import AdapterConfig, BottleneckAdapters
    from scalearn.heads import HeadConfig, TaskHead
    from scalearn.model import TransferModel


class UnknownMethodError(ValueError):
    pass


class Method(LoopConfig):
    """A method decides which parts of the model exist, what is loaded into them, and what trains.

    Its fields are its hyper-parameters: every LoopConfig field (the loop's settings; a method overrides
    the defaults the paper sets differently, with the source in the field's docstring) and its own.
    """

    model_config = ConfigDict(frozen=False)

    uses_sources: ClassVar[bool] = False
    """Stage 2: needs the frozen stage-1 adapters of the benchmark (target's own adapter last)."""
    source_method: ClassVar[str] = "adapter"
    """The stage-1 method whose artifacts a two-stage method's sources are ("lora" for ScaLearn over LoRA)."""
    joint: ClassVar[bool] = False
    """Trains every task of a benchmark at once, one head per task (``scalearn.methods.joint``)."""
    group: ClassVar[str] = "single-task"
    """How the paper's tables group methods: 'single-task', 'joint' or 'two-stage'."""

    _name: str = PrivateAttr("")

    @property
    def name(self) -> str:
        return self._name

    # -- the two halves of its settings ---------------------------------------------------------------

    @classmethod
    def own_fields(cls) -> list[str]:
        """The method's own settings (not the loop's)."""
        return [name for name in cls.model_fields if name not in LoopConfig.model_fields]

    def settings(self) -> dict:
        return self.model_dump(include=set(self.own_fields()))

    def loop_config(self) -> LoopConfig:
        return LoopConfig(**self.model_dump(include=set(LoopConfig.model_fields)))

    # -- hooks ----------------------------------------------------------------------------------------

    def build(self, encoder: nn.Module, head: HeadConfig, sources: BottleneckAdapters | None = None) -> TransferModel:
        """The model for one trial, with exactly the intended parameters trainable."""
        from scalearn.heads import TaskHead

        if self.uses_sources and sources is None:
            raise ValueError(f"method {self.name!r} transfers from source adapters: pass `sources`")
        if not self.uses_sources and sources is not None:
            raise ValueError(f"method {self.name!r} does not use source adapters")
        return self._build(encoder, TaskHead(head), sources)

    def _build(self, encoder: nn.Module, head: TaskHead, sources: BottleneckAdapters | None) -> TransferModel:
        raise NotImplementedError

    def prepare(self, target: str, source_tasks: list[str], *, data_dir=None, cache_dir=None) -> Method:
        """What the method computes from the tasks' data before the trial's seed is drawn; itself by default."""
        return self

    def for_counting(self, num_sources: int) -> Method:
        """The method as a config-only parameter count builds it for ``num_sources`` sources; itself by default."""
        return self

    def to_dict(self) -> dict:
        return self.model_dump()


def adapter_config_for(encoder, reduction_factor: int = 16) -> AdapterConfig:
    from scalearn.adapters import AdapterConfig

    config = encoder.config
    return AdapterConfig(config.hidden_size, config.num_hidden_layers, reduction_factor=reduction_factor)


# -- registry -------------------------------------------------------------------------------------

METHODS: dict[str, tuple[type[Method], dict]] = {}


def register(name: str, **defaults) -> Callable[[type[Method]], type[Method]]:
    """Register a method class under ``name``; ``defaults`` override its field defaults.

    One class may be registered under several names (the four ScaLearn variants are one class).
    """

    def decorate(cls: type[Method]) -> type[Method]:
        if name in METHODS:
            raise ValueError(f"method {name!r} is registered twice")
        unknown = sorted(set(defaults) - set(cls.model_fields))
        if unknown:
            raise ValueError(f"method {name!r}: {cls.__name__} has no field {unknown[0]!r}")
        METHODS[name] = (cls, defaults)
        return cls

    return decorate


def method_names() -> list[str]:
    return sorted(METHODS)


def method_class(name: str) -> type[Method]:
    """The registered class (its fields are the method's hyper-parameters)."""
    if name not in METHODS:
        close = difflib.get_close_matches(name, METHODS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UnknownMethodError(f"unknown method {name!r}{hint}; registered: {', '.join(method_names())}")
    return METHODS[name][0]


def value_problems(name: str, overrides: dict) -> list[tuple[str, str]]:
    """(key, what is wrong) for each override of method ``name`` that it lacks or whose value is out of its
    type or range; empty when all fit."""
    cls = method_class(name)
    try:
        cls(**{**METHODS[name][1], **overrides})
    except ValidationError as error:
        return value_errors(cls, error)
    return []


def get_method(name: str, **overrides) -> Method:
    """An instance of a registered method, with hyper-parameter overrides (checked: names and values)."""
    cls = method_class(name)
    unknown = sorted(set(overrides) - set(cls.model_fields))
    if unknown:
        raise UnknownMethodError(
            f"method {name!r} has no hyper-parameter {unknown[0]!r}; it has: {', '.join(sorted(cls.model_fields))}"
        )
    try:  # built once; the problems are worked out only when it does not build
        method = cls(**{**METHODS[name][1], **overrides})
    except ValidationError:
        key, message = value_problems(name, overrides)[0]
        raise ValueError(f"method {name!r}: {key}: {message}" if key else f"method {name!r}: {message}") from None
    method._name = name
    return method


__all__ = [
    "METHODS",
    "Count",
    "Method",
    "Positive",
    "get_method",
    "method_class",
    "method_names",
    "register",
    "value_problems",
]
