"""Projection sites: where (IA)³ and LoRA reach into each family's attention and FFN.

Like the adapter sites of ``scalearn.backbones``, we attach without editing transformers' code: each
projection a tuner edits (an ``nn.Linear``) is swapped for a :class:`LinearSite` that holds the very same
weight and bias, so the encoder's state-dict keys do not change, and calls back into the tuner.

An edit changes the projection itself, wherever the encoder uses it. For DeBERTa-v2 with
``share_att_key`` the key and query projections also project the relative position embeddings; an
edit applies there too, exactly as if the edited weight had been merged into the checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from scalearn.backbones import DECODER_TYPES, FAMILIES, UnsupportedModelError

Linear = Callable[[torch.Tensor], torch.Tensor]
Edit = Callable[[int, torch.Tensor, Linear], torch.Tensor]
"""edit(layer, x, frozen_linear) → the edited projection's output."""

# Per family: the module list of the layers, then each projection's path inside one layer.
# "ffn_up" is the FFN's first linear W_1 (a decoder's up_proj; "ffn_gate" its gate_proj), "ffn_out" the second,
# W_2 / down_proj, whose input is the FFN's intermediate activation; "attn_out" is the attention's output map.
_BERT_LIKE = {
    "layers": "encoder.layer",
    "query": "attention.self.query",
    "key": "attention.self.key",
    "value": "attention.self.value",
    "attn_out": "attention.output.dense",
    "ffn_up": "intermediate.dense",
    "ffn_out": "output.dense",
}
_DECODER = {
    "layers": "layers",
    "query": "self_attn.q_proj",
    "key": "self_attn.k_proj",
    "value": "self_attn.v_proj",
    "attn_out": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_out": "mlp.down_proj",
}
PROJECTIONS: dict[str, dict[str, str]] = {
    **dict.fromkeys(("bert", "roberta", "xlm-roberta", "electra"), _BERT_LIKE),
    "deberta-v2": {
        **_BERT_LIKE,
        "query": "attention.self.query_proj",
        "key": "attention.self.key_proj",
        "value": "attention.self.value_proj",
    },
    "distilbert": {
        "layers": "transformer.layer",
        "query": "attention.q_lin",
        "key": "attention.k_lin",
        "value": "attention.v_lin",
        "attn_out": "attention.out_lin",
        "ffn_up": "ffn.lin1",
        "ffn_out": "ffn.lin2",
    },
    "mpnet": {
        **_BERT_LIKE,
        "query": "attention.attn.q",
        "key": "attention.attn.k",
        "value": "attention.attn.v",
        "attn_out": "attention.attn.o",
    },
    **dict.fromkeys(DECODER_TYPES, _DECODER),
}
ROLES = ("query", "key", "value", "attn_out", "ffn_gate", "ffn_up", "ffn_out")
assert set(PROJECTIONS) == set(FAMILIES), "every supported family needs its projection names"


def roles_of(model_type: str) -> tuple[str, ...]:
    """The projections a family has, in ROLES order (only decoders have a gate)."""
    return tuple(role for role in ROLES if role in PROJECTIONS.get(model_type, {}))


def projection_shape(encoder: nn.Module, role: str) -> tuple[int, int]:
    """(in_features, out_features) of the ``role`` projection; the same in every layer of these families.

    A decoder's key and value maps are narrower than the stream (grouped-query attention), and Qwen3's and
    Gemma's query map can be wider (head_dim × heads ≠ d)."""
    layer = encoder.get_submodule(_names(encoder, role)["layers"])[0]
    linear = layer.get_submodule(_names(encoder, role)[role])
    return int(linear.in_features), int(linear.out_features)


def _names(encoder: nn.Module, role: str) -> dict[str, str]:
    model_type = encoder.config.model_type
    if model_type not in PROJECTIONS:
        raise UnsupportedModelError(f"model family {model_type!r} has no projection sites")
    if role not in roles_of(model_type):
        raise ValueError(f"{model_type} has no {role!r} projection; choose one of {roles_of(model_type)}")
    return PROJECTIONS[model_type]


class LinearSite(nn.Module):
    """Stands in for one frozen ``nn.Linear``; ``edit`` decides what it computes (plain Wx + b without one)."""

    def __init__(self, original: nn.Module, layer_index: int, role: str):
        super().__init__()
        self.register_parameter("weight", original.weight)
        self.register_parameter("bias", original.bias)
        self.in_features, self.out_features = original.in_features, original.out_features
        self.layer_index, self.role = layer_index, role
        self.edit: Edit | None = None

    def frozen(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.edit is None:
            return self.frozen(x)
        return self.edit(self.layer_index, x, self.frozen)

    def extra_repr(self) -> str:
        return f"{self.role}, layer={self.layer_index}, in={self.in_features}, out={self.out_features}"


def attach_linear_sites(encoder: nn.Module, role: str, edit: Edit) -> list[LinearSite]:
    """Swap the ``role`` projection of every layer for a site calling ``edit``; sites in layer order.

    Call after :func:`scalearn.backbones.attach_sites` (the FFN-output site keeps its ``dense`` child,
    which is what we swap for "ffn_out").
    """
    names = _names(encoder, role)
    parent_path, _, child = names[role].rpartition(".")
    sites = []
    for index, layer in enumerate(encoder.get_submodule(names["layers"])):
        parent = layer.get_submodule(parent_path)
        original = getattr(parent, child)
        if isinstance(original, LinearSite):
            raise RuntimeError(f"the {role} projection of layer {index} is already edited")
        site = LinearSite(original, index, role)
        site.edit = edit
        setattr(parent, child, site)
        sites.append(site)
    return sites


def intermediate_size(config) -> int:
    """d_ff, the FFN's inner width (DistilBERT calls it ``hidden_dim``)."""
    size = getattr(config, "intermediate_size", None)
    return int(size if size is not None else config.hidden_dim)
