"""ScaLearn over LoRA sources (this project, not in the paper; docs/method.md §1.7): the frozen low-rank updates of
S source LoRA modules, each scaled by a learned ω, on every projection they adapt.

For a target projection W in layer l and sources s = 1 … S, each with its rank r_s, scale c_s = α_s / r_s and
frozen A_s ∈ R^{r_s×d_in}, B_s ∈ R^{d_out×r_s}:

    y = W x + b + Σ_s ω̃_l^s ⊙ (c_s · B_s A_s x)

ω̃ is ScaLearn's: a vector in R^{d_out} or a scalar per source, per layer or shared over layers, with dropout on
ω itself (docs/method.md §1.3, §1.4); ω starts at N(init_scale / S, 0.001²). Each target projection has its
own ω, so on query and value the counts are twice ScaLearn's on the adapters' output (vector: 2·S·d·L).
LoRA Soups' CAT (arXiv 2410.13025) is the closest published relative: a learned scalar per LoRA and layer.

Batched, as the bottleneck bank: the sources' A are one [R, d_in] matrix (R = Σ r_s), and ω folds into the
columns of the concatenated c_s B_s, so a layer costs two matmuls whatever S is; no loop over sources runs in
the forward pass (``per_source`` is the reference the tests compare against).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from scalearn.transfer.scalearn import check_omega, omega_dropout
from scalearn.tuners.base import Tuner
from scalearn.tuners.sites import Linear, attach_linear_sites, projection_shape


@dataclass
class LoRASources:
    """The frozen source LoRA modules of a transfer trial, in order (the target's own last): each a LoRA
    config (LoRA.config()) and its stacked tensors (``<role>_A`` [L, r, d_in], ``<role>_B`` [L, d_out, r])."""

    configs: list[dict]
    tensors: list[dict[str, torch.Tensor]]
    names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.configs or len(self.configs) != len(self.tensors):
            raise ValueError("LoRA sources need one config and one tensor set per source, at least one")
        self.names = list(self.names) or [f"source{i}" for i in range(len(self.configs))]
        first = self.configs[0]
        for name, config in zip(self.names, self.configs, strict=True):
            if config["shapes"] != first["shapes"] or config["num_layers"] != first["num_layers"]:
                raise ValueError(
                    f"LoRA source {name!r} adapts {config['shapes']} in {config['num_layers']} layers; the first "
                    f"adapts {first['shapes']} in {first['num_layers']}: the sources must adapt the same projections"
                )

    @property
    def num_sources(self) -> int:
        return len(self.configs)

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(self.configs[0]["shapes"])

    @property
    def num_layers(self) -> int:
        return int(self.configs[0]["num_layers"])

    @classmethod
    def random(cls, encoder: nn.Module, num_sources: int, targets=("query", "value"), rank: int = 8, seed: int = 0):
        """Sources with random A and B (as if trained), for tests and config-only counts (on the meta device)."""
        shapes = {target: list(projection_shape(encoder, target)) for target in targets}
        layers = encoder.config.num_hidden_layers
        generator = torch.Generator().manual_seed(seed)
        configs, tensors = [], []
        meta = any(p.is_meta for p in encoder.parameters())
        for _ in range(num_sources):
            configs.append({"kind": "lora", "shapes": shapes, "num_layers": layers, "rank": rank, "alpha": 16.0})
            state = {}
            for target, (d_in, d_out) in shapes.items():
                for key, shape in ((f"{target}_A", (layers, rank, d_in)), (f"{target}_B", (layers, d_out, rank))):
                    if meta:
                        state[key] = torch.empty(shape, device="meta")
                    else:
                        state[key] = torch.randn(shape, generator=generator) * 0.1
            tensors.append(state)
        return cls(configs, tensors)


class LoRABank(Tuner):
    kind = "scalearn_lora"

    def __init__(
        self,
        sources: LoRASources,
        shape: Literal["vector", "scalar"] = "vector",
        shared: bool = False,
        dropout: float = 0.3,
        init_scale: float = 2.0,
        init_std: float = 0.001,
    ):
        super().__init__()
        check_omega(shape, dropout)
        self.num_sources, self.num_layers, self.targets = sources.num_sources, sources.num_layers, sources.targets
        self.shapes = {target: tuple(sources.configs[0]["shapes"][target]) for target in self.targets}
        self.shape, self.shared, self.dropout = shape, shared, dropout
        self.init_scale, self.init_std = init_scale, init_std
        self.names = list(sources.names)
        # called as observer(target, layer, x, linear, out) after each edit while set (scalearn.source_scale)
        self.observer = None
        ranks = [int(config["rank"]) for config in sources.configs]
        # which source each of the R = Σ r_s rank columns belongs to
        owner = [source for source, rank in enumerate(ranks) for _ in range(rank)]
        self.register_buffer("owner", torch.tensor(owner, dtype=torch.long), persistent=False)
        rows = 1 if shared else self.num_layers
        for target in self.targets:
            d_in, d_out = self.shapes[target]
            scales = [float(c["alpha"]) / int(c["rank"]) for c in sources.configs]
            A = torch.cat([t[f"{target}_A"] for t in sources.tensors], dim=1)  # [L, R, d_in]
            B = torch.cat([t[f"{target}_B"] * c for t, c in zip(sources.tensors, scales, strict=True)], dim=2)
            self.register_buffer(f"{target}_A", A.float(), persistent=False)  # frozen: not in the checkpoint
            self.register_buffer(f"{target}_B", B.float(), persistent=False)  # [L, d_out, R], c_s folded in
            cols = d_out if shape == "vector" else 1
            self.register_parameter(f"{target}_omega", nn.Parameter(torch.empty(rows, self.num_sources, cols)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for target in self.targets:
            nn.init.normal_(
                getattr(self, f"{target}_omega"), mean=self.init_scale / self.num_sources, std=self.init_std
            )

    def weights(self, target: str, layer: int) -> torch.Tensor:
        """ω̃ of one projection in one layer: [S, d_out] or [S, 1], dropout applied while training."""
        return omega_dropout(getattr(self, f"{target}_omega")[0 if self.shared else layer], self.dropout, self.training)

    def attach(self, encoder: nn.Module, output_sites: list[nn.Module]) -> None:
        if len(output_sites) != self.num_layers:  # a bank of another backbone would mix misaligned layers
            raise ValueError(
                f"LoRA sources adapt {self.num_layers} layers; this model has {len(output_sites)}: they were trained "
                "on another backbone"
            )
        for target in self.targets:
            if tuple(projection_shape(encoder, target)) != self.shapes[target]:
                raise ValueError(
                    f"LoRA sources adapt {target} as {self.shapes[target]}; this model's is "
                    f"{projection_shape(encoder, target)}"
                )
            attach_linear_sites(encoder, target, functools.partial(self._edit, target))

    def _edit(self, target: str, layer: int, x: torch.Tensor, linear: Linear) -> torch.Tensor:
        A, B = getattr(self, f"{target}_A")[layer], getattr(self, f"{target}_B")[layer]
        omega = self.weights(target, layer)[self.owner]  # [R, d_out] or [R, 1]: each column's source's ω
        out = linear(x) + F.linear(F.linear(x, A), B * omega.T)
        if self.observer is not None:
            self.observer(target, layer, x, linear, out)
        return out

    def source_updates(self, target: str, layer: int, x: torch.Tensor) -> list[torch.Tensor]:
        """Each source's own update of one projection, c_s B_s A_s x, unweighted by ω."""
        A, B = getattr(self, f"{target}_A")[layer], getattr(self, f"{target}_B")[layer]
        updates = []
        for s in range(self.num_sources):
            columns = self.owner == s
            updates.append(F.linear(F.linear(x, A[columns]), B[:, columns]))
        return updates

    def per_source(self, target: str, layer: int, x: torch.Tensor) -> torch.Tensor:
        """Σ_s ω̃_s ⊙ (c_s B_s A_s x), one source at a time: the reference of the batched ``_edit``."""
        A, B = getattr(self, f"{target}_A")[layer], getattr(self, f"{target}_B")[layer]
        omega = self.weights(target, layer)
        out = 0
        for s in range(self.num_sources):
            columns = self.owner == s
            out = out + omega[s] * F.linear(F.linear(x, A[columns]), B[:, columns])
        return out

    def config(self) -> dict:
        return {
            "kind": self.kind,
            "targets": list(self.targets),
            "shapes": {target: list(shape) for target, shape in self.shapes.items()},
            "num_sources": self.num_sources,
            "num_layers": self.num_layers,
            "sources": self.names,
            "shape": self.shape,
            "shared": self.shared,
            "dropout": self.dropout,
            "init_scale": self.init_scale,
            "init_std": self.init_std,
        }

    def extra_repr(self) -> str:
        return f"sources={self.num_sources}, targets={list(self.targets)}, shape={self.shape}, shared={self.shared}"


def load_lora_sources(directories: Sequence[str | Path], names: Sequence[str] | None = None) -> LoRASources:
    """The frozen LoRA sources of a transfer trial: one LoRA artifact (or trained ``lora`` model) per folder."""
    from scalearn.io import load_lora

    loaded = [load_lora(d) for d in directories]
    if names is None:
        names = [
            m.get("metadata", {}).get("task") or m.get("name") or f"source{i}" for i, (_, _, m) in enumerate(loaded)
        ]
    configs = [config for config, _, _ in loaded]
    tensors = [{k: v for k, v in state.items() if k.endswith(("_A", "_B"))} for _, state, _ in loaded]
    return LoRASources(configs, tensors, list(names))
