"""`harness ls tasks|benchmarks|methods|models`: what is registered, and which model names are real here."""

from __future__ import annotations

import argparse

from scalearn.catalog import ALIASES, KNOWN_CONFIGS, MINILM, TINY_CONFIGS, minilm_path
from scalearn.methods import METHODS
from scalearn.packaged import PACKAGED
from scalearn.tasks import BENCHMARKS, TASKS


def add(commands) -> None:
    ls = commands.add_parser("ls", help="list registered things")
    ls.add_argument("what", choices=["tasks", "benchmarks", "methods", "models"])
    ls.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    {"methods": methods, "tasks": tasks, "benchmarks": benchmarks, "models": models}[args.what]()
    return 0


def methods() -> None:
    for name in sorted(METHODS):
        cls, _ = METHODS[name]
        print(f"{name:22s} {cls.group}")


def tasks() -> None:
    member = {}
    for benchmark, names in BENCHMARKS.items():
        for name in names:
            member.setdefault(name, []).append(benchmark)
    for name, task in TASKS.items():
        source = f"{task.dataset}/{task.config}" if task.dataset else task.origin.split(";")[0][:48]
        print(f"{name:18s} {','.join(member.get(name, [])):22s} {task.kind:16s} {task.metric:20s} {source}")


def benchmarks() -> None:
    for benchmark, names in BENCHMARKS.items():
        print(f"{benchmark:10s} {len(names):3d}  {' '.join(names)}")


def weights(name: str) -> str:
    """Where a name's real weights come from, and whether they are on this machine."""
    entry = PACKAGED.get(name)
    if entry is not None:
        state = "installed" if entry.installed() else entry.install_command()
        return f"real, packaged ({entry.note}): {state}"
    if name == MINILM:
        return "real, packaged: installed" if minilm_path() else "real, packaged: make setup"
    return "hub or HF cache"


def models() -> None:
    from scalearn.params import backbone_size, human_count  # sizes come from building the model: torch

    short = {v: k for k, v in ALIASES.items() if "/" not in k and k != "minilm"} | {MINILM: "minilm"}
    rows = [(name, short.get(name, ""), weights(name)) for name in [MINILM, *KNOWN_CONFIGS]]
    rows += [(name, "", "random init, for tests") for name in TINY_CONFIGS]
    print(f"{'model':40s} {'short name':27s} {'family':12s} {'d':>5s} {'L':>3s} {'params':>7s}  weights")
    for name, alias, where in rows:
        size = backbone_size(name)
        shape = f"{size['family']:12s} {size['hidden_size']:5d} {size['num_layers']:3d}"
        print(f"{name:40s} {alias:27s} {shape} {human_count(size['parameters']):>7s}  {where}")
