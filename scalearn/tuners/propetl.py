"""ProPETL: one prototype adapter shared by every layer, and a binary mask per layer (Zeng et al., 2023).

The prototype is a Pfeiffer bottleneck adapter (down d → r, up r → d, biases, ReLU; r = d / reduction_factor)
at the same after-FFN site as our ``adapter`` method: it reads x = LN(f + h_att) and the layer outputs
LN(z + f + h_att) (docs/method.md §1.2, §3). Layer l uses the prototype's weights masked by its own binary masks:

    z_l = (ReLU(x (W_down ⊙ M_l,down) + b_down)) (W_up ⊙ M_l,up) + b_up

Each mask comes from real-valued scores S_l of the weight's shape: M = 1 where |S| is among the top
(1 − sparsity) fraction of that one matrix, 0 elsewhere (exactly ``n − int(sparsity · n)`` ones of n). The
biases are shared and not masked. Training uses the straight-through estimator: the forward pass uses the
hard mask, the backward pass hands the mask's gradient to |S| unchanged (so S gets g · sign(S)).

As ProPETL's code (ChaosCodes/ProPETL, ``AdapterSubnet``/``GetSubnet``), scores are ranked by absolute
value, per layer and per projection, and start Kaiming-uniform with a = √5 on [in, out] tensors:
U(±1/√out). (That code zeroes the lowest (1 − sparsity) fraction, i.e. keeps ``sparsity`` of the weights;
we follow the paper's reading, sparsity = the fraction masked out. At the default 0.5 both agree.)
The prototype starts as our adapters do ('bert' init: weights N(0, 0.02²), biases 0; docs/method.md §2.1).

Parameters. Trained in fp32: the prototype, P = 2·d·r + r + d (74,544 on RoBERTa-base), plus the mask
scores, L · 2·d·r (884,736 on RoBERTa-base), which are discarded after training: a target keeps the
prototype and L binary masks. We count as ProPETL reports, one bit per mask entry, 32 bits a parameter:

    P + ⌈L · 2·d·r / 32⌉        (74,544 + 27,648 = 102,192 on RoBERTa-base)

``counted_parameters`` gives this; the model's "trainable" count still holds every trained tensor.

ProPETL-m (joint multi-task; ``tasks`` given), as ScaLearn's joint runs configure ProPETL (shared adapter,
``mask_extreme_mode``, masks combined by "or"): the one prototype serves every layer and every task; each
task has one mask pair shared by all layers (scores [T, …]), each layer one shared by all tasks (the scores
above), and task t in layer l uses their union, M = 1 − (1 − M_t)(1 − M_l). ``set_task`` picks the task.
Counted as P + ⌈(T + L) · 2·d·r / 32⌉. (ScaLearn's code builds layer 0's layer mask from the last task's
scores, so that one task's layer-0 mask is its task mask alone; we keep every mask its own.)
"""

from __future__ import annotations

import math

import torch
from torch import nn

from scalearn.tuners.output_site import OutputSiteTuner

PROJECTIONS = ("down", "up")


class _TopFractionMask(torch.autograd.Function):
    """Forward: 1 on the top (1 − sparsity) fraction of ``magnitudes``, 0 elsewhere; backward: identity."""

    @staticmethod
    def forward(ctx, magnitudes: torch.Tensor, sparsity: float) -> torch.Tensor:
        flat = magnitudes.flatten()
        mask = torch.ones_like(flat)
        # a stable sort breaks ties by position, so equal scores always give the same mask
        mask[flat.argsort(stable=True)[: int(sparsity * flat.numel())]] = 0
        return mask.view_as(magnitudes)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad, None


class ProPETL(OutputSiteTuner):
    kind = "propetl"
    label = "ProPETL"

    def __init__(
        self,
        hidden_size: int,
        num_layers: int,
        reduction_factor: int = 16,
        sparsity: float = 0.5,
        activation: str = "relu",
        init_std: float = 0.02,
        tasks: list[str] | None = None,
    ):
        super().__init__()
        bottleneck = self._bottleneck_setup(hidden_size, num_layers, reduction_factor, activation)
        if not 0.0 <= sparsity < 1.0:
            raise ValueError(f"sparsity is the fraction of prototype weights masked out: in [0, 1), got {sparsity}")
        self.sparsity, self.init_std = sparsity, init_std
        self.tasks = list(tasks) if tasks is not None else None
        self.task_index = 0
        L, d, r = num_layers, hidden_size, bottleneck

        # the prototype, as [in, out] (x @ W), shared by every layer
        self.down_weight = nn.Parameter(torch.empty(d, r))
        self.down_bias = nn.Parameter(torch.empty(r))
        self.up_weight = nn.Parameter(torch.empty(r, d))
        self.up_bias = nn.Parameter(torch.empty(d))
        # one score per prototype weight and layer (and per task, for ProPETL-m)
        self.down_scores = nn.Parameter(torch.empty(L, d, r))
        self.up_scores = nn.Parameter(torch.empty(L, r, d))
        if self.tasks is not None:
            self.task_down_scores = nn.Parameter(torch.empty(len(self.tasks), d, r))
            self.task_up_scores = nn.Parameter(torch.empty(len(self.tasks), r, d))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.down_weight, std=self.init_std)
        nn.init.normal_(self.up_weight, std=self.init_std)
        nn.init.zeros_(self.down_bias)
        nn.init.zeros_(self.up_bias)
        for scores in self.score_tensors():
            # kaiming_uniform_(a=√5) of one layer's [in, out] tensor: fan_in = out, bound = 1/√out
            bound = 1.0 / math.sqrt(scores.shape[-1])
            nn.init.uniform_(scores, -bound, bound)

    def score_tensors(self) -> list[nn.Parameter]:
        names = [f"{prefix}{p}_scores" for prefix in ("", "task_") for p in PROJECTIONS]
        return [getattr(self, name) for name in names if hasattr(self, name)]

    def set_task(self, task: str) -> None:
        """ProPETL-m: the masks of ``task`` serve the next batches (a single-task ProPETL has one set of masks)."""
        if self.tasks is None:
            return
        self.task_index = self.tasks.index(task)

    def mask(self, layer: int, projection: str) -> torch.Tensor:
        """Layer ``layer``'s binary mask over the prototype's ``projection`` ("down" or "up") weight; for
        ProPETL-m its union with the current task's mask."""
        layer_mask = _TopFractionMask.apply(getattr(self, f"{projection}_scores")[layer].abs(), self.sparsity)
        if self.tasks is None:
            return layer_mask
        task_scores = getattr(self, f"task_{projection}_scores")[self.task_index]
        task_mask = _TopFractionMask.apply(task_scores.abs(), self.sparsity)
        return 1 - (1 - task_mask) * (1 - layer_mask)

    def masked_weight(self, layer: int, projection: str) -> torch.Tensor:
        return getattr(self, f"{projection}_weight") * self.mask(layer, projection)

    def forward(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        """z of one layer from the adapter input x = LN(f + h_att)."""
        hidden = self._activation(x @ self.masked_weight(layer, "down") + self.down_bias)
        return hidden @ self.masked_weight(layer, "up") + self.up_bias

    def prototype_parameters(self) -> int:
        """P = 2·d·r + r + d."""
        return sum(getattr(self, f"{p}_{part}").numel() for p in PROJECTIONS for part in ("weight", "bias"))

    def counted_parameters(self) -> int:
        """What a target keeps, as ProPETL counts it: the prototype, plus L·2·d·r mask bits at 32 a parameter."""
        mask_bits = sum(scores.numel() for scores in self.score_tensors())
        return self.prototype_parameters() + math.ceil(mask_bits / 32)

    def settings(self) -> dict:
        return {"sparsity": self.sparsity, "init_std": self.init_std, "tasks": self.tasks}

    def extra_repr(self) -> str:
        shape = f"layers={self.num_layers}, d={self.hidden_size}, r={self.bottleneck}"
        return f"{shape}, sparsity={self.sparsity}, act={self.activation}"
