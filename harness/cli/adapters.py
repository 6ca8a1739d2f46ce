"""`harness adapters import|export`: source adapters in AdapterHub's and PEFT's formats, in and out."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.store import Store

IMPORT_EXAMPLES = (
    "examples:\n"
    "  harness adapters import AdapterHub/roberta-base-pf-rte --format adapterhub --model roberta-base "
    "--out sources/rte\n"
    "  harness adapters import ./saved/sst2 --format adapterhub --model roberta-base --task sst2 "
    "--out sources/sst2\n"
    "  harness adapters import ./peft/llama-lora --format peft --model llama-3.1-8b --out sources/lora-a\n"
    "AdapterHub: only its seq_bn (Pfeiffer) config is our placement; .bin files are read with "
    "torch.load(weights_only=True)."
)
EXPORT_EXAMPLES = (
    "examples:\n"
    "  harness adapters export 5992754b75c0f6aff0daba95 --format adapterhub --store runs/glue --out hub/rte\n"
    "  harness adapters export runs/glue/trials/KEY/artifacts/model --format peft --out peft/rte\n"
    "then: model.load_adapter('hub/rte', use_safetensors=True) (adapters) or "
    "PeftModel.from_pretrained(AutoModel.from_pretrained(base), 'peft/rte') (PEFT; the head is not exported)."
)


def add(commands) -> None:
    adapters = commands.add_parser("adapters", help="source adapters in AdapterHub's and PEFT's formats, in and out")
    adapter_commands = adapters.add_subparsers(dest="adapters_command", required=True)
    raw = argparse.RawDescriptionHelpFormatter
    importing = adapter_commands.add_parser(
        "import",
        help="an AdapterHub bottleneck adapter or a PEFT LoRA → our artifact folder",
        formatter_class=raw,
        epilog=IMPORT_EXAMPLES,
    )
    importing.add_argument("source", help="a folder the library wrote, or a hub id (from the local HF cache)")
    importing.add_argument("--format", required=True, choices=["adapterhub", "peft"])
    importing.add_argument("--model", required=True, help="the backbone it was trained on (alias, hub id or folder)")
    importing.add_argument("--out", required=True, help="the artifact folder to write")
    importing.add_argument("--task", default=None, help="the task it was trained on (default: its own name)")
    importing.set_defaults(run=run_import)
    exporting = adapter_commands.add_parser(
        "export",
        help="our adapter (a trial key or folder) → AdapterHub's or PEFT's layout",
        formatter_class=raw,
        epilog=EXPORT_EXAMPLES,
    )
    exporting.add_argument("source", help="a trial key, a trial folder, or an adapter / LoRA artifact folder")
    exporting.add_argument("--format", required=True, choices=["adapterhub", "peft"])
    exporting.add_argument("--out", required=True, help="the folder to write")
    exporting.add_argument("--model", default=None, help="the backbone (default: the one its manifest names)")
    exporting.add_argument("--store", default="store", help="the results store a trial key is in (default ./store)")
    exporting.set_defaults(run=run_export)


def run_import(args: argparse.Namespace) -> int:
    # the converters load tensors (torch): imported only for the format asked for
    if args.format == "adapterhub":
        from scalearn.interop.adapterhub import import_adapterhub as importer
    else:
        from scalearn.interop.peft import import_peft as importer
    out = importer(args.source, args.model, args.out, task=args.task)
    print(f"imported {args.source} ({args.format}) for {args.model} into {out}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    folder = artifact_folder(args.source, args.store, "adapter" if args.format == "adapterhub" else "model")
    if args.format == "adapterhub":
        from scalearn.interop.adapterhub import export_adapterhub as exporter
    else:
        from scalearn.interop.peft import export_peft as exporter
    out = exporter(folder, args.out, model=args.model)
    print(f"exported {folder} as {args.format} into {out}")
    return 0


def artifact_folder(source: str, store_root: str, kind: str) -> Path:
    """An artifact folder given itself, a trial's folder, or a trial key in the store."""
    path = Path(source)
    if not path.exists() and len(source) == 24 and all(c in "0123456789abcdef" for c in source):
        path = Store(store_root).trial_dir(source)
        if not path.exists():
            raise ValueError(f"{source}: no such trial in the store {store_root} (--store)")
    if (path / "artifacts" / kind).is_dir():
        return path / "artifacts" / kind
    if not path.exists():
        raise ValueError(f"{source}: no such folder, and not a trial key of the store {store_root}")
    return path
