"""ScaLearn: learn to scale the outputs of frozen source adapters (docs/method.md §1.2–§1.4).

z_l = Σ_s ω̃_l^s ⊙ a_l^s, then the layer output is LN_l(z_l + f + h_att). The four variants of the paper
are one module with two knobs:

| variant            | shape    | shared over layers | ω dropout | parameters |
|--------------------|----------|--------------------|-----------|------------|
| ScaLearn           | "vector" | no                 | 0.3       | S·d·L      |
| ScaLearnUniform    | "scalar" | no                 | 0.3       | S·L        |
| ScaLearn++         | "vector" | yes                | 0.3       | S·d        |
| ScaLearnUniform++  | "scalar" | yes                | 0.0       | S          |

ω is unconstrained (no softmax, no normalisation, no bias) and starts at N(init_scale/S, 0.001²).
Dropout acts on ω itself, one mask per layer and forward pass, shared over batch and tokens; the
layer-shared variants draw their own mask in every layer, as the original code does.

The original code keeps the shared ω of the ++ variants outside the checkpointed state, so its
best-epoch restore and its final save lose them (docs/method.md §7.1, bug 1). Here ω is an ordinary
parameter of this module in every variant, so saving and restoring it needs nothing special.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from scalearn.adapters import BottleneckAdapters
from scalearn.transfer.base import TransferLayer

OmegaShape = Literal["vector", "scalar"]


def check_omega(shape: str, dropout: float) -> None:
    """ScaLearn's two knobs and ω dropout, checked (the LoRA-source bank takes the same)."""
    if shape not in ("vector", "scalar"):
        raise ValueError(f"omega shape must be 'vector' or 'scalar', got {shape!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"omega dropout must be in [0, 1), got {dropout}")


def omega_dropout(omega: torch.Tensor, dropout: float, training: bool) -> torch.Tensor:
    """Dropout on ω itself (docs/method.md §1.4): one mask per layer and forward pass."""
    return F.dropout(omega, dropout, training) if dropout > 0 else omega


class ScaLearn(TransferLayer):
    kind = "scalearn"

    def __init__(
        self,
        num_sources: int,
        hidden_size: int,
        num_layers: int,
        shape: OmegaShape = "vector",
        shared: bool = False,
        dropout: float = 0.3,
        init_scale: float = 2.0,
        init_std: float = 0.001,
    ):
        super().__init__()
        check_omega(shape, dropout)
        self.num_sources, self.hidden_size, self.num_layers = num_sources, hidden_size, num_layers
        self.shape, self.shared, self.dropout = shape, shared, dropout
        self.init_scale, self.init_std = init_scale, init_std
        rows = 1 if shared else num_layers
        cols = hidden_size if shape == "vector" else 1
        self.omega = nn.Parameter(torch.empty(rows, num_sources, cols))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.omega, mean=self.init_scale / self.num_sources, std=self.init_std)

    def weights(self, layer: int) -> torch.Tensor:
        """ω̃ for one layer: [S, d] or [S, 1], with dropout applied while training."""
        return omega_dropout(self.omega[0 if self.shared else layer], self.dropout, self.training)

    def forward(self, layer: int, x: torch.Tensor, adapters: BottleneckAdapters) -> torch.Tensor:
        return adapters.combine(layer, adapters.hidden(layer, x), self.weights(layer))

    def config(self) -> dict:
        return {
            "kind": self.kind,
            "num_sources": self.num_sources,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "shape": self.shape,
            "shared": self.shared,
            "dropout": self.dropout,
            "init_scale": self.init_scale,
            "init_std": self.init_std,
        }

    def extra_repr(self) -> str:
        return f"sources={self.num_sources}, shape={self.shape}, shared={self.shared}, dropout={self.dropout}"
