"""ProPETL (single task): one prototype adapter after the FFN, masked per layer (reference §3; Zeng et al. 2023)."""

from __future__ import annotations

from dataclasses import dataclass

from scalearn.methods.base import Method, register
from scalearn.model import TransferModel
from scalearn.tuners import ProPETL


@register("propetl")
@dataclass
class ProPETLSingleTask(Method):
    learning_rate: float = 1e-3
    """scripts/st-propetl: LR 1e-3 for the prototype (and the head) (reference §3)."""
    mask_learning_rate: float = 5e-3
    """scripts/st-propetl: mask LR 5e-3 for the mask scores (reference §3)."""
    sparsity: float = 0.5
    """scripts/st-propetl: sparsity 0.5, half of each layer's prototype weights masked out (reference §3)."""
    weight_decay: float = 0.1
    """scripts/st-propetl: weight decay 0.1 (reference §3); biases and LayerNorms excluded, as for every method."""
    reduction_factor: int = 16
    """d/16, as every adapter of the paper (reference §2.1): bottleneck 48 on base models."""

    def _build(self, encoder, head, sources):
        config = encoder.config
        tuner = ProPETL(config.hidden_size, config.num_hidden_layers, self.reduction_factor, self.sparsity)
        model = TransferModel(encoder, head, tuner=tuner)
        model.set_trainable(model.tuner, model.head)
        model.learning_rates = {
            "tuner.down_scores": self.mask_learning_rate,
            "tuner.up_scores": self.mask_learning_rate,
        }
        return model
