"""Probing with fixed scales: Σ_s ω_s a_s with ω given, and only a new head trains (docs/method.md §4.7).

Single-adapter probing scales one source by ω ∈ {0, 0.1, …, 1}; pairwise probing sweeps a grid of
(ω_self, ω_mnli). Both are this method with a different ``omega``.
"""

from __future__ import annotations

from scalearn.methods.base import Method, Positive, register


@register("probe")
class Probe(Method):
    uses_sources = True
    group = "two-stage"

    learning_rate: Positive = 3e-4
    """scripts/probing: head LR 3e-4, 30 epochs, patience 5 (docs/method.md §4.7)."""
    omega: list[float] | None = None
    """The fixed scale of each source, in source order."""

    def for_counting(self, num_sources: int) -> Probe:
        """Counting needs no particular ω: one per source."""
        counted = self.model_copy(update={"omega": [1.0] * num_sources})
        counted._name = self.name
        return counted

    def _build(self, encoder, head, sources):
        from scalearn.model import TransferModel
        from scalearn.transfer import FixedMix

        if self.omega is None or len(self.omega) != sources.num_adapters:
            got = "none" if self.omega is None else f"{len(self.omega)}"
            raise ValueError(f"probe: `omega` needs one fixed weight per source ({sources.num_adapters}), got {got}")
        model = TransferModel(encoder, head, sources, FixedMix(self.omega), adapter_role="sources")
        model.set_trainable(model.head)
        return model
