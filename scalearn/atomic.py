"""The project's one way to write a file: to a temporary name in the same folder, then renamed into place,
so a crash or Ctrl-C leaves the old file or the new one, never half of one. Torch-free (the harness and
every Ray worker import it)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | Path, write: Callable[[str], None], durable: bool = False) -> None:
    """``write(temporary_path)`` fills the file; it then replaces ``path`` at once. ``durable``: the file's
    bytes reach the disk before the rename (after a machine crash, a file renamed before its bytes were written
    can read empty); for the records whose presence means something (a trial's result)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes files private; stores and artifacts are shared (e.g. on NFS)
        if durable:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, data: dict, *, indent: int | None = None, durable: bool = False) -> None:
    """JSON, atomically (``durable``: see `atomic_write`); with ``indent`` for files people read (manifests),
    keys sorted then."""

    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=indent, sort_keys=indent is not None, default=str)
            if indent is not None:
                f.write("\n")

    atomic_write(path, write, durable)


def read_json(path: str | Path) -> dict:
    with open(path) as f:
        return json.load(f)
