"""AdapterFusion ("dynamic"): attention over the frozen source adapters (docs/method.md §2.2)."""

from __future__ import annotations

from scalearn.config import Fraction, NonNegative
from scalearn.methods.base import Method, Positive, register


@register("adapterfusion")
class AdapterFusionMethod(Method):
    uses_sources = True
    group = "two-stage"

    learning_rate: Positive = 5e-5
    """scripts/fusion: LR 5e-5 (docs/method.md §2.2)."""
    attention_dropout: Fraction = 0.1
    """Dropout on the attention scores: attention_probs_dropout_prob of RoBERTa (docs/method.md §2.2)."""
    reg_weight: NonNegative = 0.01
    """Value regulariser 0.01·Σ‖I − W_V‖², added to the same step's loss (docs/method.md §2.2, §7.1 bug 2)."""

    def _build(self, encoder, head, sources):
        from scalearn.model import TransferModel
        from scalearn.transfer import AdapterFusion

        config = sources.config
        dropout, reg_weight = self.attention_dropout, self.reg_weight
        fusion = AdapterFusion(config.hidden_size, config.num_layers, dropout, reg_weight=reg_weight)
        model = TransferModel(encoder, head, sources, fusion, adapter_role="sources")
        model.set_trainable(model.transfer, model.head)
        return model
