"""Single-task Pfeiffer adapter: stage 1, and the 'Adapter' baseline row (reference §2.1)."""

from __future__ import annotations

from dataclasses import dataclass

from scalearn.adapters import BottleneckAdapters
from scalearn.methods.base import Method, adapter_config_for, register
from scalearn.model import TransferModel


@register("adapter")
@dataclass
class SingleAdapter(Method):
    learning_rate: float = 3e-4
    """scripts/st-a: LR 3e-4 (reference §2.1)."""
    reduction_factor: int = 16
    """d/16: bottleneck 48 on base models, 64 on large (reference §2.1)."""

    def _build(self, encoder, head, sources):
        return adapter_model(encoder, head, self.reduction_factor)


def adapter_model(encoder, head, reduction_factor: int, name: str = "task") -> TransferModel:
    """One trainable Pfeiffer adapter and the head(s) (Adapter, stage 1; Adapter-m with one adapter shared)."""
    adapters = BottleneckAdapters(adapter_config_for(encoder, reduction_factor), 1, names=[name])
    model = TransferModel(encoder, head, adapters, adapter_role="trained")
    model.set_trainable(model.adapters, model.head)
    return model
