"""Where a result came from: package versions, the project's commit, the hardware, peak memory."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch

PACKAGES = ("torch", "transformers", "datasets", "tokenizers", "safetensors", "deepspeed", "ray", "mlflow", "numpy")


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "absent"
    return versions


@lru_cache(maxsize=1)
def git_commit() -> str:
    """The project's commit, with '+dirty' when the tree has changes; 'unknown' outside a checkout."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        if commit.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return commit.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def hardware(device: torch.device | str = "cpu") -> dict:
    device = torch.device(device)
    info = {
        "host": platform.node(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device.type,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def reset_peak_memory(device: torch.device | str = "cpu") -> bool:
    """Start counting the peak afresh, so that a process that ran an earlier trial (a Ray worker runs many) reports
    the next one's own: CUDA's allocator statistics, or Linux's resident high-water mark (``/proc/self/clear_refs``,
    which resets ``ru_maxrss`` too). False where the CPU peak cannot be reset: it then spans the process's life."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return True
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:  # not Linux, or not allowed
        return False
    return True


def peak_memory_mb(device: torch.device | str = "cpu") -> float:
    """Peak accelerator memory on CUDA, else the process's peak resident set size, since `reset_peak_memory`
    (else since the process started)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, kB on Linux


def collect(device: torch.device | str = "cpu") -> dict:
    from scalearn import CORE_VERSION

    return {
        "core_version": CORE_VERSION,
        "git_commit": git_commit(),
        "packages": package_versions(),
        "hardware": hardware(device),
        "python": platform.python_version(),
    }
