"""Saving and loading adapters, transfer layers, heads (and full encoders): safetensors + JSON.

Nothing here unpickles. Every file is written to a temporary name and renamed into place, and each
artifact's JSON manifest is written last, so a folder without its manifest is an incomplete artifact
and is never read as a finished one.

Artifacts
- adapter folder:  adapter.safetensors (down/up weights and biases stacked over layers, nn.Linear
  layout) + adapter.json (shape, name, free metadata). Stage 1 writes these; stage 2 reads them.
- LoRA folder:     lora.safetensors (per target projection <role>_A [L, r, d_in], <role>_B [L, d_out, r]) +
  lora.json (LoRA.config(), name, metadata): a trained `lora` trial's source artifact, or an imported PEFT
  LoRA; stage 2 of the ScaLearn-over-LoRA methods reads these.
- model folder:    head.safetensors, and what the method trained or derived: transfer.safetensors
  (ω of every ScaLearn variant, the ++ ones included; AdapterFusion's Q, K, V; fixed weights),
  adapter.safetensors, tuner.safetensors ((IA)³, LoRA, Compacter++), encoder.safetensors (full
  fine-tuning) + model.json last.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from scalearn.adapters import AdapterConfig, BottleneckAdapters
from scalearn.atomic import atomic_write
from scalearn.atomic import write_json as atomic_json
from scalearn.layout import ADAPTER_MANIFEST, ADAPTER_WEIGHTS, FORMAT_VERSION, MODEL_MANIFEST
from scalearn.model import TransferModel

LORA_WEIGHTS, LORA_MANIFEST = "lora.safetensors", "lora.json"


class ArtifactError(ValueError):
    """An artifact folder that is missing, incomplete, or does not fit the model it is loaded into."""


def write_json(path: Path, data: dict) -> None:
    """A manifest: indented, keys sorted, written atomically."""
    atomic_json(path, data, indent=2)


def write_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    cpu = {name: t.detach().to("cpu").contiguous() for name, t in tensors.items()}
    atomic_write(path, lambda tmp: save_file(cpu, tmp, metadata=metadata))


def read_json(path: Path) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise ArtifactError(f"{path}: missing (not a finished artifact)") from None
    except json.JSONDecodeError as error:
        raise ArtifactError(f"{path}: not valid JSON ({error})") from None


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    if not Path(path).exists():
        raise ArtifactError(f"{path}: missing")
    return load_file(str(path))


def read_fp32(path: Path) -> dict[str, torch.Tensor]:
    """A frozen artifact's tensors in fp32, however they were saved (a bf16 adapter from elsewhere, say): the
    trial decides their storage dtype (``backbone_dtype``), not the file."""
    return {name: t.float() if t.is_floating_point() else t for name, t in read_tensors(path).items()}


# -- adapters ---------------------------------------------------------------------------------------


def save_adapter(directory: str | Path, adapters: BottleneckAdapters, index: int = 0, metadata: dict | None = None):
    """Write adapter ``index`` of ``adapters`` as a stand-alone artifact (a future source adapter)."""
    directory = Path(directory)
    write_tensors(directory / ADAPTER_WEIGHTS, adapters.adapter_state(index))
    write_json(
        directory / ADAPTER_MANIFEST,
        {
            "format_version": FORMAT_VERSION,
            "kind": "bottleneck_adapter",
            "name": adapters.names[index],
            "config": adapters.config.to_dict(),
            "metadata": metadata or {},
        },
    )


def load_adapter(directory: str | Path) -> tuple[AdapterConfig, dict[str, torch.Tensor], dict]:
    """(config, tensors, manifest) of one adapter artifact."""
    directory = Path(directory)
    manifest = adapter_manifest(directory)
    return AdapterConfig(**manifest["config"]), read_fp32(directory / ADAPTER_WEIGHTS), manifest


def adapter_manifest(directory: str | Path) -> dict:
    """An adapter artifact's manifest, checked to be one."""
    path = Path(directory) / ADAPTER_MANIFEST
    manifest = read_json(path)
    if manifest.get("kind") != "bottleneck_adapter":
        raise ArtifactError(f"{path}: kind is {manifest.get('kind')!r}, not an adapter")
    return manifest


def _source_name(manifest: dict) -> str:
    """The task an adapter was trained on names it (its own name is the generic "task")."""
    return manifest.get("metadata", {}).get("task") or manifest["name"]


def source_names(directories: Sequence[str | Path]) -> list[str]:
    """The names ``load_source_bank`` gives its adapters, from the manifests alone (no tensors read)."""

    def manifest(directory) -> dict:
        lora = Path(directory) / LORA_MANIFEST
        return read_json(lora) if lora.exists() else adapter_manifest(directory)

    return [_source_name(manifest(directory)) for directory in directories]


def load_source_bank(directories: Sequence[str | Path], names: Sequence[str] | None = None) -> BottleneckAdapters:
    """The frozen source bank of a transfer trial: one adapter per folder, in the given order.

    The paper's order puts the target's own adapter last (docs/method.md §1.1); the caller decides the order.
    """
    if not directories:
        raise ArtifactError("a source bank needs at least one adapter folder")
    loaded = [load_adapter(d) for d in directories]
    config = loaded[0][0]
    for directory, (other, _, _) in zip(directories, loaded, strict=True):
        if other != config:
            raise ArtifactError(f"{directory}: adapter shape {other} differs from the first source's {config}")
    if names is None:
        names = [_source_name(manifest) for _, _, manifest in loaded]
    bank = BottleneckAdapters.stack(config, [state for _, state, _ in loaded], names=names)
    return bank.requires_grad_(False)


# -- LoRA artifacts (a trained `lora` trial's, or an imported PEFT LoRA) ------------------------------


def save_lora(directory: str | Path, config: dict, tensors: dict[str, torch.Tensor], name: str, metadata: dict) -> Path:
    """A LoRA artifact: the stacked tensors and a manifest (``config``: what LoRA.config() records), manifest last."""
    directory = Path(directory)
    write_tensors(directory / LORA_WEIGHTS, tensors)
    manifest = {"format_version": FORMAT_VERSION, "kind": "lora_adapter", "name": name, "config": config}
    write_json(directory / LORA_MANIFEST, {**manifest, "metadata": metadata})
    return directory


def load_lora(directory: str | Path) -> tuple[dict, dict[str, torch.Tensor], dict]:
    """(config, tensors, manifest) of a LoRA artifact, or of a trained ``lora`` model folder (model.json)."""
    directory = Path(directory)
    if (directory / LORA_MANIFEST).exists():
        manifest = read_json(directory / LORA_MANIFEST)
        return manifest["config"], read_fp32(directory / LORA_WEIGHTS), manifest
    if (directory / MODEL_MANIFEST).exists():
        manifest = read_json(directory / MODEL_MANIFEST)
        tuner = manifest.get("tuner") or {}
        if tuner.get("kind") != "lora":
            raise ArtifactError(f"{directory / MODEL_MANIFEST}: tuner is {tuner.get('kind')!r}, not a LoRA model")
        return tuner, read_fp32(directory / "tuner.safetensors"), manifest
    raise ArtifactError(
        f"{directory}: neither {LORA_MANIFEST} (a LoRA artifact) nor {MODEL_MANIFEST} (a trained model)"
    )


# -- whole trained models ---------------------------------------------------------------------------


def _components(model: TransferModel) -> dict[str, dict[str, torch.Tensor]]:
    """What a checkpoint of ``model`` holds: everything it trained or derived, nothing it loaded."""
    components = {"head": model.head.state_dict()}
    if model.transfer is not None:
        components["transfer"] = model.transfer.state_dict()
    if model.adapters is not None and model.adapter_role != "sources":
        components["adapter"] = model.adapters.adapter_state(0)
    if model.tuner is not None:
        components["tuner"] = model.tuner.state_dict()
    if any(p.requires_grad for p in model.encoder.parameters()):
        components["encoder"] = model.encoder.state_dict()
    return components


def save_model(directory: str | Path, model: TransferModel, metadata: dict | None = None) -> None:
    """Checkpoint a model's own state (not its frozen encoder or sources) with a manifest."""
    directory = Path(directory)
    components = _components(model)
    for name, tensors in components.items():
        write_tensors(directory / f"{name}.safetensors", tensors)
    manifest = {
        "format_version": FORMAT_VERSION,
        "kind": "transfer_model",
        "encoder": model.encoder.config.name_or_path,
        "head": model.head.config.to_dict(),
        "adapter_role": model.adapter_role if model.adapters is not None else None,
        "adapter": model.adapters.config.to_dict() if model.adapters is not None else None,
        "sources": model.adapters.names if model.adapter_role == "sources" else [],
        "transfer": model.transfer.config() if model.transfer is not None else None,
        "tuner": model.tuner.config() if model.tuner is not None else None,
        "components": sorted(components),
        "metadata": metadata or {},
    }
    write_json(directory / MODEL_MANIFEST, manifest)


def whole_shapes(model: TransferModel) -> dict[str, dict[str, tuple[int, ...]]]:
    """Each component's tensor names and whole shapes, as a checkpoint of ``model`` must hold them — from the
    parameters' ``ds_shape`` where ZeRO-3 has partitioned them (their own ``shape`` is then a shard's)."""

    def whole(tensor) -> tuple[int, ...]:
        return tuple(getattr(tensor, "ds_shape", tensor.shape))

    shapes = {}
    modules = {"head": model.head, "transfer": model.transfer, "tuner": model.tuner, "encoder": model.encoder}
    for name, module in modules.items():
        if module is None or (name == "encoder" and not any(p.requires_grad for p in module.parameters())):
            continue
        parameters = dict(module.named_parameters())
        shapes[name] = {key: whole(parameters.get(key, t)) for key, t in module.state_dict(keep_vars=True).items()}
    if model.adapters is not None and model.adapter_role != "sources":
        layers, width, _ = whole(model.adapters.down_weight)
        r = model.adapters.config.bottleneck
        shapes["adapter"] = {
            "down.weight": (layers, r, width),
            "down.bias": (layers, r),
            "up.weight": (layers, width, r),
            "up.bias": (layers, width),
        }
    return shapes


def verify_saved(files: dict[Path, dict[str, tuple[int, ...]]]) -> None:
    """Read back each written safetensors file and check its tensors' names and shapes against the model's
    (``whole_shapes``): a partitioned parameter saved outside its gather holds an empty shard, and a result
    must not be recorded on top of it."""
    for path, expected in files.items():
        got = {name: tuple(t.shape) for name, t in read_tensors(path).items()}
        if got != expected:
            wrong = sorted(set(got) ^ set(expected)) or [n for n in sorted(got) if got[n] != expected[n]]
            detail = ", ".join(f"{n}: {got.get(n, 'absent')} (needs {expected.get(n, 'nothing')})" for n in wrong[:3])
            raise ArtifactError(
                f"{path}: {len(got)} tensors where the model has {len(expected)}, or shapes differ — {detail}"
            )


def load_model_state(directory: str | Path, model: TransferModel) -> dict:
    """Load a checkpoint into a model built the same way; returns the manifest."""
    directory = Path(directory)
    manifest = read_json(directory / MODEL_MANIFEST)
    expected = sorted(_components(model))
    if manifest["components"] != expected:
        raise ArtifactError(f"{directory}: holds {manifest['components']}, but this model needs {expected}")
    for name in expected:
        tensors = read_tensors(directory / f"{name}.safetensors")
        try:
            if name == "adapter":
                model.adapters.load_adapter_state(0, tensors)
            else:
                getattr(model, name).load_state_dict(tensors, strict=True)
        except (RuntimeError, ValueError) as error:
            raise ArtifactError(f"{directory / (name + '.safetensors')}: does not fit the model: {error}") from None
    return manifest
