"""Pfeiffer bottleneck adapters, stored stacked: every layer × every adapter in four tensors.

One class serves both stages. Stage 1 trains a single adapter (``num_adapters=1``); stage 2 holds the
frozen source adapters of a benchmark (the *source bank*) and runs them as one batched operation per
layer: one matmul for all down-projections, one for all up-projections, whatever the number of sources.

For a layer l and adapter s (docs/method.md §1.2, §2.1):

    a_l^s = W_up^s · ReLU(W_down^s · x_l + b_down^s) + b_up^s

A weighted sum Σ_s ω_s ⊙ a_s (ScaLearn, fixed mixing) folds the weights into the up-projection:
Σ_s (h_s W_up^s) ⊙ ω_s = [h_1 … h_S] · [W_up^1 ⊙ ω_1; …; W_up^S ⊙ ω_S], so the whole bank costs two
dense matmuls per layer instead of S small ones plus a stacked sum.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn


def gelu_new(x: torch.Tensor) -> torch.Tensor:
    """GELU with the tanh approximation (transformers' "gelu_new"; HyperFormer's adapters)."""
    return nn.functional.gelu(x, approximate="tanh")


ACTIVATIONS = {"relu": torch.relu, "gelu": nn.functional.gelu, "gelu_new": gelu_new, "tanh": torch.tanh}


@dataclass(frozen=True)
class AdapterConfig:
    """Shape of a bottleneck adapter; defaults from the paper."""

    hidden_size: int
    """d, the encoder's hidden size."""
    num_layers: int
    """L, one adapter per transformer layer."""
    reduction_factor: int = 16
    """d / bottleneck; 16 in every adapter-based model of the paper (docs/method.md §2.1)."""
    activation: str = "relu"
    """Pfeiffer config of adapter-transformers: ReLU (docs/method.md §2.1)."""
    init_std: float = 0.02
    """'bert' init: weights ~ N(0, 0.02), biases 0 (docs/method.md §2.1)."""

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"adapter activation {self.activation!r} unknown; choose one of {sorted(ACTIVATIONS)}")
        if self.reduction_factor < 1 or self.reduction_factor > self.hidden_size:
            raise ValueError(f"reduction_factor must be in [1, hidden_size={self.hidden_size}]")

    @property
    def bottleneck(self) -> int:
        return self.hidden_size // self.reduction_factor

    def num_parameters(self) -> int:
        """Parameters of one adapter over all layers: L · (2·d·r + r + d)."""
        d, r = self.hidden_size, self.bottleneck
        return self.num_layers * (2 * d * r + r + d)

    def to_dict(self) -> dict:
        return asdict(self)


class BottleneckAdapters(nn.Module):
    """``num_adapters`` bottleneck adapters for every layer of an encoder, held as stacked tensors.

    Layout (math convention, ``x @ W``):
      down_weight [L, d, S·r]  the S down-projections side by side
      down_bias   [L, S·r]
      up_weight   [L, S, r, d]
      up_bias     [L, S, d]
    """

    def __init__(self, config: AdapterConfig, num_adapters: int = 1, names: Sequence[str] | None = None):
        super().__init__()
        if num_adapters < 1:
            raise ValueError("num_adapters must be >= 1")
        if names is not None and len(names) != num_adapters:
            raise ValueError(f"got {len(names)} names for {num_adapters} adapters")
        self.config = config
        self.num_adapters = num_adapters
        self.names = list(names) if names is not None else [f"adapter_{i}" for i in range(num_adapters)]
        L, d, r, S = config.num_layers, config.hidden_size, config.bottleneck, num_adapters
        self.down_weight = nn.Parameter(torch.empty(L, d, S * r))
        self.down_bias = nn.Parameter(torch.empty(L, S * r))
        self.up_weight = nn.Parameter(torch.empty(L, S, r, d))
        self.up_bias = nn.Parameter(torch.empty(L, S, d))
        self._activation = ACTIVATIONS[config.activation]
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.down_weight, std=self.config.init_std)
        nn.init.normal_(self.up_weight, std=self.config.init_std)
        nn.init.zeros_(self.down_bias)
        nn.init.zeros_(self.up_bias)

    # -- the per-layer computation -------------------------------------------------------------

    def hidden(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        """Bottleneck activations of every adapter, side by side: [..., S·r]."""
        flat = torch.addmm(self.down_bias[layer], x.reshape(-1, x.shape[-1]), self.down_weight[layer])
        return self._activation(flat).reshape(*x.shape[:-1], flat.shape[-1])

    def combine(self, layer: int, hidden: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """Σ_s w_s ⊙ a_s from the bottleneck activations, as one matmul.

        ``weights`` is [S, d] (one vector per adapter), [S, 1] (one scalar per adapter) or None (plain
        sum, i.e. the adapter's own output when S = 1).
        """
        up_weight, up_bias = self.up_weight[layer], self.up_bias[layer]  # [S, r, d], [S, d]
        if weights is not None:
            up_weight = up_weight * weights.unsqueeze(1)
            up_bias = up_bias * weights
        S, r, d = up_weight.shape
        flat = hidden.reshape(-1, S * r)
        out = torch.addmm(up_bias.sum(0), flat, up_weight.reshape(S * r, d))
        return out.reshape(*hidden.shape[:-1], d)

    def outputs(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        """Every adapter's up output a_s, stacked: [..., S, d]. For analysis and reference code."""
        S, r = self.num_adapters, self.config.bottleneck
        hidden = self.hidden(layer, x).reshape(*x.shape[:-1], S, r)
        return torch.einsum("...sr,srd->...sd", hidden, self.up_weight[layer]) + self.up_bias[layer]

    # -- moving single adapters in and out ---------------------------------------------------------

    def adapter_state(self, index: int) -> dict[str, torch.Tensor]:
        """One adapter's tensors in nn.Linear convention, stacked over layers.

        Keys: down.weight [L, r, d], down.bias [L, r], up.weight [L, d, r], up.bias [L, d].
        """
        r = self.config.bottleneck
        cols = slice(index * r, (index + 1) * r)
        return {
            "down.weight": self.down_weight[:, :, cols].transpose(1, 2).contiguous(),
            "down.bias": self.down_bias[:, cols].contiguous(),
            "up.weight": self.up_weight[:, index].transpose(1, 2).contiguous(),
            "up.bias": self.up_bias[:, index].contiguous(),
        }

    @torch.no_grad()
    def load_adapter_state(self, index: int, state: dict[str, torch.Tensor]) -> None:
        """Inverse of :meth:`adapter_state`; shapes are checked."""
        expected = {k: tuple(v.shape) for k, v in self.adapter_state(index).items()}
        got = {k: tuple(v.shape) for k, v in state.items()}
        if got != expected:
            raise ValueError(f"adapter tensors do not fit this encoder: expected {expected}, got {got}")
        r = self.config.bottleneck
        cols = slice(index * r, (index + 1) * r)
        self.down_weight[:, :, cols] = state["down.weight"].transpose(1, 2)
        self.down_bias[:, cols] = state["down.bias"]
        self.up_weight[:, index] = state["up.weight"].transpose(1, 2)
        self.up_bias[:, index] = state["up.bias"]

    @classmethod
    def stack(
        cls,
        config: AdapterConfig,
        states: Sequence[dict[str, torch.Tensor]],
        names: Sequence[str] | None = None,
    ) -> BottleneckAdapters:
        """A bank of adapters from single-adapter states (e.g. the stage-1 artifacts of a benchmark)."""
        bank = cls(config, num_adapters=len(states), names=names)
        for index, state in enumerate(states):
            bank.load_adapter_state(index, state)
        return bank

    @torch.no_grad()
    def averaged(self, weights: Sequence[float] | torch.Tensor) -> BottleneckAdapters:
        """A single adapter whose parameters are Σ_s w_s θ_s (AdapterSoup's weight-space average)."""
        w = torch.as_tensor(weights, dtype=self.up_weight.dtype, device=self.up_weight.device)
        if w.shape != (self.num_adapters,):
            raise ValueError(f"need {self.num_adapters} averaging weights, got shape {tuple(w.shape)}")
        L, d, r, S = (
            self.config.num_layers,
            self.config.hidden_size,
            self.config.bottleneck,
            self.num_adapters,
        )
        soup = BottleneckAdapters(self.config, 1, names=["soup"]).to(self.up_weight.device, self.up_weight.dtype)
        soup.down_weight.copy_(torch.einsum("ldsr,s->ldr", self.down_weight.reshape(L, d, S, r), w))
        soup.down_bias.copy_(torch.einsum("lsr,s->lr", self.down_bias.reshape(L, S, r), w))
        soup.up_weight.copy_(torch.einsum("lsrd,s->lrd", self.up_weight, w).unsqueeze(1))
        soup.up_bias.copy_(torch.einsum("lsd,s->ld", self.up_bias, w).unsqueeze(1))
        return soup

    def extra_repr(self) -> str:
        c = self.config
        shape = f"layers={c.num_layers}, adapters={self.num_adapters}, d={c.hidden_size}, r={c.bottleneck}"
        return f"{shape}, act={c.activation}"
