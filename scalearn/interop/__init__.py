"""Adapters in other libraries' formats, both ways, without those libraries as dependencies.

- ``adapterhub``: bottleneck adapters as AdapterHub's ``adapters`` writes them (``save_adapter``): its
  ``seq_bn`` (Pfeiffer) config, the placement this project implements (docs/method.md §1.2, §1.2a).
- ``peft``: LoRA modules as PEFT writes them (``save_pretrained``), for the ``lora`` method.

Imports read ``.safetensors``, or a ``.bin`` with ``torch.load(weights_only=True)`` only (tensors, never
arbitrary objects); exports write safetensors. Whatever does not fit (another placement, size, activation,
base model) is refused with one line that names the file and the mismatch (``InteropError``).
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import torch

from scalearn.io import ArtifactError


class InteropError(ArtifactError):
    """A file in another library's format that does not fit, or is not what it claims; str() is one line."""


def read_json(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InteropError(f"{path}: missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InteropError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise InteropError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def read_weights(folder: Path, safetensors_name: str, bin_name: str) -> tuple[dict[str, torch.Tensor], Path]:
    """The folder's tensors: the safetensors file if there is one, else the .bin read as tensors only."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    safe, pickled = folder / safetensors_name, folder / bin_name
    if safe.exists():
        try:
            return load_file(str(safe)), safe
        except (SafetensorError, OSError) as error:
            raise InteropError(f"{safe}: not a readable safetensors file ({error})") from None
    if pickled.exists():
        try:
            state = torch.load(pickled, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as error:
            if "unsupported global" in str(error).lower():  # it names a class or function: torch refused to run it
                raise InteropError(
                    f"{pickled}: holds more than tensors (a pickle with code or objects), so it was not loaded; "
                    f"ask for the adapter as {safetensors_name}"
                ) from None
            raise InteropError(f"{pickled}: not a readable tensor file (not a torch pickle of tensors)") from None
        except Exception as error:  # a zip that is not torch's, truncated, …
            first = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise InteropError(f"{pickled}: not a readable tensor file ({type(error).__name__}: {first})") from None
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise InteropError(f"{pickled}: expected a dict of tensors")
        return state, pickled
    raise InteropError(f"{folder}: neither {safetensors_name} nor {bin_name} is there")


def content_hash(tensors: dict[str, torch.Tensor], config: dict) -> str:
    """A hash of the imported tensors (names, dtypes, shapes, bytes) and config: the same files, the same hash."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        digest.update(f"{name}:{tensor.dtype}:{list(tensor.shape)}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def local_folder(source: str) -> Path:
    """``source`` as a folder: a local path, else a hub repository from the local HF cache (or the hub when
    online), read with huggingface_hub."""
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise InteropError(f"{source}: a file, not a folder (give the folder that holds adapter_config.json)")
    if source.count("/") != 1 or source.startswith((".", "/")):
        raise InteropError(f"{source}: no such folder, and not a hub id (owner/name)")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(source))
    except Exception as error:
        raise InteropError(
            f"{source}: not a local folder, and the hub repository is not in the HF cache ({type(error).__name__}); "
            f"download it where there is internet (`hf download {source}`)"
        ) from None
