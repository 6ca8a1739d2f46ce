"""`harness params MODEL METHOD`: trainable transfer parameters per target, from the config alone."""

from __future__ import annotations

import argparse


def add(commands) -> None:
    params = commands.add_parser("params", help="trainable transfer parameters per target, from the config alone")
    params.add_argument("model", help="model name, hub id or local folder (e.g. roberta-base)")
    params.add_argument("method", help="registered method (see `harness ls methods`)")
    params.add_argument("--sources", type=int, default=8, help="number of source adapters (default 8, as GLUE)")
    params.add_argument("--num-labels", type=int, default=2, help="classes of the head (not counted)")
    params.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from scalearn.params import count_parameters  # builds the model on the meta device: torch

    counts = count_parameters(args.model, args.method, args.sources, args.num_labels)
    sources = f", {counts['num_sources']} sources" if counts["num_sources"] else ""
    joint = "transfer_total" in counts
    if joint:
        sources = f", {counts['num_tasks']} tasks trained jointly (--sources)"
    print(
        f"model {counts['model']} ({counts['family']}, d={counts['hidden_size']}, L={counts['num_layers']}), "
        f"method {counts['method']}{sources}"
    )
    heads = f"{counts['num_tasks']} heads" if joint else "head"
    print(f"{heads} (not counted, {args.num_labels} labels{' each' if joint else ''}): {counts['head']}")
    print(f"encoder and frozen parts: {counts['total'] - counts['trainable']}")
    if joint:
        print(f"trainable parameters shared by the {counts['num_tasks']} tasks: {counts['transfer_total']:,}")
        print("each task's share:")
    else:
        print("trainable transfer parameters per target:")
    print(counts["transfer"])
    return 0
