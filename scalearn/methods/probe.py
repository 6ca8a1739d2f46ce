"""Probing with fixed scales: Σ_s ω_s a_s with ω given, and only a new head trains (reference §4.7).

Single-adapter probing scales one source by ω ∈ {0, 0.1, …, 1}; pairwise probing sweeps a grid of
(ω_self, ω_mnli). Both are this method with a different ``omega``.
"""

from __future__ import annotations

from dataclasses import dataclass

from scalearn.methods.base import Method, register
from scalearn.model import TransferModel
from scalearn.transfer import FixedMix


@register("probe")
@dataclass
class Probe(Method):
    uses_sources = True
    group = "two-stage"

    learning_rate: float = 3e-4
    """scripts/probing: head LR 3e-4, 30 epochs, patience 5 (reference §4.7)."""
    omega: list[float] | None = None
    """The fixed scale of each source, in source order."""

    def _build(self, encoder, head, sources):
        if self.omega is None or len(self.omega) != sources.num_adapters:
            got = "none" if self.omega is None else f"{len(self.omega)}"
            raise ValueError(f"probe: `omega` needs one fixed weight per source ({sources.num_adapters}), got {got}")
        model = TransferModel(encoder, head, sources, FixedMix(self.omega), adapter_role="sources")
        model.set_trainable(model.head)
        return model
