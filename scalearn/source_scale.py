"""How large each source adapter's output is against its layer's own, measured once as a transfer trial starts.

A transfer method adds its sources' outputs into every layer: ScaLearn starts with ω summing to 2 in every
dimension (docs/method.md §1.4), AdapterFusion with a value matrix near the identity. A source whose output
dwarfs the layer's own then swamps the representation from the first step, however well the others were
trained. It happens when a source's training diverged: in the first real scaling study an sms_spam adapter
trained at a rate chosen on a smaller model put out 12-23x its layer's own in two layers of MPNet, and
every transfer method on it scored about 0 (docs/results/scaling-real.md). Nothing else shows it: the
source's trial finished, and its folder loads.

``source_scales`` measures, on one batch and before any step, each source's mean output norm over real
tokens divided by the mean norm of the layer's output the adapters read (x, the site's input), at every
layer, and the same for what the transfer layer adds at its start (ScaLearn over source LoRAs: each source's
update of an adapted projection against the projection's own output). ``fit`` records the largest of each
(``TrialResult.source_scales``) and warns above ``SWAMPING_RATIO``.
"""

from __future__ import annotations

import logging
import math

import torch

from scalearn.model import TransferModel
from scalearn.result import SWAMPING_RATIO, swamping_sources
from scalearn.tuners.lora_bank import LoRABank

logger = logging.getLogger(__name__)

OVERFLOW = 1e6
"""The ratio recorded where the mixture made the stream overflow (inf or nan): far above any threshold."""

__all__ = ["OVERFLOW", "SWAMPING_RATIO", "is_measured", "source_scales", "warn_if_swamping"]


def _mean_norm(tensor: torch.Tensor, mask: torch.Tensor | None) -> float:
    norms = tensor.float().norm(dim=-1)
    if mask is not None and mask.shape == norms.shape:
        norms = norms[mask.bool()]
    return float(norms.mean()) if norms.numel() else 0.0


def is_measured(model: TransferModel) -> bool:
    """Whether the model mixes frozen sources: a transfer layer over source adapters, or a bank of source LoRAs."""
    return (model.adapters is not None and model.transfer is not None) or isinstance(model.tuner, LoRABank)


@torch.no_grad()
def source_scales(model: TransferModel, batch: dict, forward=None) -> dict[str, dict]:
    """Per source (by name) and for the mixture (``"mixed"``): the largest ratio over layers of its mean output
    norm to the layer's, and the layer where it is largest: ``{"ratio": float, "layer": int}``. A model that trains
    its own adapter (stage 1) is measured the same way: its adapter is the one source.

    Source adapters are measured against the layer output they read; source LoRAs, each update c_s B_s A_s x of
    an adapted projection against the projection's own output W x (the largest over the projections of a layer).
    ``batch``: model inputs (labels are left out); ``forward``: how to run them (the engine's forward, which
    applies its precision), by default the model itself. The model runs in eval mode (no dropout) and is left as
    it was; nothing trains, and no random numbers are drawn.
    """
    if model.adapters is None and not isinstance(model.tuner, LoRABank):
        raise ValueError("source scales need a model with adapters (its sources, or its own) or source LoRAs")
    mask = batch.get("attention_mask")
    if mask is not None and batch["input_ids"].dim() == 3:  # multiple choice: [B, choices, T] runs as [B·choices, T]
        mask = mask.flatten(0, 1)
    per_layer: dict[int, tuple[list[float], float]] = {}  # layer → (each source's ratio, the mixture's)

    def ratio(tensor: torch.Tensor, own: torch.Tensor) -> float:
        value = _mean_norm(tensor, mask) / max(_mean_norm(own, mask), 1e-12)
        return value if math.isfinite(value) else OVERFLOW  # the stream overflowed (inf or nan) on the way here

    def note(layer: int, own: torch.Tensor, sources: list[torch.Tensor], mixed: torch.Tensor) -> None:
        ratios, mix_ratio = [ratio(t, own) for t in sources], ratio(mixed, own)
        if layer in per_layer:  # several projections in one layer: the largest of each
            before, before_mix = per_layer[layer]
            ratios, mix_ratio = [max(a, b) for a, b in zip(before, ratios, strict=True)], max(before_mix, mix_ratio)
        per_layer[layer] = (ratios, mix_ratio)

    training = model.training
    model.eval()
    inputs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
    if model.adapters is not None:
        names, restore = _watch_adapters(model, note)
    else:
        names, restore = _watch_loras(model.tuner, note)
    if len(set(names)) < len(names):  # two sources of one name keep an entry each
        names = [f"{name}#{index}" for index, name in enumerate(names)]
    try:
        (forward or (lambda given: model(**given)))(inputs)
    finally:
        restore()
        model.train(training)

    def largest(values: dict[int, float]) -> dict:
        layer = max(values, key=values.get)
        return {"ratio": round(values[layer], 4), "layer": layer}

    scales = {
        name: largest({layer: r[index] for layer, (r, _) in per_layer.items()}) for index, name in enumerate(names)
    }
    scales["mixed"] = largest({layer: mixed for layer, (_, mixed) in per_layer.items()})
    return scales


def _watch_adapters(model: TransferModel, note):
    bank, mix = model.adapters, model._mix

    def measuring(layer: int, x: torch.Tensor) -> torch.Tensor:
        hidden = bank.hidden(layer, x)
        outputs = []
        for index in range(bank.num_adapters):
            one = torch.zeros(bank.num_adapters, 1, dtype=x.dtype, device=x.device)
            one[index] = 1.0
            outputs.append(bank.combine(layer, hidden, one))
        mixed = mix(layer, x)
        note(layer, x, outputs, mixed)
        return mixed

    for site in model.sites:
        site.mixer = measuring

    def restore() -> None:
        for site in model.sites:
            site.mixer = mix

    return list(bank.names), restore


def _watch_loras(bank: LoRABank, note):
    def observe(target: str, layer: int, x: torch.Tensor, linear, out: torch.Tensor) -> None:
        own = linear(x)
        note(layer, own, bank.source_updates(target, layer, x), out - own)

    bank.observer = observe

    def restore() -> None:
        bank.observer = None

    return list(bank.names), restore


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
