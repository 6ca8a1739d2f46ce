"""Compacter++: a PHM bottleneck adapter after the FFN (docs/method.md §3; Mahabadi et al. 2021)."""

from __future__ import annotations

from scalearn.methods.base import Count, Method, Positive, register
from scalearn.methods.ia3 import tuned_model


@register("compacter_pp")
class CompacterPlusPlus(Method):
    learning_rate: Positive = 3e-3
    """scripts/st-compacter: LR 3e-3, run without fp16 (docs/method.md §3)."""
    reduction_factor: Count = 16
    """`compacter++[reduction_factor=16]`: bottleneck 48 on base models (docs/method.md §3)."""
    phm_dim: Count = 4
    """n = 4 Kronecker summands (adapter-transformers' default; Mahabadi et al. 2021)."""
    phm_rank: Count = 1
    """Rank of each fast matrix B_i = s_i t_i (adapter-transformers' default; Mahabadi et al. 2021)."""

    def _build(self, encoder, head, sources):
        from scalearn.tuners import Compacter

        config = encoder.config
        tuner = Compacter(
            config.hidden_size, config.num_hidden_layers, self.reduction_factor, self.phm_dim, self.phm_rank
        )
        return tuned_model(encoder, head, tuner)
