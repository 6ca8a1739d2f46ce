"""The model every method trains: encoder + adapter sites + (adapters) + (transfer layer) + (tuner) + head."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from scalearn.adapters import BottleneckAdapters
from scalearn.backbones import attach_sites, family_of
from scalearn.heads import TaskHead

AdapterRole = Literal["trained", "sources", "derived"]


class TransferModel(nn.Module):
    """One model class for every method; a method decides which parts exist and which train.

    - no adapters: the plain encoder (full fine-tuning, or a head on a frozen encoder);
    - adapters, no transfer layer: z = Σ_s a_s, i.e. a single adapter's output (stage 1);
    - adapters + transfer layer: z = transfer(layer, x, adapters) (ScaLearn, AdapterFusion, probes);
    - a tuner: a module that wires itself into the encoder (``scalearn.tuners``: (IA)³, LoRA, Compacter++).

    ``adapter_role`` says where the adapters came from, which decides what a checkpoint holds:
    "trained" here, "sources" (frozen stage-1 artifacts, referenced not copied) or "derived" from
    sources (AdapterSoup's average, saved since it exists nowhere else).

    ``learning_rates`` maps parameter-name prefixes to their own learning rate (ProPETL's mask scores);
    every other trainable parameter takes the trial's learning rate (``engines.make_optimizer``).
    """

    def __init__(
        self,
        encoder: nn.Module,
        head: TaskHead,
        adapters: BottleneckAdapters | None = None,
        transfer: nn.Module | None = None,
        adapter_role: AdapterRole = "trained",
        tuner: nn.Module | None = None,
    ):
        super().__init__()
        if transfer is not None and adapters is None:
            raise ValueError("a transfer layer needs source adapters")
        if tuner is not None and adapters is not None:
            raise ValueError("a tuner and adapters cannot be combined in one model")
        self.encoder = encoder
        self.head = head
        self.adapters = adapters
        self.transfer = transfer
        self.adapter_role = adapter_role
        self.family = family_of(encoder.config)
        self.sites = attach_sites(encoder)
        if adapters is not None:  # a source bank of another backbone would mix misaligned layers, silently
            wanted = (len(self.sites), encoder.config.hidden_size)
            have = (adapters.config.num_layers, adapters.config.hidden_size)
            if have != wanted:
                raise ValueError(
                    f"the adapters are for {have[0]} layers of width {have[1]}; this backbone has {wanted[0]} of "
                    f"width {wanted[1]}: they were trained on another backbone"
                )
        for site in self.sites:
            site.mixer = self._mix if adapters is not None else None
        self.tuner = tuner
        self.learning_rates: dict[str, float] = {}
        if tuner is not None:
            tuner.attach(encoder, self.sites)

    @property
    def tasks(self) -> list[str] | None:
        """The tasks of a joint multi-task model (one head each), or None."""
        return self.head.tasks

    def set_task(self, task: str) -> None:
        """Joint multi-task models: the next batches are ``task``'s, through its head and the task-conditioned
        modules (HyperFormer's generated adapters, ProPETL-m's masks)."""
        self.head.set_task(task)
        if self.tuner is not None:
            self.tuner.set_task(task)

    def _mix(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        if self.transfer is None:
            return self.adapters.combine(layer, self.adapters.hidden(layer, x))
        return self.transfer(layer, x, self.adapters)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits. Multiple-choice inputs are [B, choices, T] and give [B, choices]."""
        num_choices = None
        if input_ids.dim() == 3:
            num_choices = input_ids.shape[1]
            input_ids, attention_mask, token_type_ids = (
                t.flatten(0, 1) if t is not None else None for t in (input_ids, attention_mask, token_type_ids)
            )
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self.transfer is not None:
            self.transfer.see_mask(attention_mask)
        if token_type_ids is not None and self.family.token_type_ids:
            inputs["token_type_ids"] = token_type_ids
        if self.family.causal:
            return self._decoder_forward(inputs, num_choices)
        hidden = self.encoder(**inputs).last_hidden_state
        return self.head(hidden[:, 0], num_choices)

    def _decoder_forward(self, inputs: dict, num_choices: int | None) -> torch.Tensor:
        """A decoder reads the last real token (docs/method.md §1.5): with either padding side the same token and,
        with positions counted from the first real token, the same state."""
        mask = inputs["attention_mask"]
        if mask is None:
            mask = inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
        inputs["position_ids"] = (mask.long().cumsum(-1) - 1).clamp(min=0)
        hidden = self.encoder(**inputs, use_cache=False).last_hidden_state
        return self.head(last_token(hidden, mask), num_choices)

    def regularization_loss(self) -> torch.Tensor | None:
        """Whatever the transfer layer adds to the task loss (AdapterFusion's value regulariser)."""
        return self.transfer.regularization_loss() if self.transfer is not None else None

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Task loss plus regulariser, so both reach the same backward pass and optimizer step."""
        loss = self.head.loss(logits, labels)
        regularization = self.regularization_loss()
        return loss if regularization is None else loss + regularization

    # -- what trains ----------------------------------------------------------------------------

    def set_trainable(self, *modules: nn.Module | None) -> None:
        """Freeze everything, then unfreeze exactly ``modules``."""
        self.requires_grad_(False)
        for module in modules:
            if module is not None:
                module.requires_grad_(True)

    def trainable_parameters(self) -> dict[str, nn.Parameter]:
        return {name: p for name, p in self.named_parameters() if p.requires_grad}

    def parameter_counts(self) -> dict[str, int]:
        """transfer: trainable parameters outside the head (the paper's per-target count), or what the tuner
        counts instead (ProPETL: its masks as bits) — for a joint multi-task model, its per-task share, with
        the whole in transfer_total; head: the head's (all heads'); trainable: every trained parameter,
        head included; total: every parameter of the model."""
        head_ids = {id(p) for p in self.head.parameters()}
        trainable = [p for p in self.parameters() if p.requires_grad]
        transfer = sum(p.numel() for p in trainable if id(p) not in head_ids)
        counted = self.tuner.counted_parameters() if self.tuner is not None else None
        transfer = counted if counted is not None else transfer
        counts = {
            "transfer": transfer,
            "head": sum(p.numel() for p in self.head.parameters()),
            "trainable": sum(p.numel() for p in trainable),
            "total": sum(p.numel() for p in self.parameters()),
        }
        if self.tasks is not None:  # joint: what serves every task, and each task's share of it
            counts.update(transfer=math.ceil(transfer / len(self.tasks)), transfer_total=transfer)
        return counts


def last_token(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[N, T, d] → [N, d]: each row's state at its last non-padding position (left or right padding)."""
    positions = torch.arange(mask.shape[-1], device=mask.device)
    last = (positions * (mask != 0)).argmax(-1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
