"""LoRA: a trainable low-rank update of the query and value projections (Hu et al. 2021).

In every layer l, for each target projection W (query and value by default):

    y = W x + b + (α / r) · B A dropout(x)        A ∈ R^{r×d_in}, B ∈ R^{d_out×r}

A starts Kaiming-uniform (a = √5, as nn.Linear and PEFT), B at zero, so a fresh model computes exactly
the frozen encoder. Parameters: L · |targets| · r · (d_in + d_out), i.e. L · 2 · r · (d + d) here.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from scalearn.tuners.base import Tuner
from scalearn.tuners.sites import Linear, attach_linear_sites

TARGETS = ("query", "key", "value")


class LoRA(Tuner):
    kind = "lora"

    def __init__(
        self,
        hidden_size: int,
        num_layers: int,
        rank: int = 8,
        alpha: float = 16.0,
        dropout: float = 0.1,
        targets: Sequence[str] = ("query", "value"),
    ):
        super().__init__()
        if rank < 1:
            raise ValueError(f"LoRA rank must be >= 1, got {rank}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"LoRA dropout must be in [0, 1), got {dropout}")
        unknown = sorted(set(targets) - set(TARGETS))
        if unknown or not targets:
            raise ValueError(f"LoRA targets must be a non-empty subset of {TARGETS}, got {list(targets)}")
        self.hidden_size, self.num_layers = hidden_size, num_layers
        self.rank, self.alpha, self.targets = rank, float(alpha), tuple(targets)
        self.scaling = self.alpha / rank
        self.dropout = nn.Dropout(dropout)
        for target in self.targets:  # attention projections are d → d in every supported family
            self.register_parameter(f"{target}_A", nn.Parameter(torch.empty(num_layers, rank, hidden_size)))
            self.register_parameter(f"{target}_B", nn.Parameter(torch.empty(num_layers, hidden_size, rank)))
        self.reset_parameters()

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
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "rank": self.rank,
            "alpha": self.alpha,
            "dropout": self.dropout.p,
            "targets": list(self.targets),
        }

    def extra_repr(self) -> str:
        return f"targets={list(self.targets)}, r={self.rank}, alpha={self.alpha}, layers={self.num_layers}"
