"""Compacter++: a PHM bottleneck adapter after the FFN (reference §3; Mahabadi et al. 2021)."""

from __future__ import annotations

from dataclasses import dataclass

from scalearn.methods.base import Method, register
from scalearn.model import TransferModel
from scalearn.tuners import Compacter


@register("compacter_pp")
@dataclass
class CompacterPlusPlus(Method):
    learning_rate: float = 3e-3
    """scripts/st-compacter: LR 3e-3, run without fp16 (reference §3)."""
    reduction_factor: int = 16
    """`compacter++[reduction_factor=16]`: bottleneck 48 on base models (reference §3)."""
    phm_dim: int = 4
    """n = 4 Kronecker summands (adapter-transformers' default; Mahabadi et al. 2021)."""
    phm_rank: int = 1
    """Rank of each fast matrix B_i = s_i t_i (adapter-transformers' default; Mahabadi et al. 2021)."""

    def _build(self, encoder, head, sources):
        config = encoder.config
        tuner = Compacter(
            config.hidden_size, config.num_hidden_layers, self.reduction_factor, self.phm_dim, self.phm_rank
        )
        model = TransferModel(encoder, head, tuner=tuner)
        model.set_trainable(model.tuner, model.head)
        return model
