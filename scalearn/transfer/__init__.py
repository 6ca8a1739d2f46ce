"""Transfer layers: what mixes the source adapters' outputs at each layer.

Each takes (layer, x, adapters) and returns z, which the backbone adds to the FFN residual before the
frozen LayerNorm: LN_l(z + f + h_att).
"""

from __future__ import annotations

from scalearn.transfer.average import FixedMix
from scalearn.transfer.base import TransferLayer
from scalearn.transfer.fusion import AdapterFusion
from scalearn.transfer.scalearn import ScaLearn

TRANSFER_KINDS: dict[str, type[TransferLayer]] = {cls.kind: cls for cls in (ScaLearn, AdapterFusion, FixedMix)}


def transfer_from_config(config: dict) -> TransferLayer:
    """Rebuild a transfer layer from the dict its ``config()`` wrote."""
    config = dict(config)
    kind = config.pop("kind", None)
    if kind not in TRANSFER_KINDS:
        raise ValueError(f"unknown transfer layer kind {kind!r}; known: {sorted(TRANSFER_KINDS)}")
    return TRANSFER_KINDS[kind](**config)


__all__ = ["AdapterFusion", "FixedMix", "ScaLearn", "TRANSFER_KINDS", "TransferLayer", "transfer_from_config"]
