"""What a trial costs on each real backbone this machine has: the basis of experiments/scaling-real.yaml's plan.

For each packaged real backbone (MiniLM-L6, MPNet-base, SmolLM2-135M, Gemma-3-270M; those not installed are
skipped and named): the load time of its built folder, the training step of a single adapter and of ScaLearn over
4 sources (the study's three sources and the target's own), and the evaluation cost per example, at the study's
shape (batch 16, length 64, fp32, one torch thread: a trial of the study asks for one CPU). Medians of
``--rounds`` steps, the backbones one after another (each figure is a ratio-free absolute: this machine is noisy,
so read them as the plan's order of magnitude, not as a comparison).

    python benchmarks/real_backbones.py [--rounds 3] [--out benchmarks/results/real_backbones.json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from scalearn import HeadConfig, get_method, load_config, load_encoder
from scalearn.adapters import BottleneckAdapters
from scalearn.catalog import MINILM, MPNET, minilm_path
from scalearn.methods.base import adapter_config_for
from scalearn.packaged import PACKAGED

sys.path.insert(0, str(Path(__file__).resolve().parent))  # its siblings, as a script or loaded by path
from record import write_record  # noqa: E402

BACKBONES = ("minilm", "mpnet-base", "smollm2-135m-q4", "gemma3-270m-q4")


def available(name: str) -> bool:
    if name == "minilm":
        return minilm_path() is not None
    entry = PACKAGED.get(MPNET if name == "mpnet-base" else name)
    return entry is not None and entry.installed()


def install_command(name: str) -> str:
    """What installs a backbone's weights."""
    entry = PACKAGED.get(MPNET if name == "mpnet-base" else name)
    return entry.install_command() if entry else "make setup"


def median_seconds(fn, rounds: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(name: str, batch_size: int, length: int, rounds: int, sources: int) -> dict:
    start = time.perf_counter()
    encoder = load_encoder(name)
    load_seconds = time.perf_counter() - start
    config = load_config(name)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, config.vocab_size, (batch_size, length), generator=g)
    mask = torch.ones_like(ids)
    labels = torch.randint(0, 2, (batch_size,), generator=g)
    head = HeadConfig("classification", config.hidden_size, 2)
    figures = {"load_seconds": load_seconds, "parameters": sum(p.numel() for p in encoder.parameters())}
    for kind in ("adapter", "scalearn"):
        if kind == "adapter":
            model = get_method("adapter").build(encoder, head)
        else:
            bank = BottleneckAdapters(adapter_config_for(encoder), sources)
            with torch.no_grad():
                for p in bank.parameters():
                    p.normal_(std=0.05)
            model = get_method("scalearn").build(load_encoder(name), head, bank.requires_grad_(False))
        optimizer = torch.optim.AdamW(model.trainable_parameters().values(), lr=1e-4)

        def step(model=model, optimizer=optimizer):
            optimizer.zero_grad(set_to_none=True)
            model.loss(model(ids, mask), labels).backward()
            optimizer.step()

        figures[f"{kind}_train_step_seconds"] = median_seconds(step, rounds)

        @torch.no_grad()
        def evaluate(model=model):
            model.eval()
            model(ids, mask)
            model.train()

        figures[f"{kind}_eval_seconds_per_example"] = median_seconds(evaluate, rounds) / batch_size
    return figures


def whole_or_elsewhere(models: list[str], out: str, committed: str) -> bool:
    """True (after saying why) when backbones are missing and ``out`` is the committed JSON, which covers them
    all: a partial run must not replace it."""
    missing = [name for name in models if not available(name)]
    if missing and Path(out) == Path(committed):
        print(
            f"not installed: {', '.join(missing)} ({'; '.join(install_command(n) for n in missing)}); {committed} "
            "covers every backbone: install them, or write this run elsewhere with --out"
        )
    return bool(missing) and Path(out) == Path(committed)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sources", type=int, default=4)
    parser.add_argument("--models", default=",".join(BACKBONES), help="comma-separated, of " + ", ".join(BACKBONES))
    parser.add_argument("--out", default="benchmarks/results/real_backbones.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if whole_or_elsewhere(args.models.split(","), args.out, "benchmarks/results/real_backbones.json"):
        return 1
    results, skipped = {}, {}
    for name in args.models.split(","):
        if not available(name):
            skipped[name] = install_command(name)
            print(f"{name}: not installed ({skipped[name]})")
            continue
        results[name] = measure(name, args.batch_size, args.length, args.rounds, args.sources)
        row = results[name]
        print(
            f"{name:18s} {row['parameters'] / 1e6:7.1f}M  load {row['load_seconds']:5.1f} s  "
            f"adapter {row['adapter_train_step_seconds']:6.2f} s/step  scalearn-{args.sources} "
            f"{row['scalearn_train_step_seconds']:6.2f} s/step  eval {row['adapter_eval_seconds_per_example']:.4f} s/ex"
        )
    payload = {
        "benchmark": "real_backbones",
        "setup": {
            "batch_size": args.batch_size,
            "length": args.length,
            "rounds": args.rounds,
            "threads": torch.get_num_threads(),
            "sources": args.sources,
            "precision": "fp32",
            "torch": torch.__version__,
            "minilm": MINILM,
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
