"""Full fine-tuning: every encoder weight and a new head train (the 'Full FT' row)."""

from __future__ import annotations

from scalearn.methods.base import Method, Positive, register


@register("full_ft")
class FullFineTuning(Method):
    learning_rate: Positive = 2e-5
    """scripts/full: LR 2e-5 (docs/method.md §3)."""

    def _build(self, encoder, head, sources):
        return full_model(encoder, head)


def full_model(encoder, head):
    """Every encoder weight and the head(s) train (Full FT, FT-m)."""
    from scalearn.model import TransferModel

    model = TransferModel(encoder, head)
    model.set_trainable(model.encoder, model.head)
    return model
