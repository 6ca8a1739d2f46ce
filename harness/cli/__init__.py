"""`harness` command line, one module per sub-command over the public API: validate, plan, submit, status,
report, measure, ui (experiment files); ls, params, adapters, data (the core's registries and artifacts).

Each module has `add(commands)` (its arguments) and `run(args)` (parse, call the API, print). A bad file or
flag is one line on stderr and exit 2."""

from __future__ import annotations

import argparse
import sys

from harness.cli import adapters, data, ls, measure, params, plan, report, status, submit, ui, validate
from harness.cli.common import default_store
from harness.spec import SpecError

COMMANDS = (params, ls, validate, plan, status, submit, report, measure, ui, adapters, data)

__all__ = ["build_parser", "default_store", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harness", description="ScaLearn benchmarking harness")
    commands = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if "store" in args and args.store is None:
        args.store = default_store(getattr(args, "file", None), getattr(args, "set", None) or ())
    try:
        return args.run(args)
    except SpecError as error:
        print(error, file=sys.stderr)
        return 2
    except (ValueError, RuntimeError) as error:
        print(f"harness {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:  # Ctrl-C (or SIGTERM in a submit): one line, not a traceback (a submit
        # says what it kept)
        print(f"harness {args.command}: {str(interrupt) or 'interrupted'}", file=sys.stderr)
        return getattr(interrupt, "exit_code", 130)
