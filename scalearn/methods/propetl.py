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
        return propetl_model(encoder, head, self.reduction_factor, self.sparsity, self.mask_learning_rate)


def propetl_model(
    encoder, head, reduction_factor: int, sparsity: float, mask_learning_rate: float, tasks: list[str] | None = None
) -> TransferModel:
    """The prototype, its masks' scores (at their own LR) and the head(s) train; ``tasks``: ProPETL-m."""
    config = encoder.config
    tuner = ProPETL(config.hidden_size, config.num_hidden_layers, reduction_factor, sparsity, tasks=tasks)
    model = TransferModel(encoder, head, tuner=tuner)
    model.set_trainable(model.tuner, model.head)
    model.learning_rates = {
        name: mask_learning_rate for name, _ in tuner.named_parameters(prefix="tuner") if name.endswith("_scores")
    }
    return model
