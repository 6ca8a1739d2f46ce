"""The store: the truth about which trials are done. One folder per trial key.

    <root>/trials/<key>/trial.json     the resolved config (written when the trial is first planned to run)
    <root>/trials/<key>/result.json    written last and atomically: its presence means "done"
    <root>/trials/<key>/model/ …       artifacts (adapter/, model/) written by the training loop
    <root>/trials/<key>/failed.json    the last failure: attempts and traceback
    <root>/trials/<key>/lease.json     who is running it, until when (so two submits never train it twice)

A local directory by default. (fsspec URLs for object stores are the next step; a shared POSIX path,
e.g. NFS on a cluster, works today.)
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
import uuid
from pathlib import Path

STATES = ("done", "running", "failed", "pending")


# The store stays free of torch imports: every Ray worker imports it, and a sweep has thousands of trials.
def write_json(path: Path, data: dict) -> None:
    """Atomically: a temporary file in the same folder, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, default=str)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> dict:
    with open(path) as f:
        return json.load(f)


class Store:
    def __init__(self, root: str | Path):
        if "://" in str(root) and not str(root).startswith("file://"):
            raise ValueError(f"--store {root}: only local or shared paths are supported so far")
        self.root = Path(str(root).removeprefix("file://")).expanduser().resolve()

    def trial_dir(self, key: str) -> Path:
        return self.root / "trials" / key

    def is_done(self, key: str) -> bool:
        return (self.trial_dir(key) / "result.json").exists()

    def result(self, key: str) -> dict:
        return read_json(self.trial_dir(key) / "result.json")

    def write_trial(self, key: str, summary: dict) -> None:
        path = self.trial_dir(key) / "trial.json"
        if not path.exists():
            write_json(path, summary)

    def write_result(self, key: str, result: dict) -> None:
        write_json(self.trial_dir(key) / "result.json", result)
        (self.trial_dir(key) / "failed.json").unlink(missing_ok=True)

    def write_failure(self, key: str, attempts: int, traceback: str) -> None:
        write_json(self.trial_dir(key) / "failed.json", {"attempts": attempts, "traceback": traceback,
                                                          "time": time.time()})  # fmt: skip

    def failure(self, key: str) -> dict | None:
        path = self.trial_dir(key) / "failed.json"
        return read_json(path) if path.exists() else None

    # -- leases ---------------------------------------------------------------------------------

    def acquire(self, key: str, ttl_seconds: float = 6 * 3600) -> str | None:
        """A lease on the trial, or None when another live owner holds it. Created with O_EXCL."""
        path = self.trial_dir(key) / "lease.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    lease = json.loads(path.read_text())
                except (OSError, json.JSONDecodeError):
                    lease = {"expires": 0}
                if lease.get("expires", 0) > time.time():
                    return None
                path.unlink(missing_ok=True)  # stale: its owner died
                continue
            with os.fdopen(fd, "w") as f:
                json.dump({"owner": owner, "expires": time.time() + ttl_seconds}, f)
            return owner
        return None

    def release(self, key: str, owner: str) -> None:
        path = self.trial_dir(key) / "lease.json"
        try:
            if json.loads(path.read_text()).get("owner") == owner:
                path.unlink()
        except (OSError, json.JSONDecodeError):
            pass

    def state(self, key: str) -> str:
        if self.is_done(key):
            return "done"
        lease = self.trial_dir(key) / "lease.json"
        if lease.exists():
            try:
                if json.loads(lease.read_text()).get("expires", 0) > time.time():
                    return "running"
            except (OSError, json.JSONDecodeError):
                pass
        return "failed" if (self.trial_dir(key) / "failed.json").exists() else "pending"
