"""ScaLearn and its three variants: one class, two knobs (docs/method.md §1.3, §4.3)."""

from __future__ import annotations

from typing import ClassVar, Literal

from scalearn.config import Count, Fraction, NonNegative
from scalearn.methods.base import Method, Positive, register


@register("scalearn", shape="vector", shared=False, omega_dropout=0.3)
@register("scalearn_uniform", shape="scalar", shared=False, omega_dropout=0.3)
@register("scalearn_pp", shape="vector", shared=True, omega_dropout=0.3)
@register("scalearn_uniform_pp", shape="scalar", shared=True, omega_dropout=0.0)
class ScaLearnMethod(Method):
    uses_sources = True
    group = "two-stage"

    learning_rate: Positive = 6e-3
    """scripts/scalearn hard-code LR 6e-3 for every variant (docs/method.md §4.3)."""
    patience: Count = 30
    """Patience = number of epochs, i.e. no early stopping, as the scripts (docs/method.md §4.3, §7.1 bug 3)."""
    shape: Literal["vector", "scalar"] = "vector"
    """'vector': ω_s ∈ R^d; 'scalar': ω_s ∈ R (the Uniform variants) (docs/method.md §1.3)."""
    shared: bool = False
    """One ω for all layers (the ++ variants) (docs/method.md §1.3)."""
    omega_dropout: Fraction = 0.3
    """Dropout on ω itself; 0.3, or 0.0 for ScaLearnUniform++ (docs/method.md §1.4)."""
    omega_init_scale: NonNegative = 2.0
    """ω ~ N(init_scale/|S|, 0.001²): the sum over sources starts near 2 (docs/method.md §1.4)."""

    def _build(self, encoder, head, sources):
        from scalearn.model import TransferModel
        from scalearn.transfer import ScaLearn

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


@register("scalearn_lora", shape="vector", shared=False, omega_dropout=0.3)
@register("scalearn_lora_uniform", shape="scalar", shared=False, omega_dropout=0.3)
@register("scalearn_lora_pp", shape="vector", shared=True, omega_dropout=0.3)
@register("scalearn_lora_uniform_pp", shape="scalar", shared=True, omega_dropout=0.0)
class ScaLearnLoRAMethod(ScaLearnMethod):
    """ScaLearn's four variants over frozen source LoRA modules (docs/method.md §1.7; stage 1 is `lora`): each
    source's low-rank update on every projection it adapts, scaled by a learned ω. The paper's settings (LR
    6e-3, no early stopping, ω's init and dropout) carry over unchanged; this project's choice, not tuned."""

    source_method: ClassVar[str] = "lora"

    def _build(self, encoder, head, sources):
        from scalearn.model import TransferModel
        from scalearn.tuners.lora_bank import LoRABank

        bank = LoRABank(
            sources,
            shape=self.shape,
            shared=self.shared,
            dropout=self.omega_dropout,
            init_scale=self.omega_init_scale,
        )
        model = TransferModel(encoder, head, tuner=bank)
        model.set_trainable(model.tuner, model.head)
        return model
