"""ScaLearn and its three variants: one class, two knobs (reference §1.3, §4.3)."""

from __future__ import annotations

from dataclasses import dataclass

from scalearn.methods.base import Method, register
from scalearn.model import TransferModel
from scalearn.transfer import ScaLearn


@register("scalearn", shape="vector", shared=False, omega_dropout=0.3)
@register("scalearn_uniform", shape="scalar", shared=False, omega_dropout=0.3)
@register("scalearn_pp", shape="vector", shared=True, omega_dropout=0.3)
@register("scalearn_uniform_pp", shape="scalar", shared=True, omega_dropout=0.0)
@dataclass
class ScaLearnMethod(Method):
    uses_sources = True
    group = "two-stage"

    learning_rate: float = 6e-3
    """scripts/scalearn hard-code LR 6e-3 for every variant (reference §4.3)."""
    patience: int = 30
    """Patience = number of epochs, i.e. no early stopping, as the scripts (reference §4.3, §7.1 bug 3)."""
    shape: str = "vector"
    """'vector': ω_s ∈ R^d; 'scalar': ω_s ∈ R (the Uniform variants) (reference §1.3)."""
    shared: bool = False
    """One ω for all layers (the ++ variants) (reference §1.3)."""
    omega_dropout: float = 0.3
    """Dropout on ω itself; 0.3, or 0.0 for ScaLearnUniform++ (reference §1.4)."""
    omega_init_scale: float = 2.0
    """ω ~ N(init_scale/|S|, 0.001²): the sum over sources starts near 2 (reference §1.4)."""

    def _build(self, encoder, head, sources):
        config = sources.config
        scalearn = ScaLearn(
            sources.num_adapters,
            config.hidden_size,
            config.num_layers,
            shape=self.shape,
            shared=self.shared,
            dropout=self.omega_dropout,
            init_scale=self.omega_init_scale,
        )
        model = TransferModel(encoder, head, sources, scalearn, adapter_role="sources")
        model.set_trainable(model.transfer, model.head)
        return model
