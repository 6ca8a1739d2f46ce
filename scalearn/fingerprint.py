"""What a result records of the backbone weights it trained on (``provenance.weights`` in result.json).

A model name is not an identity: a hub id can hold other weights after a new commit, a local folder anything, and
a packaged backbone is a conversion of a hub checkpoint. The sha256 of the weight files is, so every trial records
it, with where the weights came from and the dtype they were loaded in.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from torch import nn

from scalearn.packaged import built_folder, models_dir, read_manifest, sha256_of

WEIGHT_PATTERNS = ("model*.safetensors", "pytorch_model*.bin")


def weights_fingerprint(encoder: nn.Module) -> dict:
    """What a result records of the backbone weights it trained on: the sha256 of the weight files (a random-init
    model: of its config and init seed), where they came from, and the dtype they were loaded in.

    The same hub id can hold other weights after a new commit, and a local folder anything: this is what tells
    two results apart when their model names agree."""
    name = encoder.config.name_or_path
    location = getattr(encoder, "_scalearn_weights", None)
    record = {"name": name, "dtype": str(next(encoder.parameters()).dtype).removeprefix("torch.")}
    if location is None:
        config = json.dumps(encoder.config.to_diff_dict(), sort_keys=True, default=str)
        seed = getattr(encoder, "_scalearn_init_seed", 0)
        digest = hashlib.sha256(f"{config}|seed={seed}".encode()).hexdigest()
        return {**record, "source": "random init", "sha256": digest}
    folder = Path(location) if os.path.isdir(location) else _cached_snapshot(location)
    manifest = read_manifest(folder) if folder is not None else None
    if manifest is not None and built_folder(name) == folder:
        packages = ", ".join(f"{k}=={v}" for k, v in manifest["packages"].items())
        return {**record, "source": f"packages {packages}", "sha256": manifest["weights_sha256"]}
    files = sorted(path for pattern in WEIGHT_PATTERNS for path in folder.glob(pattern)) if folder is not None else []
    if not files:
        return {**record, "source": location, "sha256": None}
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.name}:{file_sha256(path)}\n".encode())
    return {**record, "source": str(folder), "sha256": digest.hexdigest()}


def _cached_snapshot(repo: str) -> Path | None:
    """The HF cache's snapshot folder of a hub id (where from_pretrained read it), if cached."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, "config.json")
    return Path(found).parent if isinstance(found, str) else None


def file_sha256(path: Path) -> str:
    """sha256 of a file, remembered by (real path, size, mtime) in the models cache: an 8B checkpoint is hashed
    once per machine, not once per trial."""
    stat = path.stat()
    key = f"{os.path.realpath(path)}|{stat.st_size}|{stat.st_mtime_ns}"
    memo_path = models_dir() / "fingerprints.json"
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    if key in memo:
        return memo[key]
    memo[key] = sha256_of(path)
    try:  # a cache only: a read-only home or a concurrent writer costs a re-hash, nothing else
        memo_path.parent.mkdir(parents=True, exist_ok=True)
        scratch = memo_path.with_name(f"{memo_path.name}.{os.getpid()}")
        scratch.write_text(json.dumps(memo))
        scratch.replace(memo_path)
    except OSError:
        pass
    return memo[key]
