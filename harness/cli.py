"""`harness` command line. Sub-commands arrive with their issues; today: params, ls."""

from __future__ import annotations

import argparse
import sys


def _cmd_params(args: argparse.Namespace) -> int:
    from scalearn.params import count_parameters

    counts = count_parameters(args.model, args.method, args.sources, args.num_labels)
    sources = f", {counts['num_sources']} sources" if counts["num_sources"] else ""
    print(
        f"model {counts['model']} ({counts['family']}, d={counts['hidden_size']}, L={counts['num_layers']}), "
        f"method {counts['method']}{sources}"
    )
    print(f"head (not counted, {args.num_labels} labels): {counts['head']}")
    print(f"encoder and frozen parts: {counts['total'] - counts['trainable']}")
    print("trainable transfer parameters per target:")
    print(counts["transfer"])
    return 0


def _cmd_ls(args: argparse.Namespace) -> int:
    if args.what == "methods":
        from scalearn.methods import METHODS

        for name in sorted(METHODS):
            cls, _ = METHODS[name]
            print(f"{name:22s} {cls.group}")
    elif args.what == "models":
        from scalearn.backbones import ALIASES, KNOWN_CONFIGS, MINILM, TINY_CONFIGS, minilm_path

        short = {v: k for k, v in ALIASES.items() if "/" not in k and k != "minilm"}
        for name in KNOWN_CONFIGS:
            print(f"{name:38s} {short.get(name, '')}")
        where = f"pretrained, from {minilm_path()}" if minilm_path() else "hub/cache"
        print(f"{MINILM:38s} minilm ({where})")
        for name in TINY_CONFIGS:
            print(f"{name:38s} random init, for tests")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harness", description="ScaLearn benchmarking harness")
    commands = parser.add_subparsers(dest="command", required=True)

    params = commands.add_parser("params", help="trainable transfer parameters per target, from the config alone")
    params.add_argument("model", help="model name, hub id or local folder (e.g. roberta-base)")
    params.add_argument("method", help="registered method (see `harness ls methods`)")
    params.add_argument("--sources", type=int, default=8, help="number of source adapters (default 8, as GLUE)")
    params.add_argument("--num-labels", type=int, default=2, help="classes of the head (not counted)")
    params.set_defaults(run=_cmd_params)

    ls = commands.add_parser("ls", help="list registered things")
    ls.add_argument("what", choices=["methods", "models"])
    ls.set_defaults(run=_cmd_ls)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, RuntimeError) as error:
        print(f"harness {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
