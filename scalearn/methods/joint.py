"""Joint multi-task baselines: one model trained on every task of a benchmark at once (docs/method.md §3).

FT-m, Adapter-m, ProPETL-m, HyperFormer and HyperFormer++ share what they train across tasks and keep one
head per task (``TaskHeads``). They train with the one loop (``scalearn.train.fit``) on a joint schedule:
batches drawn task by task by temperature sampling, evaluation every N steps on every task's dev split,
selection on the mean dev loss. The settings below are the paper's joint-MTL settings (docs/method.md §3
notes): 375k steps at most, evaluation every 7,500, patience 10 evaluations, warm-up 10%, T = 1
(proportional to dataset size).

Parameters: a joint model's trainable parameters outside the heads serve every task; ``transfer`` is that
total divided by the number of tasks (the per-task share, as HyperFormer reports it), and
``transfer_total`` the total.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from scalearn.config import Fraction
from scalearn.methods.adapter import adapter_model
from scalearn.methods.base import Count, Method, Positive, register
from scalearn.methods.full_ft import full_model
from scalearn.methods.ia3 import tuned_model
from scalearn.methods.propetl import propetl_model


class JointMethod(Method):
    joint = True
    group = "joint"

    patience: Count = 10
    """Early stopping after 10 evaluations without a better mean dev loss (docs/method.md §3 notes)."""
    warmup_ratio: Fraction = 0.1
    """run_multi.py: warm-up ratio 0.1 (docs/method.md §3 notes)."""
    max_steps: Count | None = 375_000
    """run_multi.py: 375k optimizer steps at most (docs/method.md §3 notes)."""
    eval_every_steps: Count | None = 7_500
    """Evaluation (and selection) every 7,500 steps (docs/method.md §3 notes)."""

    def build(self, encoder, head, sources=None):
        """The joint model: ``head`` maps every task to its HeadConfig (one head each, in this order)."""
        from scalearn.heads import HeadConfig, TaskHeads

        if sources is not None:
            raise ValueError(f"method {self.name!r} is a joint multi-task method; it uses no source adapters")
        if isinstance(head, HeadConfig) or not isinstance(head, dict):
            raise ValueError(f"method {self.name!r} trains every task at once: pass one HeadConfig per task")
        return self._build(encoder, TaskHeads(head), None)


@register("full_ft_m")
class FullFineTuningMulti(JointMethod):
    learning_rate: Positive = 2e-5
    """JOINT_MTL/run_full_*: LR 2e-5 (docs/method.md §3)."""

    def _build(self, encoder, head, sources):
        return full_model(encoder, head)


@register("adapter_m")
class AdapterMulti(JointMethod):
    learning_rate: Positive = 3e-4
    """JOINT_MTL/run_mt-a_*: LR 3e-4 (docs/method.md §3)."""
    reduction_factor: Count = 16

    def _build(self, encoder, head, sources):
        return adapter_model(encoder, head, self.reduction_factor, name="shared")


@register("propetl_m")
class ProPETLMulti(JointMethod):
    learning_rate: Positive = 3e-4
    """JOINT_MTL/run_mt-propetl_*: LR 3e-4 (docs/method.md §3)."""
    mask_learning_rate: Positive = 3e-3
    """mask_lr_ratio 10: ten times the LR (docs/method.md §3)."""
    sparsity: Fraction = 0.7
    """The fraction of each mask's weights masked out. The scripts pass "sparsity 0.3", which ProPETL's code
    reads as the fraction kept (its GetSubnet keeps the top k·n scores), so 0.7 here."""
    reduction_factor: Count = 16

    def _build(self, encoder, head, sources):
        return propetl_model(encoder, head, self.reduction_factor, self.sparsity, self.mask_learning_rate, head.tasks)


@register("hyperformer")
class HyperFormerMulti(JointMethod):
    shared_hypernetwork: ClassVar[bool] = False

    learning_rate: Positive = 3e-4
    """JOINT_MTL/run_hf_*: LR 3e-4."""
    reduction_factor: Count = 16
    """JOINT_MTL/run_hf_*: reduction factor 16 (docs/method.md §3)."""
    task_embedding_dim: Count = 512
    """Task embedding 512 → 64 through a hidden layer of 128 (docs/method.md §3)."""
    task_hidden_dim: Count = 128
    projected_dim: Count = 64
    activation: Literal["relu", "gelu", "gelu_new", "tanh"] = "gelu_new"
    """JOINT_MTL/run_hf_*: gelu_new (docs/method.md §3)."""

    def _build(self, encoder, head, sources):
        from scalearn.tuners import HyperFormer

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
        return tuned_model(encoder, head, tuner)


@register("hyperformer_pp")
class HyperFormerPlusPlus(HyperFormerMulti):
    shared_hypernetwork: ClassVar[bool] = True
