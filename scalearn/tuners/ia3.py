"""(IA)³: learned vectors that rescale the attention keys and values and the FFN activation (Liu et al. 2022).

In every layer l, with the encoder's own frozen projections:

    K = l_k ⊙ (W_k h + b_k)        V = l_v ⊙ (W_v h + b_v)        FFN(h) = W_2 (l_ff ⊙ γ(W_1 h)) + b_2

l_k, l_v ∈ R^{d_kv} and l_ff ∈ R^{d_ff} start at ones, so a fresh model computes exactly the frozen encoder.
Parameters: L · (2·d_kv + d_ff), with d_kv = d on the encoders and n_kv · head_dim on a decoder with
grouped-query attention. On a decoder l_ff scales the gated activation act(W_gate n) ⊙ W_up n, the input
of down_proj, as PEFT's (IA)³ does for Llama.

l_ff scales the activation γ(W_1 h), as in the (IA)³ paper (equivalently, the input of W_2).
adapter-transformers' IA3Config, which the ScaLearn scripts may have used, scales W_1's output before
γ instead; the parameter count is the same.
"""

from __future__ import annotations

import torch
from torch import nn

from scalearn.tuners.base import Tuner
from scalearn.tuners.sites import Linear, attach_linear_sites


class IA3(Tuner):
    kind = "ia3"

    def __init__(self, hidden_size: int, intermediate_size: int, num_layers: int, kv_size: int | None = None):
        super().__init__()
        self.hidden_size, self.intermediate_size, self.num_layers = hidden_size, intermediate_size, num_layers
        self.kv_size = hidden_size if kv_size is None else kv_size
        self.key_scale = nn.Parameter(torch.ones(num_layers, self.kv_size))
        self.value_scale = nn.Parameter(torch.ones(num_layers, self.kv_size))
        self.ffn_scale = nn.Parameter(torch.ones(num_layers, intermediate_size))

    def reset_parameters(self) -> None:
        for scale in (self.key_scale, self.value_scale, self.ffn_scale):
            nn.init.ones_(scale)

    def attach(self, encoder: nn.Module, output_sites: list[nn.Module]) -> None:
        attach_linear_sites(encoder, "key", self._key)
        attach_linear_sites(encoder, "value", self._value)
        attach_linear_sites(encoder, "ffn_out", self._ffn)

    # Scales are cast to the activations' dtype so that under autocast K and V keep Q's half precision.
    def _key(self, layer: int, x: torch.Tensor, linear: Linear) -> torch.Tensor:
        keys = linear(x)
        return keys * self.key_scale[layer].to(keys.dtype)

    def _value(self, layer: int, x: torch.Tensor, linear: Linear) -> torch.Tensor:
        values = linear(x)
        return values * self.value_scale[layer].to(values.dtype)

    def _ffn(self, layer: int, x: torch.Tensor, linear: Linear) -> torch.Tensor:
        return linear(x * self.ffn_scale[layer].to(x.dtype))

    def config(self) -> dict:
        return {
            "kind": self.kind,
            "hidden_size": self.hidden_size,
            "kv_size": self.kv_size,
            "intermediate_size": self.intermediate_size,
            "num_layers": self.num_layers,
        }

    def extra_repr(self) -> str:
        return f"layers={self.num_layers}, d={self.hidden_size}, d_ff={self.intermediate_size}"
