"""LoRA modules in PEFT's layout (``PeftModel.save_pretrained``), both ways.

A folder PEFT writes holds ``adapter_config.json`` (a LoraConfig: ``peft_type: LORA``, ``r``, ``lora_alpha``,
``target_modules``, …) and ``adapter_model.safetensors`` (or ``adapter_model.bin``), with keys

    base_model.model.<module path>.lora_A.weight [r, d_in]     base_model.model.<module path>.lora_B.weight [d_out, r]

the adapter's name stripped, and <module path> the projection's path in the HF model PEFT wrapped: with a head
(``AutoModelForSequenceClassification``) it starts with the base-model attribute (``roberta.``, ``model.``),
from a bare ``AutoModel`` it does not. PEFT's update is ``W x + (lora_alpha / r) · B A x`` (``/ √r`` with
``use_rslora``), ours the same (scalearn/tuners/lora.py), so the tensors map one to one; rsLoRA imports as
α' = α · √r. Our LoRA artifact (``lora.safetensors`` + ``lora.json``) stacks A and B over layers per target:
``<role>_A`` [L, r, d_in], ``<role>_B`` [L, d_out, r], roles as scalearn/tuners/sites.py names the projections.

Refused, with one line: another PEFT method, DoRA, trained biases (``bias`` other than ``none``, ``lora_bias``),
per-module ranks or alphas (``rank_pattern``, ``alpha_pattern``), a subset of layers, a target that is not a
projection of ours, shapes that are not the model's.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import torch

from scalearn.interop import InteropError, content_hash, local_folder, read_json, read_weights
from scalearn.io import load_lora, save_lora

CONFIG_NAME = "adapter_config.json"
SAFE_WEIGHTS_NAME = "adapter_model.safetensors"
WEIGHTS_NAME = "adapter_model.bin"
PREFIX = "base_model.model."


def _base(model: str):
    """(config, base-model attribute, roles → module path inside one layer, layers path) of ``model``."""
    from scalearn.backbones import load_config
    from scalearn.interop.adapterhub import base_prefix
    from scalearn.tuners.sites import PROJECTIONS, roles_of

    config = load_config(model)
    prefix = base_prefix(config.model_type)
    names = PROJECTIONS[config.model_type]
    return config, prefix, {role: names[role] for role in roles_of(config.model_type)}, names["layers"]


def _shapes(model: str) -> dict[str, tuple[int, int]]:
    """(d_in, d_out) of each projection of ``model``, read off a weightless (meta) build."""
    from scalearn.backbones import load_encoder
    from scalearn.tuners.sites import projection_shape, roles_of

    encoder = load_encoder(model, pretrained=False, device="meta")
    return {role: projection_shape(encoder, role) for role in roles_of(encoder.config.model_type)}


def _target_modules(paths: dict[str, str], roles) -> list[str] | str:
    """PEFT's target_modules for ``roles``: short names (``q_proj``) where they pick exactly these projections,
    else a regex of their full paths (BERT's ``dense`` is three projections)."""
    short = {role: paths[role].rsplit(".", 1)[-1] for role in paths}
    chosen = [short[role] for role in roles]
    others = {short[role] for role in paths if role not in roles}
    if len(set(chosen)) == len(chosen) and not others & set(chosen):
        return sorted(chosen)
    return r".*\.\d+\.(" + "|".join(re.escape(paths[role]) for role in roles) + ")"


# -- import ---------------------------------------------------------------------------------------


BASE_CHANGING_INITS = ("pissa", "olora", "corda", "loftq")
"""PEFT initialisations that change the base weights (PiSSA, OLoRA, CorDA) or assume a quantised base (LoftQ): such
a LoRA on the original weights computes another function. Converted on save, PEFT writes plain LoRA."""


def read_peft(source: str | Path, model: str) -> tuple[dict, dict[str, torch.Tensor], dict]:
    """(our LoRA config, our stacked tensors, provenance) of the PEFT LoRA in ``source``, checked against ``model``."""
    from scalearn.catalog import canonical_name

    folder = local_folder(str(source))
    config_path = folder / CONFIG_NAME
    saved = read_json(config_path)
    if saved.get("peft_type") != "LORA":
        raise InteropError(f"{config_path}: peft_type is {saved.get('peft_type')!r}, not LORA")
    refusals = {
        "use_dora": (False, None),
        "bias": ("none", None),
        "lora_bias": (False, None),
        "rank_pattern": ({}, None),
        "alpha_pattern": ({}, None),
        "layers_to_transform": (None,),
        "layer_replication": (None,),
    }
    for key, allowed in refusals.items():
        if saved.get(key) not in allowed:
            raise InteropError(f"{config_path}: {key} is {saved[key]!r}; only plain LoRA imports ({allowed[0]!r})")
    init = saved.get("init_lora_weights")
    if isinstance(init, str) and init.lower().startswith(BASE_CHANGING_INITS):
        raise InteropError(
            f"{config_path}: init_lora_weights is {init!r}, a LoRA that assumes a changed base model (PEFT rewrites"
            " its weights); save it converted (path_initial_model_for_weight_conversion) to import it"
        )
    rank, alpha = saved.get("r"), saved.get("lora_alpha")
    if not isinstance(rank, int) or rank < 1 or not isinstance(alpha, int | float):
        raise InteropError(f"{config_path}: r {rank!r} and lora_alpha {alpha!r} must be a rank ≥ 1 and a number")
    if saved.get("use_rslora"):
        alpha = alpha * math.sqrt(rank)  # α / √r = (α √r) / r
    base = saved.get("base_model_name_or_path")
    if (
        isinstance(base, str)
        and base
        and not base.startswith((".", "/", "~"))
        and canonical_name(base) != canonical_name(model)
    ):
        raise InteropError(
            f"{config_path}: base_model_name_or_path is {base!r}, but the trial's model is {canonical_name(model)!r}"
        )

    config, prefix, paths, layers_path = _base(model)
    tensors, weights_path = read_weights(folder, SAFE_WEIGHTS_NAME, WEIGHTS_NAME)
    by_path = {path: role for role, path in paths.items()}
    pattern = re.compile(
        rf"^{re.escape(PREFIX)}(?:{re.escape(prefix)}\.)?{re.escape(layers_path)}\.(\d+)\.(.+)\.lora_([AB])\.weight$"
    )
    found: dict[str, dict[int, dict[str, torch.Tensor]]] = {}
    for key, tensor in tensors.items():
        match = pattern.match(key)
        if match is None:
            if ".lora_" in key:
                raise InteropError(f"{weights_path}: {key} is a LoRA tensor outside {model!r}'s layers")
            continue  # modules_to_save (a head), embeddings
        layer, path, which = int(match.group(1)), match.group(2), match.group(3)
        if path not in by_path:
            raise InteropError(
                f"{weights_path}: {key}: {path} is not a projection we have ({', '.join(sorted(by_path))})"
            )
        found.setdefault(by_path[path], {}).setdefault(layer, {})[which] = tensor
    if not found:
        raise InteropError(f"{weights_path}: no LoRA tensors of {model!r}'s layers ({prefix}.{layers_path}.N.…)")
    layers, model_shapes = config.num_hidden_layers, _shapes(model)
    shapes, stacked = {}, {}
    for role in (r for r in paths if r in found):
        d_in, d_out = model_shapes[role]
        for layer in range(layers):
            pair = found[role].get(layer, {})
            a, b = pair.get("A"), pair.get("B")
            if a is None or b is None or tuple(a.shape) != (rank, d_in) or tuple(b.shape) != (d_out, rank):
                got = [None if t is None else list(t.shape) for t in (a, b)]
                raise InteropError(
                    f"{weights_path}: {paths[role]} in layer {layer}: lora_A, lora_B are {got}, "
                    f"expected [{rank}, {d_in}] and [{d_out}, {rank}] (r = {rank}, every layer)"
                )
        shapes[role] = [d_in, d_out]
        stacked[f"{role}_A"] = torch.stack([found[role][i]["A"].float() for i in range(layers)])
        stacked[f"{role}_B"] = torch.stack([found[role][i]["B"].float() for i in range(layers)])
    ours = {
        "kind": "lora",
        "shapes": shapes,
        "num_layers": layers,
        "rank": rank,
        "alpha": float(alpha),
        "dropout": float(saved.get("lora_dropout", 0.0)),
    }
    provenance = {
        "format": "peft",
        "source": str(source),
        "file": str(weights_path),
        "base_model_name_or_path": base,
        "peft_version": saved.get("peft_version"),
        "content_hash": content_hash(stacked, ours),
    }
    return ours, stacked, provenance


def import_peft(source: str | Path, model: str, out: str | Path, task: str | None = None) -> Path:
    """Write the PEFT LoRA in ``source`` as our LoRA artifact in ``out``."""
    config, stacked, provenance = read_peft(source, model)
    name = task or Path(str(source).rstrip("/")).name
    return save_lora(out, config, stacked, name, {"model": model, "task": name, "imported": provenance})


# -- export ---------------------------------------------------------------------------------------


def write_peft(out: str | Path, config: dict, tensors: dict[str, torch.Tensor], model: str) -> Path:
    """Our stacked LoRA tensors in PEFT's layout, as PEFT saves a LoRA on the bare ``AutoModel`` (keys without
    the base-model attribute, task_type FEATURE_EXTRACTION): load it with
    ``PeftModel.from_pretrained(AutoModel.from_pretrained(base), out)``. The head is ours and not exported."""
    from scalearn.catalog import canonical_name
    from scalearn.io import write_json, write_tensors

    base_config, _, paths, layers_path = _base(model)
    if config.get("num_layers") != base_config.num_hidden_layers:
        raise InteropError(
            f"LoRA has {config.get('num_layers')} layers; model {model!r} has {base_config.num_hidden_layers}"
        )
    flat, model_shapes = {}, _shapes(model)
    for role, (d_in, d_out) in config["shapes"].items():
        if tuple(model_shapes.get(role, ())) != (d_in, d_out):
            raise InteropError(f"LoRA's {role} is {d_in} → {d_out}; model {model!r}'s is {model_shapes.get(role)}")
        for layer in range(config["num_layers"]):
            at = f"{PREFIX}{layers_path}.{layer}.{paths[role]}"
            flat[f"{at}.lora_A.weight"] = tensors[f"{role}_A"][layer].contiguous()
            flat[f"{at}.lora_B.weight"] = tensors[f"{role}_B"][layer].contiguous()
    out = Path(out)
    write_tensors(out / SAFE_WEIGHTS_NAME, flat, metadata={"format": "pt"})
    write_json(
        out / CONFIG_NAME,
        {
            "peft_type": "LORA",
            "task_type": "FEATURE_EXTRACTION",
            "base_model_name_or_path": canonical_name(model),
            "r": config["rank"],
            "lora_alpha": config["alpha"],
            "lora_dropout": config.get("dropout", 0.0),
            "target_modules": _target_modules(paths, list(config["shapes"])),
            "bias": "none",
            "fan_in_fan_out": False,
            "modules_to_save": None,
            "init_lora_weights": True,
            "layers_to_transform": None,
            "layers_pattern": None,
            "rank_pattern": {},
            "alpha_pattern": {},
            "use_rslora": False,
            "use_dora": False,
            "inference_mode": True,
            "revision": None,
        },
    )
    return out


def export_peft(lora_dir: str | Path, out: str | Path, model: str | None = None) -> Path:
    """A LoRA artifact or a trained ``lora`` model folder → PEFT's layout in ``out``."""
    config, tensors, manifest = load_lora(lora_dir)
    model = model or manifest.get("metadata", {}).get("model") or manifest.get("encoder")
    if not model:
        raise InteropError(f"{lora_dir}: its manifest names no model; pass --model")
    return write_peft(out, config, tensors, model)
