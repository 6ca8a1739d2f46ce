"""What every method shares: training hyper-parameters with the paper's defaults, and the registry."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import ClassVar

from torch import nn

from scalearn.adapters import AdapterConfig, BottleneckAdapters
from scalearn.heads import HeadConfig, TaskHead
from scalearn.model import TransferModel


class UnknownMethodError(ValueError):
    pass


@dataclass
class Method:
    """A method decides which parts of the model exist, what is loaded into them, and what trains.

    The training hyper-parameters below are the defaults every method shares; each method overrides
    the ones the paper sets differently, with the source in the field's docstring.
    """

    uses_sources: ClassVar[bool] = False
    """Stage 2: needs the frozen stage-1 adapters of the benchmark (target's own adapter last)."""
    group: ClassVar[str] = "single-task"
    """How the paper's tables group methods: 'single-task' or 'two-stage'."""

    name: str = field(default="", init=False)
    learning_rate: float = 3e-4
    epochs: int = 30
    """30 epochs for every method of the main tables (reference §2.1, §4.3); ReCoRD 3 (a task override)."""
    patience: int = 5
    """Early-stopping patience in evaluations; 5 for the baselines (reference §2.1, §2.2)."""
    batch_size: int = 32
    """Reference §2.1, §4.3."""
    weight_decay: float = 0.0
    """HF AdamW default, not overridden by the scripts (reference §4.3)."""
    warmup_ratio: float = 0.0
    """Linear decay with no warmup (reference §4.3)."""
    max_grad_norm: float = 1.0
    """HF default (reference §4.3)."""

    def build(self, encoder: nn.Module, head: HeadConfig, sources: BottleneckAdapters | None = None) -> TransferModel:
        """The model for one trial, with exactly the intended parameters trainable."""
        if self.uses_sources and sources is None:
            raise ValueError(f"method {self.name!r} transfers from source adapters: pass `sources`")
        if not self.uses_sources and sources is not None:
            raise ValueError(f"method {self.name!r} does not use source adapters")
        return self._build(encoder, TaskHead(head), sources)

    def _build(self, encoder: nn.Module, head: TaskHead, sources: BottleneckAdapters | None) -> TransferModel:
        raise NotImplementedError

    def to_dict(self) -> dict:
        return asdict(self)


def adapter_config_for(encoder: nn.Module, reduction_factor: int = 16) -> AdapterConfig:
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
        METHODS[name] = (cls, defaults)
        return cls

    return decorate


def method_names() -> list[str]:
    return sorted(METHODS)


def get_method(name: str, **overrides) -> Method:
    """An instance of a registered method, with hyper-parameter overrides."""
    if name not in METHODS:
        close = difflib.get_close_matches(name, METHODS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UnknownMethodError(f"unknown method {name!r}{hint}; registered: {', '.join(method_names())}")
    cls, defaults = METHODS[name]
    known = {f.name for f in fields(cls) if f.init}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise UnknownMethodError(
            f"method {name!r} has no hyper-parameter {unknown[0]!r}; it has: {', '.join(sorted(known))}"
        )
    method = cls(**{**defaults, **overrides})
    method.name = name
    return method
