"""AdapterFusion ("dynamic"): attention over the frozen source adapters (reference §2.2)."""

from __future__ import annotations

from dataclasses import dataclass

from scalearn.methods.base import Method, register
from scalearn.model import TransferModel
from scalearn.transfer import AdapterFusion


@register("adapterfusion")
@dataclass
class AdapterFusionMethod(Method):
    uses_sources = True
    group = "two-stage"

    learning_rate: float = 5e-5
    """scripts/fusion: LR 5e-5 (reference §2.2)."""
    attention_dropout: float = 0.1
    """Dropout on the attention scores: attention_probs_dropout_prob of RoBERTa (reference §2.2)."""
    reg_weight: float = 0.01
    """Value regulariser 0.01·Σ‖I − W_V‖², added to the same step's loss (reference §2.2, §7.1 bug 2)."""

    def _build(self, encoder, head, sources):
        config = sources.config
        fusion = AdapterFusion(
            config.hidden_size, config.num_layers, self.attention_dropout, reg_weight=self.reg_weight
        )
        model = TransferModel(encoder, head, sources, fusion, adapter_role="sources")
        model.set_trainable(model.transfer, model.head)
        return model
