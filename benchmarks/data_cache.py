"""A trial's data step on a tokenisation-cache hit vs a miss, for the offline benchmark (MiniLM tokenizer).

A miss loads the raw corpus from its package, applies the split protocol, tokenises and writes the
Arrow entry; a hit finds the entry by its key and memory-maps it. The hit is compared with one training
epoch of a single adapter on the same task, estimated from adapter steps measured in this run
(MiniLM, batch 32, length 128, fp32): the target is a hit < 1% of that epoch.

    python benchmarks/data_cache.py [--tasks rt_polarity,trec6] [--out benchmarks/results/data_cache.json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from scalearn import HeadConfig, get_method, load_encoder, load_tokenizer
from scalearn.data import tokenized_task
from scalearn.tasks import BENCHMARKS

sys.path.insert(0, str(Path(__file__).resolve().parent))  # its siblings, as a script or loaded by path
from record import write_record  # noqa: E402


def adapter_step_seconds(model_name: str, batch_size: int = 32, length: int = 128, steps: int = 3) -> float:
    encoder = load_encoder(model_name)
    model = get_method("adapter").build(encoder, HeadConfig("classification", encoder.config.hidden_size, 2)).train()
    optimizer = torch.optim.AdamW(model.trainable_parameters().values(), lr=3e-4)
    ids = torch.randint(5, encoder.config.vocab_size, (batch_size, length))
    labels = torch.randint(0, 2, (batch_size,))
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        optimizer.zero_grad()
        model.loss(model(ids, torch.ones_like(ids)), labels).backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--tasks", default=",".join(BENCHMARKS["offline"]))
    parser.add_argument("--hits", type=int, default=5)
    parser.add_argument("--step-shape", default="32x128", help="batch×length of the measured adapter steps")
    parser.add_argument("--out", default="benchmarks/results/data_cache.json")
    args = parser.parse_args(argv)

    tokenizer = load_tokenizer(args.model)
    batch_size, length = (int(v) for v in args.step_shape.split("x"))
    step = adapter_step_seconds(args.model, batch_size, length)
    rows = {}
    with tempfile.TemporaryDirectory() as cache:
        for name in args.tasks.split(","):
            miss = tokenized_task(name, tokenizer, cache_dir=cache)
            assert not miss.hit
            hits = [tokenized_task(name, tokenizer, cache_dir=cache) for _ in range(args.hits)]
            assert all(h.hit for h in hits)
            hit_seconds = statistics.median(h.seconds for h in hits)
            epoch_seconds = -(-len(miss.splits["train"]) // batch_size) * step
            rows[name] = {
                "train_examples": len(miss.splits["train"]),
                "miss_seconds": miss.seconds,
                "hit_seconds": hit_seconds,
                "miss_over_hit": miss.seconds / hit_seconds,
                "epoch_seconds_estimate": epoch_seconds,
                "hit_fraction_of_epoch": hit_seconds / epoch_seconds,
            }
            print(
                f"{name:16s} miss {miss.seconds:6.2f} s  hit {hit_seconds * 1000:6.1f} ms  "
                f"hit/epoch {100 * rows[name]['hit_fraction_of_epoch']:.4f} %"
            )
    worst = max(r["hit_fraction_of_epoch"] for r in rows.values())
    result = {
        "benchmark": "data_cache",
        "setup": {
            "model": args.model,
            "adapter_step_seconds": step,
            "step_shape": args.step_shape,
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
        },
        "tasks": rows,
        "worst_hit_fraction_of_epoch": worst,
        "target_hit_fraction_of_epoch_max": 0.01,
        "target_met": worst < 0.01,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_record(out, result)
    print(f"worst hit / epoch: {100 * worst:.4f} % (target < 1 %); wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
