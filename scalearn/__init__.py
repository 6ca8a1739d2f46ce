"""ScaLearn core: adapters, transfer layers, methods, heads, and their artifacts.

Usable on its own (in a notebook) without the harness:

    from scalearn import load_encoder, get_method, HeadConfig
    encoder = load_encoder("minilm")
    model = get_method("adapter").build(encoder, HeadConfig("classification", encoder.config.hidden_size, 2))

The names below are imported on first use, so that the torch-free parts (``scalearn.config``, the method
and task registries, ``scalearn.catalog``) load without torch: ``harness validate`` answers at once.
"""

from __future__ import annotations

import importlib

CORE_VERSION = 2
"""Bumped by hand when training semantics change; part of every trial's content key.

2: the typed trial contract (``scalearn.config.TrialConfig``) replaced the dict config, so every key changed."""

_EXPORTS = {
    "AdapterConfig": "scalearn.adapters",
    "BottleneckAdapters": "scalearn.adapters",
    "FAMILIES": "scalearn.backbones",
    "TINY_CONFIGS": "scalearn.catalog",
    "load_config": "scalearn.backbones",
    "load_encoder": "scalearn.backbones",
    "load_tokenizer": "scalearn.backbones",
    "HeadConfig": "scalearn.heads",
    "TaskHead": "scalearn.heads",
    "load_adapter": "scalearn.io",
    "load_model_state": "scalearn.io",
    "load_source_bank": "scalearn.io",
    "save_adapter": "scalearn.io",
    "save_model": "scalearn.io",
    "Method": "scalearn.methods",
    "get_method": "scalearn.methods",
    "method_names": "scalearn.methods",
    "TransferModel": "scalearn.model",
    "TrialConfig": "scalearn.config",
    "create_config": "scalearn.resolve",
}

__all__ = ["CORE_VERSION", *_EXPORTS]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'scalearn' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
