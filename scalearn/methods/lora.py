"""LoRA on the query and value projections (Hu et al. 2021): not a baseline of the paper (docs/method.md §3),
but the first one users ask for. Defaults are the project's choice (issue 8)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

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
    targets: Annotated[
        tuple[Literal["query", "key", "value", "attn_out", "ffn_gate", "ffn_up", "ffn_out"], ...],
        Field(min_length=1, json_schema_extra={"in_key": "unless_default"}),
    ] = ("query", "value")
    """The projections to adapt (scalearn/tuners/sites.py names them per family; `ffn_gate` on decoders only):
    query and value as Hu et al. 2021 and PEFT's default; all seven on a decoder is QLoRA's habit."""

    def _build(self, encoder, head, sources):
        from scalearn.tuners import LoRA

        tuner = LoRA.for_encoder(encoder, tuple(self.targets), rank=self.rank, alpha=self.alpha, dropout=self.dropout)
        return tuned_model(encoder, head, tuner)
