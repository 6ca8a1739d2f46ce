"""What batching the evaluation longest first saves (scalearn.train.evaluate_split), on real backbones and the
real scaling study's evaluation splits.

For each backbone, the forward passes of one evaluation of each split (the dev split capped at 200 rows and the
test split of the two VADER targets, batches of 64, the study's shape: max length 64, fp32, one torch thread)
in the split's own order (what evaluation did before) and longest first (what it does now), the two
alternating ``--rounds`` times; the figure is the ratio of their medians, and the padded tokens each order
feeds the model. A trial of the study evaluates its dev split five times and its test split once.

    python benchmarks/eval_order.py [--models minilm,smollm2-135m-q4] [--out benchmarks/results/eval_order.json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from scalearn import HeadConfig, get_method, load_encoder, load_tokenizer
from scalearn.data import tokenized_task
from scalearn.tasks import get_task
from scalearn.train import batches, by_length

sys.path.insert(0, str(Path(__file__).resolve().parent))  # its siblings, as a script or loaded by path
from record import write_record  # noqa: E402

TASKS = ("vader_tweets", "vader_amazon")


def padded_tokens(split, order: list[int], size: int) -> int:
    lengths = [len(ids) for ids in split["input_ids"]]
    return sum(
        max(lengths[i] for i in order[at : at + size]) * len(order[at : at + size]) for at in range(0, len(order), size)
    )


def measure(name: str, rounds: int, batch_size: int, cache_dir: str | None, tasks=TASKS) -> dict:
    encoder = load_encoder(name)
    tokenizer = load_tokenizer(name)
    pad_id = encoder.config.pad_token_id or 0
    model = get_method("adapter").build(encoder, HeadConfig("regression", encoder.config.hidden_size, 1)).eval()
    figures = {}
    for task_name in tasks:
        task = get_task(task_name)
        data = tokenized_task(task, tokenizer, max_length=64, few_shot_k=100, max_dev=200, cache_dir=cache_dir)
        for split_name in ("dev", "test"):
            split = data.splits[split_name]
            orders = {"split_order": list(range(len(split))), "longest_first": by_length(split)}

            @torch.no_grad()
            def forward(order, split=split, kind=task.kind):
                for batch in batches(split, batch_size, pad_id, kind, order):
                    batch.pop("labels")
                    model(**batch)

            times = {kind: [] for kind in orders}
            forward(orders["longest_first"])  # warm-up
            for _ in range(rounds):
                for kind, order in orders.items():
                    start = time.perf_counter()
                    forward(order)
                    times[kind].append(time.perf_counter() - start)
            medians = {kind: statistics.median(values) for kind, values in times.items()}
            figures[f"{task_name}/{split_name}"] = {
                "rows": len(split),
                "seconds": medians,
                "padded_tokens": {kind: padded_tokens(split, order, batch_size) for kind, order in orders.items()},
                "speedup": medians["split_order"] / medians["longest_first"],
            }
            speedup = figures[f"{task_name}/{split_name}"]["speedup"]
            print(f"{name:18s} {task_name}/{split_name:5s} {len(split):4d} rows  ×{speedup:.2f}")
    return figures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="minilm,smollm2-135m-q4")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache-dir", default=None, help="the tokenised data cache (default: the harness's own)")
    parser.add_argument("--out", default="benchmarks/results/eval_order.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    tasks = args.tasks.split(",")
    results = {
        name: measure(name, args.rounds, args.batch_size, args.cache_dir, tasks) for name in args.models.split(",")
    }
    for name, figures in results.items():
        # a study trial: five dev evaluations and one test evaluation, per target
        cost = {
            kind: sum(5 * figures[f"{t}/dev"]["seconds"][kind] + figures[f"{t}/test"]["seconds"][kind] for t in tasks)
            for kind in ("split_order", "longest_first")
        }
        figures["trial_evaluation_speedup"] = cost["split_order"] / cost["longest_first"]
        print(f"{name}: a study trial's evaluations ×{figures['trial_evaluation_speedup']:.2f} faster")
    payload = {
        "benchmark": "eval_order",
        "setup": {"batch_size": args.batch_size, "max_length": 64, "rounds": args.rounds, "threads": args.threads},
        "torch": torch.__version__,
        "backbones": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_record(out, payload)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
