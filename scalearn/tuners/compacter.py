"""Compacter++: a bottleneck adapter after the FFN whose projections are PHM layers (Mahabadi et al. 2021).

The "++" placement is the Pfeiffer one of our adapters (after the FFN only; docs/method.md §1.2, §3): the
adapter reads x = LN(f + h_att) and the layer outputs LN(z + f + h_att), with

    z = up(GELU(down(x)))        down: d → k = d / reduction_factor,  up: k → d

Each projection is a parameterised hypercomplex multiplication (PHM) with n = 4:

    W = Σ_{i=1..n} A_i ⊗ B_i        A_i ∈ R^{n×n},  B_i = s_i t_i ∈ R^{(in/n)×(out/n)},  s_i t_i of rank 1

The "slow" A_i are one [n, n, n] tensor shared by every layer and by both projections; the "fast" s_i,
t_i and the biases belong to each layer and projection. Parameters:

    L · (2·r·(d + k) + k + d) + n³        (29,440 on RoBERTa-base: the paper's "29K", docs/method.md §1.6)

Defaults of adapter-transformers' CompacterPlusPlusConfig (the ScaLearn scripts' library): A ~ N(0, 1e-4²),
biases 0, s and t Glorot-normal per i (its ``init_W`` tests the 'glorot-uniform' setting for truthiness
only, so every setting draws Glorot-normal). The small A makes the fresh adapter's output nearly zero,
but not exactly.
"""

from __future__ import annotations

import torch
from torch import nn

from scalearn.tuners.output_site import OutputSiteTuner


class Compacter(OutputSiteTuner):
    kind = "compacter"
    label = "Compacter++"

    def __init__(
        self,
        hidden_size: int,
        num_layers: int,
        reduction_factor: int = 16,
        phm_dim: int = 4,
        phm_rank: int = 1,
        activation: str = "gelu",
        rule_init_std: float = 1e-4,
    ):
        super().__init__()
        bottleneck = self._bottleneck_setup(hidden_size, num_layers, reduction_factor, activation)
        if hidden_size % phm_dim or bottleneck % phm_dim:
            raise ValueError(
                f"Compacter: phm_dim {phm_dim} must divide the hidden size {hidden_size} and the bottleneck "
                f"{hidden_size}/{reduction_factor} = {bottleneck}; choose a smaller reduction_factor or phm_dim"
            )
        self.phm_dim, self.phm_rank, self.rule_init_std = phm_dim, phm_rank, rule_init_std
        L, n, r, d, k = num_layers, phm_dim, phm_rank, hidden_size, bottleneck
        self.rule = nn.Parameter(torch.empty(n, n, n))  # the shared "slow" A_i
        self.down_left = nn.Parameter(torch.empty(L, n, d // n, r))
        self.down_right = nn.Parameter(torch.empty(L, n, r, k // n))
        self.down_bias = nn.Parameter(torch.empty(L, k))
        self.up_left = nn.Parameter(torch.empty(L, n, k // n, r))
        self.up_right = nn.Parameter(torch.empty(L, n, r, d // n))
        self.up_bias = nn.Parameter(torch.empty(L, d))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Glorot-normal of each [rows, cols] slice: std = √(2 / (rows + cols)), the same for every layer and i.
        for factor in (self.down_left, self.down_right, self.up_left, self.up_right):
            rows, cols = factor.shape[-2:]
            nn.init.normal_(factor, std=(2.0 / (rows + cols)) ** 0.5)
        nn.init.normal_(self.rule, std=self.rule_init_std)
        nn.init.zeros_(self.down_bias)
        nn.init.zeros_(self.up_bias)

    def phm_weight(self, layer: int, projection: str) -> torch.Tensor:
        """W = Σ_i A_i ⊗ (s_i t_i) of one layer's "down" or "up" projection, as [in, out] (x @ W)."""
        left, right = getattr(self, f"{projection}_left")[layer], getattr(self, f"{projection}_right")[layer]
        fast = left @ right  # [n, in/n, out/n]
        n, p, q = fast.shape
        # kron(A_i, B_i)[a·p + b, c·q + e] = A_i[a, c] · B_i[b, e], summed over i
        return torch.einsum("iac,ibe->abce", self.rule, fast).reshape(n * p, n * q)

    def forward(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        """z of one layer from the adapter input x = LN(f + h_att)."""
        hidden = self._activation(x @ self.phm_weight(layer, "down") + self.down_bias[layer])
        return hidden @ self.phm_weight(layer, "up") + self.up_bias[layer]

    def settings(self) -> dict:
        return {"phm_dim": self.phm_dim, "phm_rank": self.phm_rank, "rule_init_std": self.rule_init_std}

    def extra_repr(self) -> str:
        shape = f"layers={self.num_layers}, d={self.hidden_size}, k={self.bottleneck}"
        return f"{shape}, n={self.phm_dim}, r={self.phm_rank}, act={self.activation}"
