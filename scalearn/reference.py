"""Straightforward per-source implementations of the transfer layers.

They compute what the paper's equations say in the most direct way: a Python loop over adapters,
and AdapterFusion projecting every source's output with K and V. The tests hold the batched layers
equal to these oracles, and the benchmarks time the batched layers against them. Not for training.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from scalearn.adapters import ACTIVATIONS, BottleneckAdapters
from scalearn.transfer import AdapterFusion, ScaLearn


def adapter_output(adapters: BottleneckAdapters, layer: int, index: int, x: torch.Tensor) -> torch.Tensor:
    """a_s = W_up · act(W_down · x + b_down) + b_up for one adapter, from its own tensors."""
    r = adapters.config.bottleneck
    cols = slice(index * r, (index + 1) * r)
    down = x @ adapters.down_weight[layer][:, cols] + adapters.down_bias[layer][cols]
    hidden = ACTIVATIONS[adapters.config.activation](down)
    return hidden @ adapters.up_weight[layer, index] + adapters.up_bias[layer, index]


def adapter_outputs(adapters: BottleneckAdapters, layer: int, x: torch.Tensor) -> torch.Tensor:
    """Every a_s, one adapter at a time: [..., S, d]."""
    return torch.stack([adapter_output(adapters, layer, s, x) for s in range(adapters.num_adapters)], dim=-2)


class LoopScaLearn(ScaLearn):
    """ScaLearn as a loop over sources: z = Σ_s ω̃_s ⊙ a_s."""

    def forward(self, layer: int, x: torch.Tensor, adapters: BottleneckAdapters) -> torch.Tensor:
        weights = self.weights(layer)
        z = torch.zeros_like(x)
        for s in range(adapters.num_adapters):
            z = z + weights[s] * adapter_output(adapters, layer, s, x)
        return z


class PerSourceFusion(AdapterFusion):
    """AdapterFusion as adapter-transformers computes it: K and V act on every source's output."""

    def forward(self, layer: int, x: torch.Tensor, adapters: BottleneckAdapters) -> torch.Tensor:
        outputs = adapter_outputs(adapters, layer, x)  # [..., S, d]
        query = self.query[layer](x)  # [..., d]
        keys = self.key[layer](outputs)  # [..., S, d]
        values = self.value[layer](outputs)  # [..., S, d]
        scores = torch.einsum("...d,...sd->...s", query, keys)
        scores = F.dropout(scores, self.dropout, self.training)
        probs = torch.softmax(scores / self.temperature, dim=-1)
        return torch.einsum("...s,...sd->...d", probs, values)


def loop_lora_bank(bank):
    """The same ScaLearn-over-LoRA bank with its batched edit replaced by the per-source loop
    (``LoRABank.per_source``): what the batched form is tested against and benchmarked beside."""

    def edit(target, layer, x, linear):
        return linear(x) + bank.per_source(target, layer, x)

    bank._edit = edit  # attach() binds the edit per projection: set before the bank is attached
    return bank
