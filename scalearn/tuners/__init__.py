"""Tuners: single-task methods that train their own small modules inside the frozen encoder.

Unlike the adapters (a bank of bottleneck adapters at the FFN-output site, mixed by a transfer layer),
a tuner owns every parameter it trains and wires itself in with ``attach(encoder, output_sites)``:
(IA)³ and LoRA edit the encoder's own projections through projection sites (``tuners.sites``);
Compacter++, ProPETL and HyperFormer take the FFN-output sites' mixer, where a bottleneck adapter would sit.
"""

from __future__ import annotations

from scalearn.tuners.compacter import Compacter
from scalearn.tuners.hyperformer import HyperFormer
from scalearn.tuners.ia3 import IA3
from scalearn.tuners.lora import LoRA
from scalearn.tuners.propetl import ProPETL
from scalearn.tuners.sites import LinearSite, attach_linear_sites, intermediate_size

__all__ = [
    "IA3",
    "Compacter",
    "HyperFormer",
    "LinearSite",
    "LoRA",
    "ProPETL",
    "attach_linear_sites",
    "intermediate_size",
]
