"""Task heads on the first token's hidden state ([CLS] / <s>; a decoder's last real token), and their losses.

All kinds share RoBERTa's classification head: dropout → dense d×d → tanh → dropout → out (docs/method.md
§1.5). The kinds differ in the output size and the loss:

| kind            | outputs per example | loss                                  |
|-----------------|---------------------|---------------------------------------|
| classification  | num_labels          | cross-entropy                         |
| regression      | 1                   | mean squared error                    |
| multiple_choice | 1 per choice        | cross-entropy over the choices        |
| multi_label     | num_labels          | binary cross-entropy, sigmoid outputs |

For multiple choice (COPA) the original stage-2 model scores choices with Linear(d, 1) on the frozen
pre-trained pooler; not every family has a pooler, so we train the same dense → tanh layer instead.
"""

from __future__ import annotations

import typing
from dataclasses import asdict, dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

HeadKind = Literal["classification", "regression", "multiple_choice", "multi_label"]
"""What a task's head predicts (scalearn.tasks names one per task)."""
HEAD_KINDS: tuple[str, ...] = typing.get_args(HeadKind)


@dataclass(frozen=True)
class HeadConfig:
    kind: HeadKind
    hidden_size: int
    num_labels: int = 2
    """Classes (classification), labels (multi-label); ignored for regression and multiple choice."""
    dropout: float = 0.1
    init_std: float = 0.02

    def __post_init__(self) -> None:
        if self.kind not in HEAD_KINDS:
            raise ValueError(f"head kind {self.kind!r} unknown; choose one of {', '.join(HEAD_KINDS)}")
        minimum = {"classification": 2, "multi_label": 1}.get(self.kind, 0)
        if self.num_labels < minimum:
            raise ValueError(f"a {self.kind} head needs num_labels >= {minimum}, got {self.num_labels}")

    @property
    def num_outputs(self) -> int:
        return self.num_labels if self.kind in ("classification", "multi_label") else 1

    def to_dict(self) -> dict:
        return asdict(self)


class TaskHead(nn.Module):
    tasks = None
    """A single task's head serves no named tasks (``TaskHeads`` does)."""

    def __init__(self, config: HeadConfig):
        super().__init__()
        self.config = config
        self.dropout = nn.Dropout(config.dropout)
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.out_proj = nn.Linear(config.hidden_size, config.num_outputs)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for linear in (self.dense, self.out_proj):
            nn.init.normal_(linear.weight, std=self.config.init_std)
            nn.init.zeros_(linear.bias)

    def forward(self, features: torch.Tensor, num_choices: int | None = None) -> torch.Tensor:
        """features: [N, d] first-token states → logits [N, C] ([N] for regression, [B, choices] for MC)."""
        x = self.dense(self.dropout(features))
        logits = self.out_proj(self.dropout(torch.tanh(x)))
        if self.config.kind == "regression":
            return logits.squeeze(-1)
        if self.config.kind == "multiple_choice":
            if num_choices is None:
                raise ValueError("a multiple-choice head needs num_choices")
            return logits.view(-1, num_choices)
        return logits

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        kind = self.config.kind
        if kind == "regression":
            return F.mse_loss(logits.float(), labels.float())
        if kind == "multi_label":
            return F.binary_cross_entropy_with_logits(logits.float(), labels.float())
        return F.cross_entropy(logits.float(), labels.long())

    def set_task(self, task: str) -> None:
        """One head serves every batch."""

    def fill_absent_gradients(self) -> None:
        """Every parameter of a single head takes part in every step."""

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        """Predictions as the metrics want them: class ids, scores, or a 0/1 matrix at threshold 0.5."""
        kind = self.config.kind
        if kind == "regression":
            return logits
        if kind == "multi_label":
            return (torch.sigmoid(logits) >= 0.5).long()
        return logits.argmax(-1)


@dataclass(frozen=True)
class MultiTaskHeadConfig:
    """The heads of a joint multi-task model: one per task, in a fixed order."""

    heads: tuple[tuple[str, HeadConfig], ...]

    def to_dict(self) -> dict:
        return {"kind": "multi_task", "tasks": {name: config.to_dict() for name, config in self.heads}}


class TaskHeads(nn.Module):
    """One head per task for joint multi-task training (FT-m, Adapter-m, ProPETL-m, HyperFormer).

    Acts as the head of the task selected last with ``set_task``: a joint batch comes from one task, so
    the model routes it through that task's head (and its loss), as the task-conditioned tuners do."""

    def __init__(self, configs: dict[str, HeadConfig]):
        super().__init__()
        if not configs:
            raise ValueError("a multi-task model needs at least one task head")
        self.config = MultiTaskHeadConfig(tuple(configs.items()))
        self.heads = nn.ModuleDict({name: TaskHead(config) for name, config in configs.items()})
        self.task = next(iter(configs))

    @property
    def tasks(self) -> list[str]:
        return list(self.heads)

    def set_task(self, task: str) -> None:
        if task not in self.heads:
            raise KeyError(f"no head for task {task!r}; heads: {', '.join(self.heads)}")
        self.task = task

    def fill_absent_gradients(self) -> None:
        """A zero gradient for the heads of the tasks absent from this step, so that they step (moments decay,
        weight decay applies) as in DeepSpeed's flat gradient buffers: the torch engine trains as ZeRO 0–2."""
        for parameter in self.parameters():
            if parameter.requires_grad and parameter.grad is None:
                parameter.grad = torch.zeros_like(parameter)

    @property
    def current(self) -> TaskHead:
        return self.heads[self.task]

    def forward(self, features: torch.Tensor, num_choices: int | None = None) -> torch.Tensor:
        return self.current(features, num_choices)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.current.loss(logits, labels)

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        return self.current.predict(logits)
