"""A source adapter given from outside the sweep (an experiment file's `source_adapters`): which format a folder
is in, what its content hash is, and how it becomes the stage-1 artifact the transfer trials read."""

from __future__ import annotations

from pathlib import Path

from scalearn.catalog import canonical_name
from scalearn.interop import InteropError, content_hash, local_folder


def source_format(folder: Path) -> str:
    """ "ours" (adapter.json), "adapterhub" (adapter_config.json with a `config` block) or "peft" (with
    `peft_type`)."""
    from scalearn.interop import read_json
    from scalearn.layout import ADAPTER_MANIFEST

    if (folder / ADAPTER_MANIFEST).exists():
        return "ours"
    if (folder / "adapter_config.json").exists():
        return "peft" if "peft_type" in read_json(folder / "adapter_config.json") else "adapterhub"
    raise InteropError(f"{folder}: neither {ADAPTER_MANIFEST} (ours) nor adapter_config.json (AdapterHub, PEFT)")


def describe_source(location: str, model: str, kind: str = "adapter") -> dict:
    """What an external source is, checked against ``model``: format, folder, content hash (of the tensors and
    config as we would use them: the same files give the same hash, a changed tensor another). ``kind``: what
    the transfer method needs, "adapter" (bottleneck) or "lora"."""
    described, _ = _read(location, model, kind)
    return described


def install_source(described: dict, model: str, out: str | Path, task: str) -> dict:
    """Write the described source as our artifact in ``out``, from one read of its files, checking that its
    content is still what was planned; returns its provenance."""
    kind = "lora" if described["format"] in ("peft", "lora") else "adapter"
    now, write = _read(described["location"], model, kind)
    if now["content_hash"] != described["content_hash"]:
        raise InteropError(f"{now['folder']}: changed since the sweep was planned; submit again to plan it anew")
    write(Path(out), task)
    return now


def _read(location: str, model: str, kind: str):
    """(description, write(out, task)) of a source: its files read once, checked, hashed, and how to write
    what was read as our artifact (an adapter folder, or a LoRA folder)."""
    from scalearn.interop.adapterhub import read_adapterhub, write_adapter
    from scalearn.interop.peft import read_peft
    from scalearn.io import LORA_MANIFEST, load_adapter, load_lora, save_lora

    folder = local_folder(location)
    found = "lora" if (folder / LORA_MANIFEST).exists() else source_format(folder)
    wanted = ("peft", "lora") if kind == "lora" else ("adapterhub", "ours")
    if found not in wanted:
        what = {"peft": "a PEFT LoRA", "lora": "a LoRA", "adapterhub": "an AdapterHub adapter", "ours": "an adapter"}
        need = "LoRA sources (ScaLearn over LoRA)" if kind == "lora" else "bottleneck adapters"
        raise InteropError(f"{folder}: {what[found]}, but this transfer method takes {need}")
    if found in ("peft", "adapterhub"):
        config, tensors, provenance = (read_peft if found == "peft" else read_adapterhub)(folder, model)
        digest, metadata = provenance["content_hash"], {"model": model, "imported": provenance}
    else:
        config, tensors, manifest = load_lora(folder) if found == "lora" else load_adapter(folder)
        trained_on = manifest.get("metadata", {}).get("model")
        if trained_on and canonical_name(trained_on) != canonical_name(model):
            raise InteropError(f"{folder}: trained on {trained_on!r}, not on {model!r}")
        digest = content_hash(tensors, config if found == "lora" else config.to_dict())
        metadata = manifest.get("metadata", {})
    save = save_lora if kind == "lora" else write_adapter

    def write(out: Path, task: str) -> None:
        save(out, config, tensors, task, {**metadata, "task": task})

    return {"location": location, "folder": str(folder), "format": found, "content_hash": digest}, write
