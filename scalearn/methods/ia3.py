"""(IA)³: rescale keys, values and the FFN activation with learned vectors (reference §3; Liu et al. 2022)."""

from __future__ import annotations

from dataclasses import dataclass

from scalearn.methods.base import Method, register
from scalearn.model import TransferModel
from scalearn.tuners import IA3, intermediate_size


@register("ia3")
@dataclass
class IA3Method(Method):
    learning_rate: float = 5e-3
    """scripts/ia3: LR 5e-3 (reference §3)."""

    def _build(self, encoder, head, sources):
        config = encoder.config
        tuner = IA3(config.hidden_size, intermediate_size(config), config.num_hidden_layers)
        model = TransferModel(encoder, head, tuner=tuner)
        model.set_trainable(model.tuner, model.head)
        return model
