"""How a benchmark's JSON records the run that made it: the command, the date, the commit, the package versions,
the hardware and the settings of the environment that change timings (threads, the allocator). Every benchmark
writes its result through `write_record`, so a figure quoted from a JSON can be traced to the code that made it."""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
from pathlib import Path

TIMING_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_")


def made() -> dict:
    """What made this run (the commit and versions from scalearn.provenance, which imports torch)."""
    record = {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "env": {name: os.environ[name] for name in TIMING_ENV if name in os.environ},
    }
    try:
        from scalearn.provenance import git_commit, package_versions

        record.update(git_commit=git_commit(), packages=package_versions())
    except ImportError:  # run outside the project's environment
        pass
    return record


def write_record(out: str | Path, payload: dict) -> Path:
    """``payload`` as ``out`` (JSON), with `made` under "made"."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**payload, "made": made()}, indent=2) + "\n")
    return out
