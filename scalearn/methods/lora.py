"""LoRA on the query and value projections (Hu et al. 2021): not a baseline of the paper (docs/method.md §3),
but the first one users ask for. Defaults are the project's choice (issue 8)."""

from __future__ import annotations

from scalearn.config import Fraction
from scalearn.methods.base import Count, Method, Positive, register
from scalearn.methods.ia3 import tuned_model


@register("lora")
class LoRAMethod(Method):
    learning_rate: Positive = 5e-4
    """Issue 8 (LoRA is in no ScaLearn script, docs/method.md §3); Hu et al. 2021 use 4e-4–5e-4 on RoBERTa-base."""
    rank: Count = 8
    """r = 8, as Hu et al. 2021 on RoBERTa-base (issue 8)."""
    alpha: Positive = 16.0
    """Scaling α / r = 2 (issue 8)."""
    dropout: Fraction = 0.1
    """Dropout on the LoRA branch's input (issue 8)."""

    def _build(self, encoder, head, sources):
        from scalearn.tuners import LoRA

        return tuned_model(
            encoder, head, LoRA.for_encoder(encoder, rank=self.rank, alpha=self.alpha, dropout=self.dropout)
        )
