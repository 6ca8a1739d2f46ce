"""LoRA: a trainable low-rank update of the query and value projections (Hu et al. 2021).

In every layer l, for each target projection W (query and value by default):

    y = W x + b + (α / r) · B A dropout(x)        A ∈ R^{r×d_in}, B ∈ R^{d_out×r}

A starts Kaiming-uniform (a = √5, as nn.Linear and PEFT), B at zero, so a fresh model computes exactly
the frozen encoder. Parameters: L · Σ_targets r · (d_in + d_out): L · 2 · r · (d + d) on an encoder's query and
value; on a decoder with grouped-query attention the value map is d → n_kv · head_dim, narrower than d.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from scalearn.tuners.base import Tuner
from scalearn.tuners.sites import ROLES, Linear, attach_linear_sites, projection_shape


class LoRA(Tuner):
    kind = "lora"

    def __init__(
        self,
        shapes: Mapping[str, tuple[int, int]],
        num_layers: int,
        rank: int = 8,
        alpha: float = 16.0,
        dropout: float = 0.1,
    ):
        """``shapes``: target projection → (d_in, d_out), as ``for_encoder`` reads them off the model."""
        super().__init__()
        if rank < 1:
            raise ValueError(f"LoRA rank must be >= 1, got {rank}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"LoRA dropout must be in [0, 1), got {dropout}")
        unknown = sorted(set(shapes) - set(ROLES))
        if unknown or not shapes:
            raise ValueError(f"LoRA targets must be a non-empty subset of {ROLES}, got {list(shapes)}")
        self.shapes = {target: (int(d_in), int(d_out)) for target, (d_in, d_out) in shapes.items()}
        self.num_layers, self.targets = num_layers, tuple(self.shapes)
        self.rank, self.alpha = rank, float(alpha)
        self.scaling = self.alpha / rank
        self.dropout = nn.Dropout(dropout)
        for target, (d_in, d_out) in self.shapes.items():
            self.register_parameter(f"{target}_A", nn.Parameter(torch.empty(num_layers, rank, d_in)))
            self.register_parameter(f"{target}_B", nn.Parameter(torch.empty(num_layers, d_out, rank)))
        self.reset_parameters()

    @classmethod
    def for_encoder(cls, encoder: nn.Module, targets: Sequence[str] = ("query", "value"), **settings) -> LoRA:
        """LoRA on ``targets`` of this model, each A and B shaped to its projection."""
        shapes = {target: projection_shape(encoder, target) for target in targets}
        return cls(shapes, encoder.config.num_hidden_layers, **settings)

    def reset_parameters(self) -> None:
        for target in self.targets:
            A, B = getattr(self, f"{target}_A"), getattr(self, f"{target}_B")
            for layer in range(self.num_layers):  # per layer: the fan-in is d_in, not L·r·d_in
                nn.init.kaiming_uniform_(A[layer], a=math.sqrt(5))
            nn.init.zeros_(B)

    def attach(self, encoder: nn.Module, output_sites: list[nn.Module]) -> None:
        for target in self.targets:
            attach_linear_sites(encoder, target, functools.partial(self._edit, target))

    def _edit(self, target: str, layer: int, x: torch.Tensor, linear: Linear) -> torch.Tensor:
        A, B = getattr(self, f"{target}_A")[layer], getattr(self, f"{target}_B")[layer]
        return linear(x) + F.linear(F.linear(self.dropout(x), A), B) * self.scaling

    def delta_weight(self, target: str, layer: int) -> torch.Tensor:
        """(α / r) · B A: what merging the update into W would add (for tests and export)."""
        return self.scaling * getattr(self, f"{target}_B")[layer] @ getattr(self, f"{target}_A")[layer]

    def config(self) -> dict:
        return {
            "kind": self.kind,
            "shapes": {target: list(shape) for target, shape in self.shapes.items()},
            "num_layers": self.num_layers,
            "rank": self.rank,
            "alpha": self.alpha,
            "dropout": self.dropout.p,
        }

    def extra_repr(self) -> str:
        return f"targets={list(self.targets)}, r={self.rank}, alpha={self.alpha}, layers={self.num_layers}"
