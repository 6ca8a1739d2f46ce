"""How large each source adapter's output is against its layer's own, measured once as a transfer trial starts.

A transfer method adds its sources' outputs into every layer: ScaLearn starts with ω summing to 2 in every
dimension (docs/method.md §1.4), AdapterFusion with a value matrix near the identity. A source whose output
dwarfs the layer's own then swamps the representation from the first step, however well the others were
trained. It happens when a source's training diverged: in the first real scaling study an sms_spam adapter
trained at a rate chosen on a smaller model put out 12-23x its layer's own in three layers of MPNet, and
every transfer method on it scored about 0 (docs/results/scaling-real.md). Nothing else shows it: the
source's trial finished, and its folder loads.

``source_scales`` measures, on one batch and before any step, each source's mean output norm over real
tokens divided by the mean norm of the layer's output the adapters read (x, the site's input), at every
layer, and the same for what the transfer layer adds at its start. ``fit`` records the largest of each
(``TrialResult.source_scales``) and warns above ``SWAMPING_RATIO``.
"""

from __future__ import annotations

import logging

import torch

from scalearn.model import TransferModel
from scalearn.result import SWAMPING_RATIO, swamping_sources

logger = logging.getLogger(__name__)

__all__ = ["SWAMPING_RATIO", "source_scales", "warn_if_swamping"]


def _mean_norm(tensor: torch.Tensor, mask: torch.Tensor | None) -> float:
    norms = tensor.float().norm(dim=-1)
    if mask is not None and mask.shape == norms.shape:
        norms = norms[mask.bool()]
    return float(norms.mean()) if norms.numel() else 0.0


@torch.no_grad()
def source_scales(model: TransferModel, batch: dict, forward=None) -> dict[str, dict]:
    """Per source (by name) and for the mixture (``"mixed"``): the largest ratio over layers of its mean output
    norm to the layer's, and the layer where it is largest: ``{"ratio": float, "layer": int}``.

    ``batch``: model inputs (labels are left out); ``forward``: how to run them (the engine's forward, which
    applies its precision), by default the model itself. The model runs in eval mode (no dropout) and is left as
    it was; nothing trains, and no random numbers are drawn.
    """
    if model.adapters is None or model.transfer is None:
        raise ValueError("source scales need a transfer model over a bank of source adapters")
    bank, sites = model.adapters, model.sites
    mask = batch.get("attention_mask")
    if mask is not None and batch["input_ids"].dim() == 3:  # multiple choice: [B, choices, T] runs as [B·choices, T]
        mask = mask.flatten(0, 1)
    per_layer: dict[int, tuple[float, list[float], float]] = {}
    mix = model._mix

    def measuring(layer: int, x: torch.Tensor) -> torch.Tensor:
        hidden = bank.hidden(layer, x)
        own = _mean_norm(x, mask)
        outputs = []
        for index in range(bank.num_adapters):
            one = torch.zeros(bank.num_adapters, 1, dtype=x.dtype, device=x.device)
            one[index] = 1.0
            outputs.append(_mean_norm(bank.combine(layer, hidden, one), mask))
        mixed = mix(layer, x)
        per_layer[layer] = (own, outputs, _mean_norm(mixed, mask))
        return mixed

    training = model.training
    model.eval()
    for site in sites:
        site.mixer = measuring
    try:
        inputs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        (forward or (lambda given: model(**given)))(inputs)
    finally:
        for site in sites:
            site.mixer = mix
        model.train(training)

    def largest(values: dict[int, float]) -> dict:
        layer = max(values, key=values.get)
        return {"ratio": round(values[layer], 4), "layer": layer}

    scales = {}
    for index, name in enumerate(bank.names):
        scales[name] = largest({layer: out[index] / max(own, 1e-12) for layer, (own, out, _) in per_layer.items()})
    scales["mixed"] = largest({layer: mixed / max(own, 1e-12) for layer, (own, _, mixed) in per_layer.items()})
    return scales


def warn_if_swamping(scales: dict[str, dict], model_name: str = "") -> list[str]:
    """Warn, once per source, about each source above ``SWAMPING_RATIO``; the names warned about."""
    loud = swamping_sources({"source_scales": scales})
    for name, scale in loud.items():
        logger.warning(
            "source %r%s puts out %.1fx its layer's own output (layer %d): mixed in from the start it swamps the "
            "representation; check that its own training converged (its trial's dev score)",
            name,
            f" on {model_name}" if model_name else "",
            scale["ratio"],
            scale["layer"],
        )
    return list(loud)
