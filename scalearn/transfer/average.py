"""Fixed-weight mixing of source adapter outputs: z_l = Σ_s w_s · a_l^s with w given, not learned.

Used by the paper's probing experiments (docs/method.md §4.7: one source scaled by a fixed ω, or a grid
of ω pairs for the target's own adapter and MNLI) and by AdapterFusion-free output averaging.
AdapterSoup averages in weight space instead: see ``BottleneckAdapters.averaged``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from scalearn.adapters import BottleneckAdapters
from scalearn.transfer.base import TransferLayer


class FixedMix(TransferLayer):
    kind = "fixed"

    def __init__(self, weights: Sequence[float]):
        super().__init__()
        weights = [float(w) for w in weights]
        if not weights:
            raise ValueError("fixed mixing needs at least one weight")
        self.register_buffer("omega", torch.tensor(weights).unsqueeze(-1))  # [S, 1]

    def forward(self, layer: int, x: torch.Tensor, adapters: BottleneckAdapters) -> torch.Tensor:
        return adapters.combine(layer, adapters.hidden(layer, x), self.omega)

    def config(self) -> dict:
        return {"kind": self.kind, "weights": self.omega.squeeze(-1).tolist()}

    def extra_repr(self) -> str:
        return f"weights={self.omega.squeeze(-1).tolist()}"
