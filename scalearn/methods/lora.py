"""LoRA on the query and value projections (Hu et al. 2021): not a baseline of the paper (reference §3),
but the first one users ask for. Defaults are the project's choice (issue 8)."""

from __future__ import annotations

from dataclasses import dataclass

from scalearn.methods.base import Method, register
from scalearn.model import TransferModel
from scalearn.tuners import LoRA


@register("lora")
@dataclass
class LoRAMethod(Method):
    learning_rate: float = 5e-4
    """Issue 8 (LoRA is in no ScaLearn script, reference §3); Hu et al. 2021 use 4e-4–5e-4 on RoBERTa-base."""
    rank: int = 8
    """r = 8, as Hu et al. 2021 on RoBERTa-base (issue 8)."""
    alpha: float = 16.0
    """Scaling α / r = 2 (issue 8)."""
    dropout: float = 0.1
    """Dropout on the LoRA branch's input (issue 8)."""

    def _build(self, encoder, head, sources):
        config = encoder.config
        tuner = LoRA(config.hidden_size, config.num_hidden_layers, self.rank, self.alpha, self.dropout)
        model = TransferModel(encoder, head, tuner=tuner)
        model.set_trainable(model.tuner, model.head)
        return model
