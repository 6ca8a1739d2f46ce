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


def describe_source(location: str, model: str) -> dict:
    """What an external source is, checked against ``model``: format, folder, content hash (of the tensors and
    config as we would use them: the same files give the same hash, a changed tensor another)."""
    from scalearn.io import load_adapter

    folder = local_folder(location)
    kind = source_format(folder)
    if kind == "peft":
        raise InteropError(
            f"{folder}: a PEFT LoRA; the bottleneck-adapter transfer methods need bottleneck sources "
            "(import it with `harness adapters import --format peft` for use as a LoRA)"
        )
    if kind == "adapterhub":
        from scalearn.interop.adapterhub import read_adapterhub

        _, _, provenance = read_adapterhub(folder, model)
        digest = provenance["content_hash"]
    else:
        config, tensors, manifest = load_adapter(folder)
        trained_on = manifest.get("metadata", {}).get("model")
        if trained_on and _canonical(trained_on) != _canonical(model):
            raise InteropError(f"{folder}: an adapter of {trained_on!r}, not of {model!r}")
        digest = content_hash(tensors, config.to_dict())
    return {"location": location, "folder": str(folder), "format": kind, "content_hash": digest}


def install_source(described: dict, model: str, out: str | Path, task: str) -> dict:
    """Write the described source as our adapter artifact in ``out`` (an import, or a copy of ours), checking
    that its content is still what was planned; returns its provenance."""
    from scalearn.interop.adapterhub import import_adapterhub
    from scalearn.io import load_adapter
    from scalearn.layout import ADAPTER_MANIFEST, ADAPTER_WEIGHTS

    now = describe_source(described["location"], model)
    if now["content_hash"] != described["content_hash"]:
        raise InteropError(f"{now['folder']}: changed since the sweep was planned; submit again to plan it anew")
    out = Path(out)
    if now["format"] == "adapterhub":
        import_adapterhub(now["folder"], model, out, task=task)
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
