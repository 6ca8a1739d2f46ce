"""Peak memory of each method of the real scaling study, per real backbone, each measured in a process of its own.

A trial's peak memory is in its result (`provenance.peak_memory_mb`), but the study's earlier trials recorded
their Ray worker's lifetime peak (docs/results/scaling-real.md); this measures every (backbone, method) afresh.
Each pair runs in a new Python process, so no earlier model's pages count: it loads the backbone, builds the method
(over 4 random source adapters, or LoRAs for ScaLearn over LoRA: the study's three sources and the target's own),
takes a few AdamW steps at the study's shape (batch 16 × 64 tokens, fp32, one thread) and one evaluation batch of
64. Figures are resident-set sizes in MB (Linux's ``/proc/self/statm`` and its high-water mark, reset once the
model is built): after imports, after the model is built, and the peak of training and evaluation. A trial adds
its data, tokenizer and MLflow client on top.

    python benchmarks/peak_memory.py [--models minilm,smollm2-135m-q4] [--out benchmarks/results/peak_memory.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

METHODS = ("adapter", "lora", "adapterfusion", "scalearn", "scalearn_uniform_pp", "scalearn_lora")


def resident_mb() -> float:
    """The process's resident set size now, in MB."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def build(name: str, method: str, sources: int):
    from scalearn import HeadConfig, get_method, load_encoder
    from scalearn.adapters import BottleneckAdapters
    from scalearn.methods.base import adapter_config_for
    from scalearn.tuners.lora_bank import LoRASources

    encoder = load_encoder(name)
    head = HeadConfig("classification", encoder.config.hidden_size, 2)
    chosen = get_method(method)
    if not chosen.uses_sources:
        return chosen.build(encoder, head)
    if getattr(chosen, "source_method", "adapter") == "lora":
        bank = LoRASources.random(encoder, sources)
    else:
        bank = BottleneckAdapters(adapter_config_for(encoder), sources)
        with torch.no_grad():
            for p in bank.parameters():
                p.normal_(std=0.05)
        bank.requires_grad_(False)
    return chosen.build(encoder, head, bank)


def measure_one(name: str, method: str, args) -> dict:
    """One (backbone, method) in this process: call it in a fresh one."""
    from scalearn import load_config
    from scalearn.provenance import peak_memory_mb, reset_peak_memory

    torch.set_num_threads(args.threads)
    figures = {"after_imports_mb": resident_mb()}
    torch.manual_seed(0)
    model = build(name, method, args.sources).train()
    figures["built_mb"] = resident_mb()
    g = torch.Generator().manual_seed(0)
    vocab = load_config(name).vocab_size
    ids = torch.randint(5, vocab, (args.batch_size, args.length), generator=g)
    labels = torch.randint(0, 2, (args.batch_size,), generator=g)
    optimizer = torch.optim.AdamW(model.trainable_parameters().values(), lr=1e-4)
    if not reset_peak_memory("cpu"):
        raise SystemExit("peak_memory.py needs Linux's /proc/self/clear_refs to reset the peak between phases")
    for _ in range(args.steps):
        optimizer.zero_grad(set_to_none=True)
        model.loss(model(ids, torch.ones_like(ids)), labels).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        eval_ids = torch.randint(5, vocab, (args.eval_batch_size, args.length), generator=g)
        model(eval_ids, torch.ones_like(eval_ids))
    figures["peak_mb"] = peak_memory_mb("cpu")
    figures["trainable_parameters"] = sum(p.numel() for p in model.trainable_parameters().values())
    return figures


def in_fresh_process(name: str, method: str, argv: list[str]) -> dict:
    command = [sys.executable, __file__, *argv, "--one", f"{name}:{method}"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
        raise RuntimeError(f"{name} {method}: {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--eval-batch-size", type=int, default=64)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sources", type=int, default=4)
    parser.add_argument("--models", default="minilm,mpnet-base,smollm2-135m-q4,gemma3-270m-q4")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--out", default="benchmarks/results/peak_memory.json")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # backbone:method, measured in this process
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure_one(*args.one.split(":"), args)))
        return 0

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from real_backbones import available, install_command

    results, skipped = {}, {}
    for name in args.models.split(","):
        if not available(name):
            skipped[name] = install_command(name)
            print(f"{name}: not installed ({skipped[name]})")
            continue
        rows = results[name] = {}
        for method in args.methods.split(","):
            rows[method] = in_fresh_process(name, method, argv)
            print(
                f"{name:18s} {method:20s} built {rows[method]['built_mb']:7.0f} MB  "
                f"peak {rows[method]['peak_mb']:7.0f} MB"
            )
        if "adapter" in rows:
            for row in rows.values():
                row["peak_over_adapter"] = row["peak_mb"] / rows["adapter"]["peak_mb"]
    payload = {
        "benchmark": "peak_memory",
        "setup": {
            "batch_size": args.batch_size,
            "eval_batch_size": args.eval_batch_size,
            "length": args.length,
            "steps": args.steps,
            "threads": args.threads,
            "sources": args.sources,
            "precision": "fp32",
            "torch": torch.__version__,
            "measure": "resident set size, MB; a fresh process per backbone and method",
        },
        "backbones": results,
        "skipped": skipped,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
