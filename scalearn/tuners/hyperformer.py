"""HyperFormer and HyperFormer++: adapters whose weights a hypernetwork generates per task (Karimi Mahabadi
et al., 2021), as the paper's joint multi-task baselines use them (docs/method.md §3; ScaLearn's src/adapters_hf).

As every adapter of the paper, the generated adapter sits after the FFN only (docs/method.md §2.1, §3): it reads
x = LN(f + h_att) and the layer outputs LN(z + f + h_att), with a generated layer norm after the adapter:

    z = LN_gen(up(gelu_new(down(x))))        down: d → r = d / reduction_factor,  up: r → d

Each task t has a task embedding e_t ∈ R^E (E = 512, drawn N(0, 1), trained). A projector network
(Linear E_in → H, ReLU, Linear H → P; H = 128, P = 64) and a LayerNorm(P) turn it into the conditioning
vector I; generators (one Linear P → size per tensor) turn I into the adapter's weights and biases and
LN_gen's weight and bias:

    W_down = G_down I + g_down (d × r),  b_down, W_up (r × d), b_up, γ, β  alike

- HyperFormer: I_t = LN(h(e_t)); one projector for every layer, and generators of its own in every layer.
- HyperFormer++ (the "efficient unique hypernetwork"): one set of generators for every layer, conditioned on
  the task and the layer: I_{t,l} = LN(h([e_t ; λ_l])) with a layer embedding λ_l ∈ R^E. (The original also
  embeds the adapter's position, after attention or after the FFN; with adapters after the FFN only there
  is one position, and ScaLearn's code drops that embedding too.)

Initialisation as the paper's runs end up with: the task embeddings N(0, 1); every other weight N(0, 0.02²)
with zero biases (transformers re-initialises the modules a checkpoint lacks), LayerNorms 1 and 0.

Parameters, with G = (P + 1)(2·d·r + r + d + 2·d) for one layer's generators and proj(n) = n·H + H + H·P + P:

    HyperFormer    T·E + proj(E) + 2P + L·G
    HyperFormer++  T·E + L·E + proj(2E) + 2P + G

On RoBERTa-base with the 8 GLUE tasks: 59,420,544 and 5,095,024 (G = 4,945,200). Every parameter is shared
by all tasks except one task embedding each.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from scalearn.tuners.output_site import OutputSiteTuner


def _linear(in_features: int, out_features: int, std: float) -> nn.Linear:
    linear = nn.Linear(in_features, out_features)
    nn.init.normal_(linear.weight, std=std)
    nn.init.zeros_(linear.bias)
    return linear


class _Generators(nn.Module):
    """I ∈ R^P → one adapter's tensors: W_down [d, r], b_down, W_up [r, d], b_up (x @ W layout), LN_gen's γ, β."""

    def __init__(self, conditioning: int, hidden_size: int, bottleneck: int, std: float):
        super().__init__()
        d, r = hidden_size, bottleneck
        self.shape = (d, r)
        self.down_weight = _linear(conditioning, d * r, std)
        self.down_bias = _linear(conditioning, r, std)
        self.up_weight = _linear(conditioning, r * d, std)
        self.up_bias = _linear(conditioning, d, std)
        self.norm_weight = _linear(conditioning, d, std)
        self.norm_bias = _linear(conditioning, d, std)

    def forward(self, conditioning: torch.Tensor) -> tuple[torch.Tensor, ...]:
        d, r = self.shape
        return (
            self.down_weight(conditioning).view(d, r),
            self.down_bias(conditioning),
            self.up_weight(conditioning).view(r, d),
            self.up_bias(conditioning),
            self.norm_weight(conditioning),
            self.norm_bias(conditioning),
        )


class HyperFormer(OutputSiteTuner):
    kind = "hyperformer"
    label = "HyperFormer"

    def __init__(
        self,
        hidden_size: int,
        num_layers: int,
        tasks: list[str],
        reduction_factor: int = 16,
        shared: bool = False,
        task_embedding_dim: int = 512,
        task_hidden_dim: int = 128,
        projected_dim: int = 64,
        activation: str = "gelu_new",
        init_std: float = 0.02,
    ):
        super().__init__()
        bottleneck = self._bottleneck_setup(hidden_size, num_layers, reduction_factor, activation)
        if not tasks:
            raise ValueError("HyperFormer generates adapters per task: it needs the list of tasks")
        self.tasks, self.shared = list(tasks), shared
        self.task_embedding_dim, self.task_hidden_dim = task_embedding_dim, task_hidden_dim
        self.projected_dim = projected_dim
        self.init_std = init_std
        self.task_index = 0
        E, H, P = task_embedding_dim, task_hidden_dim, projected_dim
        self.task_embeddings = nn.Parameter(torch.randn(len(self.tasks), E))
        if shared:
            self.layer_embeddings = nn.Parameter(torch.randn(num_layers, E) * init_std)
        width = 2 * E if shared else E
        self.projector = nn.Sequential(_linear(width, H, init_std), nn.ReLU(), _linear(H, P, init_std))
        self.layer_norm = nn.LayerNorm(P, eps=1e-6)
        if shared:
            self.generators = _Generators(P, hidden_size, bottleneck, init_std)
        else:
            self.generators = nn.ModuleList(
                _Generators(P, hidden_size, bottleneck, init_std) for _ in range(num_layers)
            )

    def set_task(self, task: str) -> None:
        if task not in self.tasks:
            raise KeyError(f"HyperFormer has no task {task!r}; tasks: {', '.join(self.tasks)}")
        self.task_index = self.tasks.index(task)

    def conditioning(self, task: int, layer: int) -> torch.Tensor:
        """I for (task, layer): LN(h(e_t)) (HyperFormer), LN(h([e_t; λ_l])) (HyperFormer++)."""
        embedding = self.task_embeddings[task]
        if self.shared:
            embedding = torch.cat([embedding, self.layer_embeddings[layer]])
        return self.layer_norm(self.projector(embedding))

    def adapter_weights(self, task: int, layer: int) -> tuple[torch.Tensor, ...]:
        """(W_down [d, r], b_down [r], W_up [r, d], b_up [d], γ [d], β [d]) generated for ``task`` in ``layer``."""
        generators = self.generators if self.shared else self.generators[layer]
        return generators(self.conditioning(task, layer))

    def forward(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        """z of one layer from the adapter input x = LN(f + h_att), with the current task's adapter."""
        down_weight, down_bias, up_weight, up_bias, gamma, beta = self.adapter_weights(self.task_index, layer)
        hidden = self._activation(x @ down_weight + down_bias)
        out = hidden @ up_weight + up_bias
        return F.layer_norm(out.float(), (self.hidden_size,), gamma.float(), beta.float()).to(out.dtype)

    def settings(self) -> dict:
        return {
            "tasks": self.tasks,
            "shared": self.shared,
            "task_embedding_dim": self.task_embedding_dim,
            "task_hidden_dim": self.task_hidden_dim,
            "projected_dim": self.projected_dim,
            "init_std": self.init_std,
        }

    def extra_repr(self) -> str:
        variant = "HyperFormer++ (one hypernetwork)" if self.shared else "HyperFormer (per-layer generators)"
        return f"{variant}, tasks={len(self.tasks)}, d={self.hidden_size}, r={self.bottleneck}"
