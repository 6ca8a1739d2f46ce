"""What a transfer layer is: ``forward(layer, x, adapters) → z`` at every adapter site, plus hooks that the
loop and the model call on every layer, each with a default here (so no caller probes with ``hasattr``)."""

from __future__ import annotations

import torch
from torch import nn


class TransferLayer(nn.Module):
    kind = ""

    def regularization_loss(self) -> torch.Tensor | None:
        """What the layer adds to the task loss of each step (AdapterFusion's value regulariser); None: nothing."""
        return None

    def start_recording(self) -> None:
        """From now on, keep a summary of what the layer does (the loop records the test split)."""

    def stop_recording(self) -> None:
        """Stop adding to the summary; what was recorded stays."""

    def see_mask(self, mask: torch.Tensor | None) -> None:
        """The attention mask [N, T] of the batch the model runs next (0: padding; None: every token real), so a
        recording counts the real tokens only and does not depend on how the rows were batched."""

    def recorded(self) -> dict | None:
        """The recorded summary (written beside the checkpoint as attention.json), or None."""
        return None

    def config(self) -> dict:
        """What rebuilds the layer (``transfer_from_config``)."""
        raise NotImplementedError
