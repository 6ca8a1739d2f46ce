"""The layers contract, read from the source (no imports, so `make lint` runs it in a second): scalearn's modules
in layers, each importing only its own layer or those below (at module level or inside a function alike);
`harness` never imported by `scalearn`; and the torch-free modules free of torch, transformers, DeepSpeed, Ray
and MLflow at module level, transitively. An import in an ``if TYPE_CHECKING:`` block is a name for an
annotation only, and does not count."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

LAYERS = [
    # 0 — the contract and what needs nothing: typed configs, names, files, the task registry (data specs)
    ["scalearn.config", "scalearn.atomic", "scalearn.layout", "scalearn.metrics", "scalearn.schedule",
     "scalearn.catalog", "scalearn.packaged", "scalearn.ports", "scalearn.tasks", "scalearn.result"],
    # 1 — the blocks a model is made of
    ["scalearn.adapters", "scalearn.heads", "scalearn.backbones", "scalearn.fingerprint", "scalearn.transfer",
     "scalearn.tuners", "scalearn.reference"],
    # 2 — a model, its files, its data
    ["scalearn.model", "scalearn.io", "scalearn.checkpoint", "scalearn.evaluation", "scalearn.engines",
     "scalearn.data", "scalearn.similarity", "scalearn.tuners.lora_bank", "scalearn.provenance",
     "scalearn.source_scale"],
    # 3 — the methods: their hyper-parameter models and what each builds
    ["scalearn.methods", "scalearn.params"],
    # 4 — resolving by name; moving adapters in and out
    ["scalearn.resolve", "scalearn.interop"],
    # 5 — one trial
    ["scalearn.train", "scalearn.run"],
    # 6 — one trial on several processes
    ["scalearn.distributed"],
]  # fmt: skip
"""Bottom to top. A module's layer is that of the longest name here it starts with; the package itself
(``scalearn``: its version and lazy exports) sits below all of them."""

TORCH_FREE = [
    "scalearn.config",
    "scalearn.result",
    "scalearn.resolve",
    "scalearn.catalog",
    "scalearn.packaged",
    "scalearn.tasks",
    "scalearn.methods",
    "scalearn.similarity",
    "scalearn.data",
    "scalearn.distributed",
    "harness",
]
"""Modules (and every module under them) that import none of HEAVY at module level, transitively: planning,
validating, the command line and the MLflow UI never load torch (`harness ui` and `harness plan` start in a
second)."""

HEAVY = ("torch", "transformers", "deepspeed", "ray", "mlflow", "peft", "accelerate", "safetensors.torch")


def module_files() -> dict[str, Path]:
    files = {}
    for package in ("scalearn", "harness"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            files[name] = path
    return files


def imports_of(source: str, package: str | None = None) -> list[tuple[str, bool, int]]:
    """(imported name, inside a function, line) of every import in ``source``; `from a import b` gives both
    ``a`` and ``a.b`` (b may be a module). Blocks under ``if TYPE_CHECKING:`` are left out."""
    found = []

    def visit(node, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for item in child.orelse:
                    visit(ast.Module(body=[item], type_ignores=[]), in_function)
                continue
            if isinstance(child, ast.Import):
                found.extend((alias.name, in_function, child.lineno) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level and package:  # relative: from . import x
                    base = ".".join(package.split(".")[: len(package.split(".")) - child.level + 1] + [base]).strip(".")
                found.append((base, in_function, child.lineno))
                found.extend((f"{base}.{alias.name}", in_function, child.lineno) for alias in child.names)
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            visit(child, inner)

    visit(ast.parse(source), False)
    return found


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def layer_of(name: str) -> int | None:
    best, level = "", None
    for index, members in enumerate(LAYERS):
        for member in members:
            if (name == member or name.startswith(member + ".")) and len(member) > len(best):
                best, level = member, index
    return -1 if name == "scalearn" else level


def upward_imports(files: dict[str, Path]) -> list[str]:
    """Every import of a scalearn module from a higher layer, as ``file:line: a (layer i) imports b (layer j)``."""
    problems = []
    for name, path in files.items():
        if not name.startswith("scalearn"):
            continue
        mine = layer_of(name)
        for target, _, line in imports_of(path.read_text(), name):
            if target in files and target.startswith("scalearn") and target != name:
                theirs = layer_of(target)
                if mine is not None and theirs is not None and theirs > mine:
                    problems.append(f"{shown(path)}:{line}: {name} (layer {mine}) imports {target} (layer {theirs})")
    return problems


def heavy_at_module_level(files: dict[str, Path], roots: list[str]) -> list[str]:
    """The chains by which a module under ``roots`` imports a HEAVY package at module level."""
    graph = {
        name: [t for t, in_function, _ in imports_of(path.read_text(), name) if not in_function]
        for name, path in files.items()
    }

    def parents(name: str) -> list[str]:  # importing a.b.c runs a/__init__ and a/b/__init__ first
        parts = name.split(".")
        return [".".join(parts[:i]) for i in range(1, len(parts))]

    problems = []
    for start in (n for n in files if any(n == r or n.startswith(r + ".") for r in roots)):
        seen, stack = {start: [start]}, [start]
        while stack:
            current = stack.pop()
            for target in graph.get(current, []):
                if target.split(".")[0] in {h.split(".")[0] for h in HEAVY} and any(
                    target == h or target.startswith(h + ".") for h in HEAVY
                ):
                    problems.append(" → ".join([*seen[current], target]))
                    continue
                for module in [*parents(target), target]:
                    if module in files and module not in seen:
                        seen[module] = [*seen[current], module]
                        stack.append(module)
    return problems


def test_every_scalearn_module_has_a_layer():
    files = module_files()
    assert [name for name in files if name.startswith("scalearn.") and layer_of(name) is None] == []


def test_no_scalearn_module_imports_a_higher_layer():
    assert upward_imports(module_files()) == []


def test_scalearn_never_imports_harness():
    files = module_files()
    found = [
        f"{shown(path)}:{line}: {target}"
        for name, path in files.items()
        if name.startswith("scalearn")
        for target, _, line in imports_of(path.read_text(), name)
        if target == "harness" or target.startswith("harness.")
    ]
    assert found == []


def test_the_torch_free_modules_import_no_heavy_package_at_module_level():
    assert heavy_at_module_level(module_files(), TORCH_FREE) == []


def test_the_checks_catch_what_they_guard(tmp_path):
    """Each check, fed one offending module, names it: an upward import (even inside a function), torch at
    module level two hops away, harness from scalearn."""
    files = module_files()
    config = tmp_path / "config.py"
    config.write_text("def f():\n    from scalearn.methods import get_method\n")
    assert upward_imports({**files, "scalearn.config": config}) == [
        f"{config}:2: scalearn.config (layer 0) imports scalearn.methods (layer 3)"
    ]
    catalog = tmp_path / "catalog.py"
    catalog.write_text("from scalearn.heads import HeadKind\n")  # heads imports torch at module level
    chains = heavy_at_module_level({**files, "scalearn.catalog": catalog}, ["scalearn.catalog"])
    assert chains and chains[0].startswith("scalearn.catalog → scalearn.heads → torch")
    assert heavy_at_module_level(files, ["scalearn.catalog"]) == []
    typed = tmp_path / "typed.py"
    typed.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from scalearn.heads import HeadKind\n")
    assert heavy_at_module_level({**files, "scalearn.catalog": typed}, ["scalearn.catalog"]) == []


if __name__ == "__main__":  # `make lint`: the checks without pytest's start-up (conftest loads torch)
    import sys

    files = module_files()
    problems = [
        *upward_imports(files),
        *(
            f"{name}: no layer in tests/test_layers.py"
            for name in files
            if name.startswith("scalearn.") and layer_of(name) is None
        ),
        *(f"torch-free module imports a heavy package: {chain}" for chain in heavy_at_module_level(files, TORCH_FREE)),
    ]
    print("\n".join(problems) or f"layers: {len(files)} modules, no upward import, torch-free modules free of torch")
    sys.exit(1 if problems else 0)
