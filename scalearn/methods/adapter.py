"""Single-task Pfeiffer adapter: stage 1, and the 'Adapter' baseline row (docs/method.md §2.1)."""

from __future__ import annotations

from scalearn.methods.base import Count, Method, Positive, adapter_config_for, register


@register("adapter")
class SingleAdapter(Method):
    learning_rate: Positive = 3e-4
    """scripts/st-a: LR 3e-4 (docs/method.md §2.1)."""
    reduction_factor: Count = 16
    """d/16: bottleneck 48 on base models, 64 on large (docs/method.md §2.1)."""

    def _build(self, encoder, head, sources):
        return adapter_model(encoder, head, self.reduction_factor)


def adapter_model(encoder, head, reduction_factor: int, name: str = "task"):
    """One trainable Pfeiffer adapter and the head(s) (Adapter, stage 1; Adapter-m with one adapter shared)."""
    from scalearn.adapters import BottleneckAdapters
    from scalearn.model import TransferModel

    adapters = BottleneckAdapters(adapter_config_for(encoder, reduction_factor), 1, names=[name])
    model = TransferModel(encoder, head, adapters, adapter_role="trained")
    model.set_trainable(model.adapters, model.head)
    return model
