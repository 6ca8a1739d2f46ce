"""AdapterFusion, "dynamic" configuration (Pfeiffer et al. 2021; docs/method.md §2.2).

Per layer: q = W_Q x + b_Q on the post-LN hidden state x; k_s = W_K a_s + b_K and v_s = W_V a_s for
every source output a_s; attention p = softmax_s(dropout(q·k_s)); z = Σ_s p_s v_s. W_V has no bias
and starts at the identity (off-diagonals 1e-6); W_Q, W_K start at N(0, 0.02) with zero biases.

The direct form projects every source with K and V: 2·S·d² multiply-adds per token, plus d² for
Q. This module computes the same numbers with no d×d product per token at all. In row form, with the
bank's bottleneck activations h_s and up-projections a_s = h_s U_s + c_s:

* scores: q·k_s = (x W_Qᵀ + b_Q) W_K a_sᵀ + q·b_K. With A = W_Qᵀ W_K and β = b_Q W_K this is
  h_s·(x A U_sᵀ + β U_sᵀ) + (x A + β)·c_s + x W_Qᵀ b_K + b_Q·b_K, i.e. one matmul of x with
  P = [A U_catᵀ | A cᵀ | W_Qᵀ b_K] (d × (S·r + S + 1)), built once per layer and step.
* mixture: W_V is linear, so Σ_s p_s W_V a_s = [p⊗h | p] · [U_cat W_Vᵀ ; c W_Vᵀ]: V folds into the
  up-projection.

Per token that is the cost of the source bank itself (two matmuls of width S·r); per layer and step
it adds d³ + 2·S·r·d² for the weight products. Dropout on the scores and the softmax are unchanged,
so the result equals the per-source form in training too. That form lives in ``scalearn.reference``
and the tests hold the two equal.

The value regulariser 0.01·Σ_l‖I − W_V‖²_F is returned by :meth:`regularization_loss` and added to
the loss of the same step by the training loop (the original adds it one step late; §7.1, bug 2).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from scalearn.adapters import BottleneckAdapters
from scalearn.transfer.base import TransferLayer


class AdapterFusion(TransferLayer):
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
        self.record_attention = False  # while on, forward passes add to the per-layer attention sums
        self.attention: dict[int, torch.Tensor] = {}  # layer → Σ over tokens of the softmax over sources [S]
        self.attention_tokens: dict[int, int] = {}
        self.real_tokens: torch.Tensor | None = None  # while recording: which of the batch's N·T tokens are real
        # ‖I − W_V,l‖² of each layer, taken in its forward: under ZeRO-3 W_V is whole only there
        self.value_terms: dict[int, torch.Tensor] = {}
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
        query, key, value = self.query[layer], self.key[layer], self.value[layer]
        up_weight = adapters.up_weight[layer].reshape(S * r, d)  # U_cat; rows of source s: s·r … s·r+r-1
        up_bias = adapters.up_bias[layer]  # c, [S, d]

        # scores = h ⊙ (x P + π) summed per source, + the per-source and constant columns
        a = query.weight.T @ key.weight  # A = W_Qᵀ W_K
        beta = query.bias @ key.weight  # β = b_Q W_K
        up_all = torch.cat([up_weight, up_bias])  # [S·r + S, d]
        projection = torch.cat([a @ up_all.T, (query.weight.T @ key.bias).unsqueeze(1)], dim=1)
        offset = torch.cat([beta @ up_all.T, (query.bias @ key.bias).unsqueeze(0)])
        flat_x = x.reshape(-1, d)
        projected = torch.addmm(offset, flat_x, projection)  # [N, S·r + S + 1]
        hidden = adapters.hidden(layer, x).reshape(-1, S * r)
        scores = (hidden * projected[:, : S * r]).unflatten(-1, (S, r)).sum(-1)
        scores = scores + projected[:, S * r : S * r + S] + projected[:, -1:]

        scores = F.dropout(scores, self.dropout, self.training)
        probs = torch.softmax(scores / self.temperature, dim=-1)  # [N, S]
        if self.record_attention:
            real = probs.detach().float()
            if self.real_tokens is not None:
                if self.real_tokens.numel() != real.shape[0]:
                    raise ValueError(f"a mask of {self.real_tokens.numel()} tokens for a layer of {real.shape[0]}")
                real = real[self.real_tokens]
            self.attention[layer] = self.attention.get(layer, 0) + real.sum(0)
            self.attention_tokens[layer] = self.attention_tokens.get(layer, 0) + real.shape[0]

        if self.training and torch.is_grad_enabled():
            self.value_terms[layer] = _distance_from_identity(value.weight)
        weighted = torch.cat([(hidden.unflatten(-1, (S, r)) * probs.unsqueeze(-1)).flatten(-2), probs], dim=1)
        mixed = weighted @ (up_all @ value.weight.T)  # Σ_s p_s W_V a_s
        return mixed.reshape(*x.shape[:-1], d)

    def start_recording(self) -> None:
        self.record_attention, self.attention, self.attention_tokens = True, {}, {}

    def stop_recording(self) -> None:
        self.record_attention, self.real_tokens = False, None

    def see_mask(self, mask: torch.Tensor | None) -> None:
        if self.record_attention:
            self.real_tokens = None if mask is None else mask.reshape(-1).to(torch.bool)

    def recorded(self) -> dict | None:
        """The attention over the sources per layer, averaged over every real token recorded."""
        return {"mean_attention": self.mean_attention()} if self.attention else None

    def mean_attention(self) -> list[list[float]]:
        """[L][S]: the recorded attention per source, averaged over the real tokens seen (padding left out)."""
        return [(self.attention[layer] / self.attention_tokens[layer]).tolist() for layer in sorted(self.attention)]

    def regularization_loss(self) -> torch.Tensor:
        """reg_weight · Σ_l ‖I − W_V,l‖²_F: of the terms the last training forward took (and gave up), else taken
        now."""
        if len(self.value_terms) == self.num_layers:
            terms, self.value_terms = [self.value_terms[layer] for layer in range(self.num_layers)], {}
        else:
            self.value_terms = {}
            terms = [_distance_from_identity(v.weight) for v in self.value]
        return self.reg_weight * sum(terms)

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


def _distance_from_identity(weight: torch.Tensor) -> torch.Tensor:
    """‖I − W‖²_F."""
    eye = torch.eye(weight.shape[0], device=weight.device, dtype=weight.dtype)
    return (eye - weight).pow(2).sum()
