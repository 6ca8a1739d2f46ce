"""AdapterFusion, "dynamic" configuration (Pfeiffer et al. 2021; reference §2.2).

Per layer: q = W_Q x + b_Q on the post-LN hidden state x; k_s = W_K a_s + b_K and v_s = W_V a_s for
every source output a_s; attention p = softmax_s(dropout(q·k_s)); z = Σ_s p_s v_s. W_V has no bias
and starts at the identity (off-diagonals 1e-6); W_Q, W_K start at N(0, 0.02) with zero biases.

The direct form projects every source with K and V: 2·S·d² multiply-adds per token. This module
computes the same numbers without doing so, using two identities:

* q·(W_K a_s + b_K) = (W_Kᵀ q)·a_s + q·b_K: the scores need one d×d product (W_Kᵀ q) per token, not
  S of them. (q·b_K is the same for every s and would cancel in the softmax, were it not for the
  dropout on the scores, which scales kept and dropped entries differently; it costs one dot product
  per token, so it is kept and the result is exact in training too.)
* W_V is linear, so Σ_s p_s W_V a_s = W_V Σ_s p_s a_s: V acts once, on the mixed output.

With a_s = h_s U_s + c_s (the bank's bottleneck activations h_s and up-projections U_s), both the
scores and the mixture reduce to one matmul with the concatenated up-projection. The per-source form
lives in ``scalearn.reference`` and the tests hold the two equal.

The value regulariser 0.01·Σ_l‖I − W_V‖²_F is returned by :meth:`regularization_loss` and added to
the loss of the same step by the training loop (the original adds it one step late; §7.1, bug 2).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from scalearn.adapters import BottleneckAdapters


class AdapterFusion(nn.Module):
    kind = "fusion"

    def __init__(
        self,
        hidden_size: int,
        num_layers: int,
        dropout: float = 0.1,
        temperature: float = 1.0,
        reg_weight: float = 0.01,
        init_std: float = 0.02,
    ):
        super().__init__()
        self.hidden_size, self.num_layers = hidden_size, num_layers
        self.dropout, self.temperature, self.reg_weight, self.init_std = (
            dropout,
            temperature,
            reg_weight,
            init_std,
        )
        self.query = nn.ModuleList(nn.Linear(hidden_size, hidden_size) for _ in range(num_layers))
        self.key = nn.ModuleList(nn.Linear(hidden_size, hidden_size) for _ in range(num_layers))
        self.value = nn.ModuleList(nn.Linear(hidden_size, hidden_size, bias=False) for _ in range(num_layers))
        self.record_attention = False
        self.attention: dict[int, torch.Tensor] = {}
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        for linear in [*self.query, *self.key]:
            nn.init.normal_(linear.weight, std=self.init_std)
            nn.init.zeros_(linear.bias)
        for linear in self.value:
            linear.weight.fill_(1e-6)
            linear.weight.fill_diagonal_(1.0)

    def forward(self, layer: int, x: torch.Tensor, adapters: BottleneckAdapters) -> torch.Tensor:
        S, r, d = adapters.num_adapters, adapters.config.bottleneck, self.hidden_size
        hidden = adapters.hidden(layer, x)  # [..., S·r]
        up_weight = adapters.up_weight[layer].reshape(S * r, d)  # rows of source s: s·r … s·r+r-1
        up_bias = adapters.up_bias[layer]  # [S, d]

        query = self.query[layer](x)
        key_query = query @ self.key[layer].weight  # (W_Kᵀ q)ᵀ, [..., d]
        scores = (hidden * (key_query @ up_weight.T)).unflatten(-1, (S, r)).sum(-1)
        scores = scores + key_query @ up_bias.T + (query * self.key[layer].bias).sum(-1, keepdim=True)
        scores = F.dropout(scores, self.dropout, self.training)
        probs = torch.softmax(scores / self.temperature, dim=-1)  # [..., S]
        if self.record_attention:
            self.attention[layer] = probs.detach().reshape(-1, S).mean(0)

        weighted_hidden = (hidden.unflatten(-1, (S, r)) * probs.unsqueeze(-1)).flatten(-2)
        mixed = weighted_hidden @ up_weight + probs @ up_bias  # Σ_s p_s a_s
        return self.value[layer](mixed)

    def regularization_loss(self) -> torch.Tensor:
        """reg_weight · Σ_l ‖I − W_V,l‖²_F."""
        eye = torch.eye(self.hidden_size, device=self.value[0].weight.device, dtype=self.value[0].weight.dtype)
        return self.reg_weight * sum((eye - v.weight).pow(2).sum() for v in self.value)

    def config(self) -> dict:
        return {
            "kind": self.kind,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "dropout": self.dropout,
            "temperature": self.temperature,
            "reg_weight": self.reg_weight,
            "init_std": self.init_std,
        }
