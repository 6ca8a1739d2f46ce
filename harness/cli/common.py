"""What the sub-commands share: the experiment-file arguments, `--set`, the default store, and loading a
file with its plan."""

from __future__ import annotations

import argparse
from pathlib import Path

STORE_HELP = "the results store (default runs/<the experiment's name>, where `make demo` writes)"


def default_store(file: str | None, overrides=()) -> str:
    """Where an experiment's results go when --store is not given: runs/<its name> (as the file, what it
    includes and ``overrides`` say; the file's stem when it does not load: the command then says why), ./store
    without a file."""
    if file is None:
        return "store"
    from harness.spec import SpecError, load_spec

    try:
        name = load_spec(file, overrides).name
    except SpecError:
        name = None
    return str(Path("runs") / (name or Path(file).stem))


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 1, got {text!r}")
    return int(text)


def add_file(command: argparse.ArgumentParser, store: bool = True) -> None:
    """The experiment file, its `--set` overrides and (unless the command needs none) `--store`."""
    command.add_argument("file", help="experiment file (experiments/*.yaml)")
    command.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a key of the file, as if it said so (e.g. resources.gpus=0, hyperparameters.all.epochs=1); "
        "repeatable; the same overrides give the same trials",
    )
    if store:
        command.add_argument("--store", default=None, help=STORE_HELP)


def load(args: argparse.Namespace, store=None):
    """The spec (the file with its ``--set`` overrides) and its plan as it stands: the trials that can be
    planned now (with a store: the finals of finished searches too), the searched groups, the transfer
    trials still waiting for their sources."""
    from harness.plan import make_plan  # the plan resolves methods: not needed by `ls` or `ui`
    from harness.spec import load_spec

    spec = load_spec(args.file, args.set or ())
    return spec, make_plan(spec, store)
