"""A source adapter given from outside the sweep (an experiment file's `source_adapters`): which format a folder
is in, what its content hash is, and how it becomes the stage-1 artifact the transfer trials read."""

from __future__ import annotations

import shutil
from pathlib import Path

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
    from scalearn.io import LORA_MANIFEST, load_adapter, load_lora

    folder = local_folder(location)
    found = "lora" if (folder / LORA_MANIFEST).exists() else source_format(folder)
    wanted = ("peft", "lora") if kind == "lora" else ("adapterhub", "ours")
    if found not in wanted:
        what = {"peft": "a PEFT LoRA", "lora": "a LoRA", "adapterhub": "an AdapterHub adapter", "ours": "an adapter"}
        need = "LoRA sources (ScaLearn over LoRA)" if kind == "lora" else "bottleneck adapters"
        raise InteropError(f"{folder}: {what[found]}, but this transfer method takes {need}")
    if found == "peft":
        from scalearn.interop.peft import read_peft

        _, _, provenance = read_peft(folder, model)
        return {
            "location": location,
            "folder": str(folder),
            "format": found,
            "content_hash": provenance["content_hash"],
        }
    if found == "lora":
        config, tensors, manifest = load_lora(folder)
        _check_trained_on(folder, manifest, model)
        return {
            "location": location,
            "folder": str(folder),
            "format": found,
            "content_hash": content_hash(tensors, config),
        }
    if found == "adapterhub":
        from scalearn.interop.adapterhub import read_adapterhub

        _, _, provenance = read_adapterhub(folder, model)
        digest = provenance["content_hash"]
    else:
        config, tensors, manifest = load_adapter(folder)
        _check_trained_on(folder, manifest, model)
        digest = content_hash(tensors, config.to_dict())
    return {"location": location, "folder": str(folder), "format": found, "content_hash": digest}


def _check_trained_on(folder: Path, manifest: dict, model: str) -> None:
    trained_on = manifest.get("metadata", {}).get("model")
    if trained_on and _canonical(trained_on) != _canonical(model):
        raise InteropError(f"{folder}: trained on {trained_on!r}, not on {model!r}")


def install_source(described: dict, model: str, out: str | Path, task: str) -> dict:
    """Write the described source as our adapter artifact in ``out`` (an import, or a copy of ours), checking
    that its content is still what was planned; returns its provenance."""
    from scalearn.interop.adapterhub import import_adapterhub
    from scalearn.io import load_adapter
    from scalearn.layout import ADAPTER_MANIFEST, ADAPTER_WEIGHTS

    kind = "lora" if described["format"] in ("peft", "lora") else "adapter"
    now = describe_source(described["location"], model, kind)
    if now["content_hash"] != described["content_hash"]:
        raise InteropError(f"{now['folder']}: changed since the sweep was planned; submit again to plan it anew")
    out = Path(out)
    if now["format"] == "adapterhub":
        import_adapterhub(now["folder"], model, out, task=task)
    elif now["format"] == "peft":
        from scalearn.interop.peft import import_peft

        import_peft(now["folder"], model, out, task=task)
    elif now["format"] == "lora":
        from scalearn.io import LORA_MANIFEST, LORA_WEIGHTS, load_lora

        out.mkdir(parents=True, exist_ok=True)
        for name in (LORA_WEIGHTS, LORA_MANIFEST):
            shutil.copyfile(Path(now["folder"]) / name, out / f".{name}.tmp")
            (out / f".{name}.tmp").replace(out / name)
        load_lora(out)
    else:
        out.mkdir(parents=True, exist_ok=True)
        for name in (ADAPTER_WEIGHTS, ADAPTER_MANIFEST):  # the manifest last, as every artifact
            shutil.copyfile(Path(now["folder"]) / name, out / f".{name}.tmp")
            (out / f".{name}.tmp").replace(out / name)
        load_adapter(out)
    return now


def _canonical(name: str) -> str:
    from scalearn.catalog import canonical_name

    return canonical_name(name)
