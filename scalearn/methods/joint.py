"""Joint multi-task baselines: one model trained on every task of a benchmark at once (reference §3).

FT-m, Adapter-m, ProPETL-m, HyperFormer and HyperFormer++ share what they train across tasks and keep one
head per task (``TaskHeads``). They train with ``scalearn.joint.fit_joint``: batches drawn task by task by
temperature sampling, evaluation every N steps on every task's dev split, selection on the mean dev loss.
The settings below are the paper's joint-MTL settings (reference §3 notes): 375k steps at most, evaluation
every 7,500, patience 10 evaluations, warm-up 10%, T = 1 (proportional to dataset size).

Parameters: a joint model's trainable parameters outside the heads serve every task; ``transfer`` is that
total divided by the number of tasks (the per-task share, as HyperFormer reports it), and
``transfer_total`` the total.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import nn

from scalearn.heads import HeadConfig, TaskHeads
from scalearn.methods.adapter import adapter_model
from scalearn.methods.base import Method, register
from scalearn.methods.full_ft import full_model
from scalearn.methods.propetl import propetl_model
from scalearn.model import TransferModel
from scalearn.tuners import HyperFormer


@dataclass
class JointMethod(Method):
    joint: ClassVar[bool] = True
    group: ClassVar[str] = "joint"

    patience: int = 10
    """Early stopping after 10 evaluations without a better mean dev loss (reference §3 notes)."""
    warmup_ratio: float = 0.1
    """run_multi.py: warm-up ratio 0.1 (reference §3 notes)."""
    max_steps: int | None = 375_000
    """run_multi.py: 375k optimizer steps at most (reference §3 notes)."""
    eval_every_steps: int | None = 7_500
    """Evaluation (and selection) every 7,500 steps (reference §3 notes)."""
    sampling_temperature: float = 1.0
    """Task sampling p_t ∝ n_t^(1/T); T = 1 is proportional to dataset size (reference §3 notes)."""

    def build(self, encoder: nn.Module, head, sources=None) -> TransferModel:
        """The joint model: ``head`` maps every task to its HeadConfig (one head each, in this order)."""
        if sources is not None:
            raise ValueError(f"method {self.name!r} is a joint multi-task method; it uses no source adapters")
        if isinstance(head, HeadConfig) or not isinstance(head, dict):
            raise ValueError(f"method {self.name!r} trains every task at once: pass one HeadConfig per task")
        return self._build(encoder, TaskHeads(head), None)


@register("full_ft_m")
@dataclass
class FullFineTuningMulti(JointMethod):
    learning_rate: float = 2e-5
    """JOINT_MTL/run_full_*: LR 2e-5 (reference §3)."""

    def _build(self, encoder, head, sources):
        return full_model(encoder, head)


@register("adapter_m")
@dataclass
class AdapterMulti(JointMethod):
    learning_rate: float = 3e-4
    """JOINT_MTL/run_mt-a_*: LR 3e-4 (reference §3)."""
    reduction_factor: int = 16

    def _build(self, encoder, head, sources):
        return adapter_model(encoder, head, self.reduction_factor, name="shared")


@register("propetl_m")
@dataclass
class ProPETLMulti(JointMethod):
    learning_rate: float = 3e-4
    """JOINT_MTL/run_mt-propetl_*: LR 3e-4 (reference §3)."""
    mask_learning_rate: float = 3e-3
    """mask_lr_ratio 10: ten times the LR (reference §3)."""
    sparsity: float = 0.7
    """The fraction of each mask's weights masked out. The scripts pass "sparsity 0.3", which ProPETL's code
    reads as the fraction kept (its GetSubnet keeps the top k·n scores), so 0.7 here."""
    reduction_factor: int = 16

    def _build(self, encoder, head, sources):
        return propetl_model(encoder, head, self.reduction_factor, self.sparsity, self.mask_learning_rate, head.tasks)


@register("hyperformer")
@dataclass
class HyperFormerMulti(JointMethod):
    shared_hypernetwork: ClassVar[bool] = False

    learning_rate: float = 3e-4
    """JOINT_MTL/run_hf_*: LR 3e-4."""
    reduction_factor: int = 16
    """JOINT_MTL/run_hf_*: reduction factor 16 (reference §3)."""
    task_embedding_dim: int = 512
    """Task embedding 512 → 64 through a hidden layer of 128 (reference §3)."""
    task_hidden_dim: int = 128
    projected_dim: int = 64
    activation: str = "gelu_new"
    """JOINT_MTL/run_hf_*: gelu_new (reference §3)."""

    def _build(self, encoder, head, sources):
        config = encoder.config
        tuner = HyperFormer(
            config.hidden_size,
            config.num_hidden_layers,
            head.tasks,
            self.reduction_factor,
            shared=self.shared_hypernetwork,
            task_embedding_dim=self.task_embedding_dim,
            task_hidden_dim=self.task_hidden_dim,
            projected_dim=self.projected_dim,
            activation=self.activation,
        )
        model = TransferModel(encoder, head, tuner=tuner)
        model.set_trainable(model.tuner, model.head)
        return model


@register("hyperformer_pp")
@dataclass
class HyperFormerPlusPlus(HyperFormerMulti):
    shared_hypernetwork: ClassVar[bool] = True
