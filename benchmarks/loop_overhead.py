"""What our training loop costs over a bare PyTorch loop, DeepSpeed ZeRO-2 against plain torch, and the joint
multi-task loop (one task, so the same work) against ``fit`` (CPU); and what assembling a batch costs, read as
the loop reads it (`scalearn.train.rows_of`: one read of the columns) against a `select` walked row by row (the
loop's way until 2026-12).

Same model (real MiniLM-L6 + a trainable adapter), same batches (rt_polarity, batch 32, length ≤ 64),
same number of optimizer steps. The bare loop is: forward, loss, backward, clip, AdamW step, schedule
step, zero_grad. Both are timed in steady state, from the end of the first step to the end of the last
(set-up and the final evaluation are not the loop's per-step cost). Configurations alternate over
rounds; medians of steps per second.

    python benchmarks/loop_overhead.py [--steps 20] [--rounds 3] [--out benchmarks/results/loop_overhead.json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from scalearn import HeadConfig, get_method, load_encoder, load_tokenizer
from scalearn.config import LoopConfig
from scalearn.data import tokenized_task
from scalearn.engines import linear_schedule, make_optimizer
from scalearn.schedule import epoch_order
from scalearn.tasks import get_task
from scalearn.train import batches, collate, fit, rows_of, seed_everything

sys.path.insert(0, str(Path(__file__).resolve().parent))  # its siblings, as a script or loaded by path
from record import write_record  # noqa: E402

TARGET_OVERHEAD_MAX = 0.05


@dataclass
class Data:
    splits: dict
    key: str = "benchmark"


def build(model_name: str, joint: bool = False):
    seed_everything(0)
    encoder = load_encoder(model_name)
    head = HeadConfig("classification", encoder.config.hidden_size, 2)
    if joint:  # Adapter-m on one task: the same model, through the joint loop's sampling and routing
        return get_method("adapter_m").build(encoder, {"rt_polarity": head})
    return get_method("adapter").build(encoder, head)


def bare_loop(model, data, config: LoopConfig, steps: int) -> float:
    """Steady-state steps per second (clock from the end of step 1 to the end of the last step)."""
    model.train()
    train = data.splits["train"]
    optimizer = make_optimizer(model, config.learning_rate, config.weight_decay)
    scheduler = linear_schedule(optimizer, steps, 0.0)
    order = epoch_order(len(train), 0, 0)
    stamps = []
    for step, batch in enumerate(batches(train, config.batch_size, 0, "classification", order)):
        if step == steps:
            break
        labels = batch.pop("labels")
        loss = model.head.loss(model(**batch), labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.trainable_parameters().values(), config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()  # as our loop records each step's loss
        stamps.append(time.perf_counter())
    return (steps - 1) / (stamps[-1] - stamps[0])


def our_loop(model, data, config: LoopConfig, steps: int) -> float:
    """Steady-state steps per second of ``fit``, from its own step events (setup and evaluation excluded)."""
    stamps = []
    result = fit(
        model,
        get_task("rt_polarity"),
        data,
        config,
        callback=lambda event, _: stamps.append(time.perf_counter()) if event == "step" else None,
    )
    assert result.steps == steps and len(stamps) == steps
    return (steps - 1) / (stamps[-1] - stamps[0])


def joint_loop(model, data, config: LoopConfig, steps: int) -> float:
    """Steady-state steps per second of ``fit`` on a joint model with one task (the sampled schedule's path)."""
    stamps = []

    def stamp(event, _):
        if event == "step":
            stamps.append(time.perf_counter())

    result = fit(model, {"rt_polarity": get_task("rt_polarity")}, {"rt_polarity": data}, config, callback=stamp)
    assert result.steps == steps and len(stamps) == steps
    return (steps - 1) / (stamps[-1] - stamps[0])


def batch_assembly_ms(train, batch_size: int, batches_timed: int = 40, rounds: int = 3) -> dict[str, float]:
    """Median milliseconds to read and pad one batch of the shuffled split, both ways, alternating rounds."""
    order = epoch_order(len(train), 0, 0)[: batch_size * batches_timed]
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    ways = {
        "select_walk": lambda rows: collate(list(train.select(rows)), 0, "classification"),
        "rows_of": lambda rows: collate(rows_of(train, rows), 0, "classification"),
    }
    times = {name: [] for name in ways}
    for _ in range(rounds):
        for name, assemble in ways.items():
            start = time.perf_counter()
            for rows in chunks:
                assemble(rows)
            times[name].append(1000 * (time.perf_counter() - start) / len(chunks))
    return {name: statistics.median(values) for name, values in times.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/loop_overhead.json")
    args = parser.parse_args(argv)

    splits = tokenized_task("rt_polarity", load_tokenizer(args.model), max_length=64).splits
    data = Data(
        {"train": splits["train"], "dev": splits["dev"].select(range(32)), "test": splits["test"].select(range(32))}
    )
    base = dict(learning_rate=3e-4, epochs=1, max_steps=args.steps, batch_size=32, patience=5, log_every_steps=1)
    configs = {
        "bare_torch_loop": (bare_loop, LoopConfig(**base)),
        "fit_torch": (our_loop, LoopConfig(**base)),
        "fit_deepspeed_zero2": (our_loop, LoopConfig(**base, engine="deepspeed", zero_stage=2)),
        "fit_joint_torch": (joint_loop, LoopConfig(**base)),
    }
    rates = {name: [] for name in configs}
    for _ in range(args.rounds):
        for name, (loop, config) in configs.items():
            model = build(args.model, joint=loop is joint_loop)
            rates[name].append(loop(model, data, config, args.steps))
    median = {name: statistics.median(values) for name, values in rates.items()}
    overhead = median["bare_torch_loop"] / median["fit_torch"] - 1
    assembly = batch_assembly_ms(splits["train"], 32, rounds=args.rounds)
    result = {
        "benchmark": "loop_overhead",
        "setup": {
            "model": args.model,
            "task": "rt_polarity",
            "batch_size": 32,
            "max_length": 64,
            "steps": args.steps,
            "rounds": args.rounds,
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
        },
        "steps_per_second": median,
        "fit_overhead_over_bare_loop": overhead,
        "deepspeed_zero2_over_torch_time": median["fit_torch"] / median["fit_deepspeed_zero2"],
        "fit_joint_over_fit_time": median["fit_torch"] / median["fit_joint_torch"],
        "batch_assembly_ms": assembly,
        "select_walk_over_rows_of": assembly["select_walk"] / assembly["rows_of"],
        "rows_of_fraction_of_fit_step": assembly["rows_of"] / 1000 * median["fit_torch"],
        "target_overhead_max": TARGET_OVERHEAD_MAX,
        "target_met": overhead <= TARGET_OVERHEAD_MAX,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_record(out, result)
    for name, value in median.items():
        print(f"{name:22s} {value:6.3f} steps/s")
    print(f"fit overhead over a bare loop: {100 * overhead:+.1f}% (target <= {100 * TARGET_OVERHEAD_MAX:.0f}%)")
    print(f"DeepSpeed ZeRO-2 step time / torch: {result['deepspeed_zero2_over_torch_time']:.2f}x")
    print(f"joint loop step time / fit (one task): {result['fit_joint_over_fit_time']:.2f}x")
    print(
        f"a batch of 32 assembled: {assembly['rows_of']:.2f} ms (a select walked row by row: "
        f"{assembly['select_walk']:.2f} ms, {result['select_walk_over_rows_of']:.1f}x); wrote {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
