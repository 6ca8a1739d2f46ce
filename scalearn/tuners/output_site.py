"""What the tuners at the FFN-output site share (Compacter++, ProPETL): a bottleneck shape and activation
checked one way, and the site's mixer taken whole, where a bottleneck adapter would otherwise sit."""

from __future__ import annotations

from torch import nn

from scalearn.adapters import ACTIVATIONS
from scalearn.tuners.base import Tuner


class OutputSiteTuner(Tuner):
    """Base of a tuner whose ``forward(layer, x)`` returns z at every FFN-output site."""

    label = "this tuner"

    def _bottleneck_setup(self, hidden_size: int, num_layers: int, reduction_factor: int, activation: str) -> int:
        """Check the shape and activation, keep them, and return the bottleneck width d // reduction_factor."""
        bottleneck = hidden_size // reduction_factor
        if reduction_factor < 1 or bottleneck < 1:
            raise ValueError(f"reduction_factor must be in [1, hidden_size={hidden_size}], got {reduction_factor}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation {activation!r} unknown; choose one of {sorted(ACTIVATIONS)}")
        self.hidden_size, self.num_layers, self.reduction_factor = hidden_size, num_layers, reduction_factor
        self.activation, self.bottleneck = activation, bottleneck
        self._activation = ACTIVATIONS[activation]
        return bottleneck

    def config(self) -> dict:
        """What a checkpoint's manifest records: the shape every output-site tuner has, then its own settings."""
        shape = {
            "kind": self.kind,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "reduction_factor": self.reduction_factor,
            "activation": self.activation,
        }
        return {**shape, **self.settings()}

    def settings(self) -> dict:
        """The tuner's own hyper-parameters, beyond the shape (for the manifest)."""
        return {}

    def attach(self, encoder: nn.Module, output_sites: list[nn.Module]) -> None:
        for site in output_sites:
            if site.mixer is not None:
                raise RuntimeError(f"the adapter site already has a mixer; {self.label} needs it to itself")
            site.mixer = self.__call__  # a bound method: the module itself would become the site's child
