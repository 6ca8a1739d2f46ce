"""ProPETL (single task): one prototype adapter after the FFN, masked per layer (docs/method.md §3;
Zeng et al. 2023)."""

from __future__ import annotations

from scalearn.config import Fraction, NonNegative
from scalearn.methods.base import Count, Method, Positive, register
from scalearn.methods.ia3 import tuned_model


@register("propetl")
class ProPETLSingleTask(Method):
    learning_rate: Positive = 1e-3
    """scripts/st-propetl: LR 1e-3 for the prototype (and the head) (docs/method.md §3)."""
    mask_learning_rate: Positive = 5e-3
    """scripts/st-propetl: mask LR 5e-3 for the mask scores (docs/method.md §3)."""
    sparsity: Fraction = 0.5
    """scripts/st-propetl: sparsity 0.5, half of each layer's prototype weights masked out (docs/method.md §3)."""
    weight_decay: NonNegative = 0.1
    """scripts/st-propetl: weight decay 0.1 (docs/method.md §3); biases and LayerNorms excluded, as for every method."""
    reduction_factor: Count = 16
    """d/16, as every adapter of the paper (docs/method.md §2.1): bottleneck 48 on base models."""

    def _build(self, encoder, head, sources):
        return propetl_model(encoder, head, self.reduction_factor, self.sparsity, self.mask_learning_rate)


def propetl_model(
    encoder, head, reduction_factor: int, sparsity: float, mask_learning_rate: float, tasks: list[str] | None = None
):
    """The prototype, its masks' scores (at their own LR) and the head(s) train; ``tasks``: ProPETL-m."""
    from scalearn.tuners import ProPETL

    config = encoder.config
    tuner = ProPETL(config.hidden_size, config.num_hidden_layers, reduction_factor, sparsity, tasks=tasks)
    model = tuned_model(encoder, head, tuner)
    scores = [name for name, _ in tuner.named_parameters(prefix="tuner") if name.endswith("_scores")]
    model.learning_rates = dict.fromkeys(scores, mask_learning_rate)
    return model
