"""Bottleneck adapters in AdapterHub's layout (the ``adapters`` library's ``save_adapter``), both ways.

A folder it writes holds ``adapter_config.json`` and the weights, ``adapter.safetensors`` or (its default)
``pytorch_adapter.bin``, and perhaps a head (``head_config.json``, not read: stage 2 trains its own). The
config's ``config`` block is the adapter config as a dict (no ``architecture`` key for bottleneck adapters);
top-level ``model_type``, ``hidden_size``, ``model_name`` name the base model. One adapter ``NAME`` in layer i
is, in nn.Linear layout (b = d // reduction_factor):

    <loc(i)>.adapters.NAME.adapter_down.0.weight  [b, d]     <loc(i)>.adapters.NAME.adapter_up.weight  [d, b]
    <loc(i)>.adapters.NAME.adapter_down.0.bias    [b]        <loc(i)>.adapters.NAME.adapter_up.bias    [d]

with loc(i) = ``[prefix.]encoder.layer.{i}.output`` on the BERT family (``transformer.layer.{i}.output_adapters``
on DistilBERT) and ``[model.]layers.{i}.output_adapters`` on the decoders; the base-model prefix (``roberta.``,
``model.``, …) is there when the saved model had a head. Our adapter artifact stacks the same tensors over
layers (scalearn/io.py), so the mapping is a stack and an unstack; nothing is re-initialised or transposed.

Only AdapterHub's ``seq_bn`` (Pfeiffer) config is our placement (docs/method.md §1.2, §1.2a): any other
(Houlsby's ``double_seq_bn``, parallel, gated, scaled, with extra layer norms, invertible or PHM adapters)
computes another function and is refused, as are another reduction factor than the file's tensors show, an
activation we do not have, and a base model of another family, width or depth.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import torch

from scalearn.adapters import ACTIVATIONS, AdapterConfig
from scalearn.catalog import canonical_name
from scalearn.interop import InteropError, content_hash, local_folder, read_json, read_weights

CONFIG_NAME = "adapter_config.json"
SAFE_WEIGHTS_NAME = "adapter.safetensors"
WEIGHTS_NAME = "pytorch_adapter.bin"
FORMAT_VERSION = "adapters.1.2.0"
"""The library version whose layout we read and write (its own files say ``adapters.<version>``)."""

# AdapterHub's SeqBnConfig as its to_dict() writes it (the 33 fields of its BnConfig); reduction_factor and
# non_linearity are the adapter's own. The values that make it our placement are checked on import (PLACEMENT).
SEQ_BN = {
    "adapter_residual_before_ln": False,
    "cross_adapter": False,
    "dropout": 0.0,
    "factorized_phm_W": True,
    "factorized_phm_rule": False,
    "hypercomplex_nonlinearity": "glorot-uniform",
    "init_weights": "bert",
    "init_weights_seed": None,
    "inv_adapter": None,
    "inv_adapter_reduction_factor": None,
    "is_parallel": False,
    "learn_phm": True,
    "leave_out": [],
    "ln_after": False,
    "ln_before": False,
    "mh_adapter": False,
    "non_linearity": "relu",
    "original_ln_after": True,
    "original_ln_before": True,
    "output_adapter": True,
    "phm_bias": True,
    "phm_c_init": "normal",
    "phm_dim": 4,
    "phm_init_range": 0.0001,
    "phm_layer": False,
    "phm_rank": 1,
    "reduction_factor": 16,
    "residual_before_ln": True,
    "scaling": 1.0,
    "shared_W_phm": False,
    "shared_phm_rule": True,
    "stochastic_depth": 0.0,
    "use_gating": False,
}
PLACEMENT = {  # what makes an AdapterHub bottleneck config our placement; absent keys take these values
    "mh_adapter": False,  # True: Houlsby's second adapter after attention (double_seq_bn)
    "output_adapter": True,
    "is_parallel": False,
    "original_ln_before": True,
    "original_ln_after": True,
    "residual_before_ln": True,
    "adapter_residual_before_ln": False,
    "ln_before": False,
    "ln_after": False,
    "use_gating": False,
    "scaling": 1.0,
    "phm_layer": False,
    "inv_adapter": None,
    "cross_adapter": False,
}
# the base-model attribute of each family's HF classes (XLM-R's is "roberta"), and the adapters' place in layer i
BASE_PREFIX = {
    "bert": "bert",
    "roberta": "roberta",
    "xlm-roberta": "roberta",
    "electra": "electra",
    "deberta-v2": "deberta",
    "distilbert": "distilbert",
    "mpnet": "mpnet",  # PEFT only: AdapterHub has no MPNet support, so no LOCATION below
}
_BERT_LIKE_LOCATION = "encoder.layer.{i}.output"
LOCATION = {
    **dict.fromkeys(("bert", "roberta", "xlm-roberta", "electra", "deberta-v2"), _BERT_LIKE_LOCATION),
    "distilbert": "transformer.layer.{i}.output_adapters",
}
DECODER_LOCATION = "layers.{i}.output_adapters"
LAST_LAYER_NORM_FAMILIES = ("gemma2", "gemma3_text")
"""Families whose AdapterHub adapters read their input through the last layer's norm (docs/method.md §1.2a)."""
_TENSORS = {"adapter_down.0.weight": "down.weight", "adapter_down.0.bias": "down.bias"}
_TENSORS |= {"adapter_up.weight": "up.weight", "adapter_up.bias": "up.bias"}


def base_prefix(model_type: str) -> str:
    """The base-model attribute of a family's HF task classes (``roberta.``, ``model.``)."""
    from scalearn.backbones import DECODER_TYPES

    if model_type in DECODER_TYPES:
        return "model"
    if model_type in BASE_PREFIX:
        return BASE_PREFIX[model_type]
    raise InteropError(f"model family {model_type!r}: no HF task-class layout known for it")


def _family(model_type: str) -> tuple[str, str]:
    """(base prefix, location pattern) of a family."""
    from scalearn.backbones import DECODER_TYPES

    if model_type in DECODER_TYPES:
        return "model", DECODER_LOCATION
    if model_type in LOCATION:
        return BASE_PREFIX[model_type], LOCATION[model_type]
    raise InteropError(f"model family {model_type!r}: AdapterHub has no layout for it (PEFT's LoRA works)")


def _base_model(model: str) -> tuple[str, int, int, str]:
    """(model_type, hidden size, layers, hub id) of our backbone ``model``, from its config alone."""
    from scalearn.backbones import load_config

    config = load_config(model)
    return config.model_type, config.hidden_size, config.num_hidden_layers, canonical_name(model)


# -- import ---------------------------------------------------------------------------------------


def written_before_3(version) -> bool:
    """Whether an adapter_config.json's ``version`` is adapter-transformers before 3.0: none (the oldest wrote
    none), or a bare version below 3 ("2.3.0"); `adapters` writes "adapters.1.2.0"."""
    if version is None:
        return True
    major = str(version).split(".")[0]
    return major.isdigit() and int(major) < 3


def read_adapterhub(source: str | Path, model: str) -> tuple[AdapterConfig, dict[str, torch.Tensor], dict]:
    """(our config, our stacked tensors, provenance) of the AdapterHub adapter in ``source`` (a folder or a hub
    id), checked against our backbone ``model``."""
    folder = local_folder(str(source))
    config_path = folder / CONFIG_NAME
    saved = read_json(config_path)
    block = saved.get("config")
    if not isinstance(block, dict):
        raise InteropError(f"{config_path}: no `config` block (not an adapter_config.json written by save_adapter)")
    architecture = block.get("architecture")
    if architecture not in (None, "bottleneck"):
        raise InteropError(f"{config_path}: config.architecture is {architecture!r}; only bottleneck adapters import")
    for key, wanted in PLACEMENT.items():
        got = block.get(key, wanted)
        if got != wanted:
            hint = " (Houlsby's double_seq_bn: an adapter after attention too)" if key == "mh_adapter" else ""
            raise InteropError(
                f"{config_path}: config.{key} is {got!r}, our placement (AdapterHub's seq_bn) needs {wanted!r}{hint}"
            )
    activation = str(block.get("non_linearity", "relu")).lower()
    if written_before_3(saved.get("version")):  # adapter-transformers before 3.0: "gelu" was the tanh approximation
        activation = {"gelu": "gelu_new", "gelu_orig": "gelu"}.get(activation, activation)
    if activation not in ACTIVATIONS:
        raise InteropError(
            f"{config_path}: config.non_linearity {activation!r} is not one we have ({', '.join(sorted(ACTIVATIONS))})"
        )
    if block.get("leave_out"):
        raise InteropError(f"{config_path}: config.leave_out {block['leave_out']}: every layer needs its adapter")

    model_type, hidden, layers, hub_id = _base_model(model)
    for key, ours in (("model_type", model_type), ("hidden_size", hidden)):
        if saved.get(key) is not None and saved[key] != ours:
            raise InteropError(f"{config_path}: {key} is {saved[key]!r}, but model {model!r} has {ours!r}")
    theirs = saved.get("model_name")
    if _is_hub_id(theirs) and _is_hub_id(hub_id) and canonical_name(theirs) != hub_id:
        raise InteropError(f"{config_path}: model_name is {theirs!r}, but the trial's model is {hub_id!r}")

    tensors, weights_path = read_weights(folder, SAFE_WEIGHTS_NAME, WEIGHTS_NAME)
    name = saved.get("name") or _only_name(tensors, weights_path)
    prefix, location = _family(model_type)
    if model_type in LAST_LAYER_NORM_FAMILIES:
        logging.getLogger(__name__).warning(
            "%s: AdapterHub gives every layer's %s adapter the last layer's post-FFN norm (a closure in its "
            "init_bottleneck binds the loop's last layer); here each layer uses its own (docs/method.md §1.2a), "
            "so the imported adapter computes another function in every layer but the last",
            folder,
            model_type,
        )
    where = r"(\d+)".join(re.escape(part) for part in location.split("{i}"))
    tensor_names = "|".join(re.escape(key) for key in _TENSORS)
    pattern = re.compile(rf"^(?:{re.escape(prefix)}\.)?{where}\.adapters\.{re.escape(name)}\.({tensor_names})$")
    by_layer: dict[int, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        match = pattern.match(key)
        if match is None:
            if f".adapters.{name}." in key or f"_adapters.{name}." in key:
                raise InteropError(f"{weights_path}: {key} is not at our placement (an adapter elsewhere in the layer)")
            continue  # another adapter's, or a head's
        by_layer.setdefault(int(match.group(1)), {})[_TENSORS[match.group(2)]] = tensor
    if sorted(by_layer) != list(range(layers)):
        raise InteropError(
            f"{weights_path}: adapter {name!r} holds layers {sorted(by_layer) or 'none'} at "
            f"{prefix}.{location.format(i='i')}, model {model!r} has layers 0–{layers - 1}"
        )
    down = by_layer[0].get("down.weight")
    if down is None or down.dim() != 2 or down.shape[1] != hidden:
        raise InteropError(f"{weights_path}: layer 0's adapter_down.0.weight is not [b, {hidden}]")
    bottleneck = int(down.shape[0])
    factor = block.get("reduction_factor", 16)
    if isinstance(factor, dict) or hidden % bottleneck or int(hidden // float(factor)) != bottleneck:
        raise InteropError(
            f"{config_path}: config.reduction_factor {factor!r} with hidden size {hidden} does not give the "
            f"tensors' bottleneck {bottleneck} (one factor, a divisor of the width, for every layer)"
        )
    config = AdapterConfig(hidden, layers, reduction_factor=hidden // bottleneck, activation=activation)
    expected = {"down.weight": (bottleneck, hidden), "down.bias": (bottleneck,)}
    expected |= {"up.weight": (hidden, bottleneck), "up.bias": (hidden,)}
    stacked = {}
    for key, shape in expected.items():
        per_layer = []
        for layer in range(layers):
            tensor = by_layer[layer].get(key)
            if tensor is None or tuple(tensor.shape) != shape:
                got = "absent" if tensor is None else list(tensor.shape)
                raise InteropError(f"{weights_path}: layer {layer} {key}: {got}, expected {list(shape)}")
            per_layer.append(tensor.float())
        stacked[key] = torch.stack(per_layer)
    provenance = {
        "format": "adapterhub",
        "source": str(source),
        "file": str(weights_path),
        "name": name,
        "model_name": theirs,
        "version": saved.get("version"),
        "content_hash": content_hash(stacked, config.to_dict()),
    }
    return config, stacked, provenance


def import_adapterhub(source: str | Path, model: str, out: str | Path, task: str | None = None) -> Path:
    """Write the AdapterHub adapter in ``source`` as our adapter artifact in ``out``; returns ``out``."""
    config, stacked, provenance = read_adapterhub(source, model)
    name = task or provenance["name"]
    return write_adapter(out, config, stacked, name, {"model": model, "task": name, "imported": provenance})


def write_adapter(out: str | Path, config: AdapterConfig, stacked: dict[str, torch.Tensor], name: str, metadata: dict):
    """Our adapter artifact from one adapter's stacked tensors (``down.weight`` [L, b, d], …)."""
    from scalearn.adapters import BottleneckAdapters
    from scalearn.io import save_adapter

    bank = BottleneckAdapters(config, 1, names=[name])
    bank.load_adapter_state(0, stacked)
    save_adapter(Path(out), bank, metadata=metadata)
    return Path(out)


def _only_name(tensors: dict, path: Path) -> str:
    names = {m.group(1) for key in tensors if (m := re.search(r"\.adapters\.([^.]+)\.adapter_", key))}
    if len(names) != 1:
        raise InteropError(f"{path}: holds adapters {sorted(names) or 'none'}; the config names none of them")
    return names.pop()


def _is_hub_id(name) -> bool:
    return isinstance(name, str) and name.count("/") <= 1 and not name.startswith((".", "/", "~")) and bool(name)


# -- export ---------------------------------------------------------------------------------------


def write_adapterhub(
    out: str | Path, config: AdapterConfig, tensors: dict[str, torch.Tensor], model: str, name: str
) -> Path:
    """Write our stacked adapter tensors (``down.weight`` [L, b, d], …) in AdapterHub's layout, as its bare base
    model saves them (no base-model prefix; its loader adds one where the model has a head), in safetensors:
    ``model.load_adapter(out, use_safetensors=True)``."""
    from scalearn.io import write_json, write_tensors

    model_type, hidden, layers, hub_id = _base_model(model)
    if (hidden, layers) != (config.hidden_size, config.num_layers):
        raise InteropError(
            f"adapter is {config.num_layers} layers × {config.hidden_size} wide; model {model!r} is {layers} × {hidden}"
        )
    _, location = _family(model_type)
    flat = {}
    for theirs, ours in _TENSORS.items():
        for layer in range(layers):
            key = f"{location.format(i=layer)}.adapters.{name}.{theirs}"
            flat[key] = tensors[ours][layer].contiguous()
    out = Path(out)
    write_tensors(out / SAFE_WEIGHTS_NAME, flat)
    block = {**SEQ_BN, "reduction_factor": config.reduction_factor, "non_linearity": config.activation}
    from transformers.models.auto.modeling_auto import MODEL_MAPPING_NAMES

    write_json(
        out / CONFIG_NAME,
        {
            "config": block,
            "hidden_size": hidden,
            "model_class": MODEL_MAPPING_NAMES.get(model_type),  # the bare base model: keys without its prefix
            "model_name": hub_id,
            "model_type": model_type,
            "name": name,
            "version": FORMAT_VERSION,
        },
    )
    return out


def export_adapterhub(adapter_dir: str | Path, out: str | Path, model: str | None = None) -> Path:
    """Our adapter artifact in ``adapter_dir`` → AdapterHub's layout in ``out``."""
    from scalearn.io import load_adapter

    config, tensors, manifest = load_adapter(adapter_dir)
    metadata = manifest.get("metadata", {})
    model = model or metadata.get("model")
    if not model:
        raise InteropError(f"{adapter_dir}: its manifest names no model; pass --model")
    name = metadata.get("task") or manifest.get("name") or "adapter"
    return write_adapterhub(out, config, tensors, model, re.sub(r"[^A-Za-z0-9_-]", "_", name))
