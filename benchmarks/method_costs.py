"""What each method of the real scaling study costs on each real backbone, each measured in a process of its own:
the training step, the inference time per example, and the peak memory.

The trials' own records give these too (`harness report`'s cost table), but a study's trials run two at a time on
a shared machine, paused and resumed, over code that changed under them, so their times mix what ran beside them
(docs/results/scaling-real.md). This measures every (backbone, method) alike, in a new Python process each, so no
earlier model's pages count: it loads the backbone, builds the method (over 4 random source adapters, or LoRAs for
ScaLearn over LoRA: the study's three sources and the target's own), times AdamW steps at the study's shape
(batch 16 × 64 tokens, fp32, one thread) and evaluation batches of 64 (a transfer model runs every source there),
medians of ``--rounds`` after a warm-up. Memory: resident-set sizes in MB (Linux's ``/proc/self/statm`` and its
high-water mark, reset once the model is built), after imports, once built, and the peak of training and
evaluation; a trial adds its data, tokenizer, Ray worker and MLflow client on top. Ratios are over the adapter on
the same backbone. Run it on an otherwise idle machine.

    python benchmarks/method_costs.py [--models minilm,smollm2-135m-q4] [--out benchmarks/results/method_costs.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # its sibling, when run as a script or in a fresh process
from real_backbones import available, install_command, median_seconds, whole_or_elsewhere  # noqa: E402
from record import write_record  # noqa: E402

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
        raise SystemExit("method_costs.py needs Linux's /proc/self/clear_refs to reset the peak once a model is built")

    def step():
        optimizer.zero_grad(set_to_none=True)
        model.loss(model(ids, torch.ones_like(ids)), labels).backward()
        optimizer.step()

    eval_ids = torch.randint(5, vocab, (args.eval_batch_size, args.length), generator=g)

    @torch.no_grad()
    def evaluate():
        model(eval_ids, torch.ones_like(eval_ids))

    figures["train_step_seconds"] = median_seconds(step, args.rounds)
    model.eval()
    figures["eval_seconds_per_example"] = median_seconds(evaluate, args.rounds) / args.eval_batch_size
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
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sources", type=int, default=4)
    parser.add_argument("--models", default="minilm,mpnet-base,smollm2-135m-q4,gemma3-270m-q4")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--out", default="benchmarks/results/method_costs.json")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # backbone:method, measured in this process
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure_one(*args.one.split(":"), args)))
        return 0

    if whole_or_elsewhere(args.models.split(","), args.out, "benchmarks/results/method_costs.json"):
        return 1
    results, skipped = {}, {}
    for name in args.models.split(","):
        if not available(name):
            skipped[name] = install_command(name)
            print(f"{name}: not installed ({skipped[name]})")
            continue
        rows = results[name] = {}
        for method in args.methods.split(","):
            rows[method] = in_fresh_process(name, method, argv)
            row = rows[method]
            print(
                f"{name:18s} {method:20s} step {row['train_step_seconds']:6.3f} s  "
                f"eval {1000 * row['eval_seconds_per_example']:6.2f} ms/ex  peak {row['peak_mb']:6.0f} MB"
            )
        if "adapter" in rows:
            for row in rows.values():
                for key in ("train_step_seconds", "eval_seconds_per_example", "peak_mb"):
                    row[f"{key.removesuffix('_mb')}_over_adapter"] = row[key] / rows["adapter"][key]
    payload = {
        "benchmark": "method_costs",
        "setup": {
            "batch_size": args.batch_size,
            "eval_batch_size": args.eval_batch_size,
            "length": args.length,
            "rounds": args.rounds,
            "threads": args.threads,
            "sources": args.sources,
            "precision": "fp32",
            "torch": torch.__version__,
            "memory": "resident set size, MB",
            "process": "a fresh one per backbone and method",
        },
        "backbones": results,
        "skipped": skipped,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_record(out, payload)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
