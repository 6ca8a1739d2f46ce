"""Full fine-tuning: every encoder weight and a new head train (the 'Full FT' row)."""

from __future__ import annotations

from dataclasses import dataclass

from scalearn.methods.base import Method, register
from scalearn.model import TransferModel


@register("full_ft")
@dataclass
class FullFineTuning(Method):
    learning_rate: float = 2e-5
    """scripts/full: LR 2e-5 (reference §3)."""

    def _build(self, encoder, head, sources):
        return full_model(encoder, head)


def full_model(encoder, head) -> TransferModel:
    """Every encoder weight and the head(s) train (Full FT, FT-m)."""
    model = TransferModel(encoder, head)
    model.set_trainable(model.encoder, model.head)
    return model
