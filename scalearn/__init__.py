"""ScaLearn core: adapters, transfer layers, methods, heads, and their artifacts.

Usable on its own (in a notebook) without the harness:

    from scalearn import load_encoder, get_method, HeadConfig
    encoder = load_encoder("minilm")
    model = get_method("adapter").build(encoder, HeadConfig("classification", encoder.config.hidden_size, 2))
"""

from scalearn.adapters import AdapterConfig, BottleneckAdapters
from scalearn.backbones import FAMILIES, TINY_CONFIGS, load_config, load_encoder, load_tokenizer
from scalearn.heads import HeadConfig, TaskHead
from scalearn.io import load_adapter, load_model_state, load_source_bank, save_adapter, save_model
from scalearn.methods import Method, get_method, method_names
from scalearn.model import TransferModel

CORE_VERSION = 1
"""Bumped by hand when training semantics change; part of every trial's content key."""

__all__ = [
    "CORE_VERSION",
    "FAMILIES",
    "TINY_CONFIGS",
    "AdapterConfig",
    "BottleneckAdapters",
    "HeadConfig",
    "Method",
    "TaskHead",
    "TransferModel",
    "get_method",
    "load_adapter",
    "load_config",
    "load_encoder",
    "load_model_state",
    "load_source_bank",
    "load_tokenizer",
    "method_names",
    "save_adapter",
    "save_model",
]
