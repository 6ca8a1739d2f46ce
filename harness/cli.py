"""`harness` command line. Sub-commands arrive with their issues; today: params, ls, data prepare."""

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
    elif args.what == "tasks":
        from scalearn.tasks import BENCHMARKS, TASKS

        member = {}
        for benchmark, names in BENCHMARKS.items():
            for name in names:
                member.setdefault(name, []).append(benchmark)
        for name, task in TASKS.items():
            source = f"{task.dataset}/{task.config}" if task.dataset else task.origin.split(";")[0][:48]
            print(f"{name:18s} {','.join(member.get(name, [])):22s} {task.kind:16s} {task.metric:20s} {source}")
    elif args.what == "benchmarks":
        from scalearn.tasks import BENCHMARKS

        for benchmark, names in BENCHMARKS.items():
            print(f"{benchmark:10s} {len(names):3d}  {' '.join(names)}")
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


def _cmd_data_prepare(args: argparse.Namespace) -> int:
    from scalearn.data import prepare
    from scalearn.tasks import BENCHMARKS, get_task

    names = []
    for item in args.spec.split(","):
        names.extend(BENCHMARKS.get(item, [item]))
    for name in dict.fromkeys(names):
        written = prepare(get_task(name), args.out, args.data_dir)
        where = f"{len(written)} split file(s) under {written[0].parent}" if written else "ships with the project"
        print(f"{name}: {where}")
    print(f"done; use it with --data-dir {args.out} (or SCALEARN_DATA_DIR={args.out})")
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
    ls.add_argument("what", choices=["tasks", "benchmarks", "methods", "models"])
    ls.set_defaults(run=_cmd_ls)
    data = commands.add_parser("data", help="task data: fetch ahead for machines without internet")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    prepare = data_commands.add_parser("prepare", help="write tasks' raw data in the hub's layout to a folder")
    prepare.add_argument("spec", help="benchmark or task names, comma-separated (e.g. glue or rte,cb)")
    prepare.add_argument("--out", required=True, help="folder to write (then: --data-dir / SCALEARN_DATA_DIR)")
    prepare.add_argument("--data-dir", default=None, help="read from this folder instead of the HF cache/hub")
    prepare.set_defaults(run=_cmd_data_prepare)
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
