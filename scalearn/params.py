"""Parameter counts from a model's config alone: built on the meta device, no weights, offline."""

from __future__ import annotations

import torch

from scalearn.adapters import BottleneckAdapters
from scalearn.backbones import load_encoder
from scalearn.heads import HeadConfig
from scalearn.methods import get_method
from scalearn.methods.base import adapter_config_for


def count_parameters(model_name: str, method_name: str, num_sources: int = 8, num_labels: int = 2) -> dict:
    """Counts for one target: transfer (trainable, head excluded, as the paper counts), head, total. For a
    joint multi-task method ``num_sources`` is the number of tasks trained together, and transfer each one's
    share of what they share (transfer_total the whole).

    Also returns the shape facts the count depends on (hidden size d, layers L, sources S).
    """
    method = get_method(method_name)
    if method.uses_sources and num_sources < 1:
        raise ValueError(f"method {method_name!r} needs --sources >= 1")
    method = method.for_counting(num_sources)
    with torch.device("meta"):
        encoder = load_encoder(model_name, pretrained=False, device="meta")
        config = encoder.config
        sources = None
        if method.uses_sources and method.source_method == "lora":
            from scalearn.tuners.lora_bank import LoRASources

            sources = LoRASources.random(encoder, num_sources)
        elif method.uses_sources:
            sources = BottleneckAdapters(adapter_config_for(encoder), num_sources).requires_grad_(False)
        head = HeadConfig("classification", config.hidden_size, num_labels)
        if method.joint:  # one head per task, num_sources tasks
            model = method.build(encoder, {f"task{i}": head for i in range(num_sources)})
        else:
            model = method.build(encoder, head, sources)
    counts = model.parameter_counts()
    return {
        **counts,
        "model": config.name_or_path,
        "family": config.model_type,
        "hidden_size": config.hidden_size,
        "num_layers": config.num_hidden_layers,
        "num_sources": num_sources if method.uses_sources else 0,
        "num_tasks": num_sources if method.joint else 1,
        "method": method_name,
    }


def backbone_size(model_name: str) -> dict:
    """Family, hidden size, layers and parameter count of a backbone as the harness loads it (no pooler, no
    LM head), from its config alone."""
    with torch.device("meta"):
        encoder = load_encoder(model_name, pretrained=False, device="meta")
    config = encoder.config
    return {
        "model": config.name_or_path,
        "family": config.model_type,
        "hidden_size": config.hidden_size,
        "num_layers": config.num_hidden_layers,
        "parameters": sum(p.numel() for p in encoder.parameters()),
    }


def human_count(count: int) -> str:
    """12345678 → '12.3M'; 7504924672 → '7.50B': two decimals below 10 of the unit, one above, both chosen from
    the rounded value (9996 → '10.0K', 999960 → '1.00M')."""
    for unit, scale, larger in (("B", 1e9, None), ("M", 1e6, "B"), ("K", 1e3, "M")):
        if count >= scale:
            value = count / scale
            shown = f"{value:.2f}" if float(f"{value:.2f}") < 10 else f"{value:.1f}"
            if float(shown) >= 1000 and larger:  # 999.96K would show as 1000.0K
                return f"{count / (1000 * scale):.2f}{larger}"
            return shown + unit
    return str(count)
