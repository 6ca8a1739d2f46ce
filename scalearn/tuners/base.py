"""What a tuner is: a module that owns every parameter it trains and wires itself into the frozen encoder
with ``attach(encoder, output_sites)``; hooks with defaults here, so the model never probes with ``hasattr``."""

from __future__ import annotations

from torch import nn


class Tuner(nn.Module):
    kind = ""

    def attach(self, encoder: nn.Module, output_sites: list[nn.Module]) -> None:
        raise NotImplementedError

    def set_task(self, task: str) -> None:
        """Joint multi-task tuners: the next batches are ``task``'s. Single-task tuners have nothing to switch."""

    def counted_parameters(self) -> int | None:
        """What a target keeps, when the tuner counts it otherwise than its trainable tensors (ProPETL's mask
        bits); None: the trainable tensors."""
        return None

    def config(self) -> dict:
        raise NotImplementedError
