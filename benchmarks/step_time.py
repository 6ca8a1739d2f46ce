"""Training-step time of the transfer layers on one frozen backbone, as ratios from one run.

Real MiniLM-L6 (d=384, L=6), batch 32, length 128, fp32, AdamW step included. Compared:
  - a single trainable adapter (the stage-1 step; the baseline of every ratio);
  - ScaLearn with 2, 8 and 15 sources, batched (ω folded into the up-projection) and as a Python
    loop over adapters (scalearn.reference.LoopScaLearn);
  - AdapterFusion with 8 and 15 sources, batched and per-source (K and V applied to every source's
    output, as adapter-transformers does: scalearn.reference.PerSourceFusion).
One torch thread by default, as the measurements the targets come from; --threads to change it.
Configurations run round-robin, so machine noise hits all of them alike; each figure is the median.
Batched and reference outputs are also compared on the same weights (max abs difference).

    python benchmarks/step_time.py [--model minilm] [--rounds 5] [--out benchmarks/results/step_time.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from scalearn import HeadConfig, get_method, load_config, load_encoder
from scalearn.adapters import BottleneckAdapters
from scalearn.heads import TaskHead
from scalearn.methods.base import adapter_config_for
from scalearn.reference import LoopScaLearn, PerSourceFusion

sys.path.insert(0, str(Path(__file__).resolve().parent))  # its siblings, as a script or loaded by path
from record import write_record  # noqa: E402

TARGETS = {  # from issue 2, set from measurements on this kind of machine
    "scalearn_8_over_adapter_max": 1.10,
    "scalearn_15_over_adapter_max": 1.20,
    "fusion_8_reference_over_batched_min": 2.5,
}


def sources_for(encoder, n: int) -> BottleneckAdapters:
    bank = BottleneckAdapters(adapter_config_for(encoder), n)
    with torch.no_grad():
        for p in bank.parameters():
            p.normal_(std=0.05)
    return bank.requires_grad_(False)


def build(model_name: str, kind: str, n: int, reference: bool):
    encoder = load_encoder(model_name)
    head = HeadConfig("classification", encoder.config.hidden_size, 2)
    if kind == "adapter":
        return get_method("adapter").build(encoder, head)
    if kind == "lora":
        return get_method("lora").build(encoder, head)
    if kind == "scalearn_lora":
        from scalearn.model import TransferModel
        from scalearn.reference import loop_lora_bank
        from scalearn.tuners.lora_bank import LoRABank, LoRASources

        bank = LoRABank(LoRASources.random(encoder, n))
        model = TransferModel(encoder, TaskHead(head), tuner=loop_lora_bank(bank) if reference else bank)
        model.set_trainable(model.tuner, model.head)
        return model
    method = get_method("scalearn" if kind == "scalearn" else "adapterfusion")
    model = method.build(encoder, head, sources_for(encoder, n))
    if reference:
        fast = model.transfer
        slow = LoopScaLearn(**_init_args(fast)) if kind == "scalearn" else PerSourceFusion(**_init_args(fast))
        slow.load_state_dict(fast.state_dict())
        model.transfer = slow
    return model


def _init_args(transfer) -> dict:
    config = dict(transfer.config())
    config.pop("kind")
    return config


def step(model, optimizer, batch, labels) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss = model.loss(model(**batch), labels)
    loss.backward()
    optimizer.step()


def max_output_difference(model_name: str, kind: str, n: int, batch) -> float:
    torch.manual_seed(0)
    fast = build(model_name, kind, n, reference=False).eval()
    torch.manual_seed(0)
    slow = build(model_name, kind, n, reference=True).eval()
    slow.load_state_dict(fast.state_dict())
    with torch.no_grad():
        return (fast(**batch) - slow(**batch)).abs().max().item()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the targets were set at 1)")
    parser.add_argument("--out", default=None, help="default benchmarks/results/step_time[_lora].json")
    parser.add_argument("--group", choices=["adapters", "lora"], default="adapters", help="which comparison")
    args = parser.parse_args(argv)
    args.out = args.out or f"benchmarks/results/step_time{'_lora' if args.group == 'lora' else ''}.json"
    torch.set_num_threads(args.threads)

    if args.group == "lora":  # ScaLearn over LoRA sources against one trainable LoRA, in one run
        configs = [("lora", 1, False)] + [("scalearn_lora", n, ref) for n in (8, 15) for ref in (False, True)]
        return lora_group(args, configs)
    configs = [("adapter", 1, False)]
    configs += [("scalearn", n, ref) for n in (2, 8, 15) for ref in (False, True)]
    configs += [("fusion", n, ref) for n in (8, 15) for ref in (False, True)]
    label = {c: f"{c[0]}_{c[1]}" + ("_reference" if c[2] else "") for c in configs}
    label[("adapter", 1, False)] = "adapter"

    median, batch = timed(args, configs, label)
    base = median["adapter"]
    ratios = {name: value / base for name, value in median.items()}
    speedups = {
        f"{kind}_{n}_reference_over_batched": median[f"{kind}_{n}_reference"] / median[f"{kind}_{n}"]
        for kind, ns in (("scalearn", (2, 8, 15)), ("fusion", (8, 15)))
        for n in ns
    }
    small = {k: v[:, :16] for k, v in batch.items()}
    equality = {
        f"{kind}_{n}": max_output_difference(args.model, kind, n, small) for kind, n in (("scalearn", 8), ("fusion", 8))
    }
    checks = {
        "scalearn_8_over_adapter_max": ratios["scalearn_8"],
        "scalearn_15_over_adapter_max": ratios["scalearn_15"],
        "fusion_8_reference_over_batched_min": speedups["fusion_8_reference_over_batched"],
    }
    met = {
        key: (value <= TARGETS[key] if key.endswith("_max") else value >= TARGETS[key]) for key, value in checks.items()
    }
    result = {
        "benchmark": "step_time",
        "setup": setup(args),
        "median_step_seconds": median,
        "ratio_to_single_adapter": ratios,
        "reference_over_batched": speedups,
        "max_abs_output_difference_batched_vs_reference": equality,
        "targets": TARGETS,
        "targets_met": met,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_record(out, result)
    for name in median:
        print(f"{name:22s} {median[name]:7.3f} s  {ratios[name]:5.2f}x adapter")
    for name, value in speedups.items():
        print(f"{name:38s} {value:5.2f}x")
    print("targets met:", met)
    print(f"wrote {out}")
    return 0


def setup(args) -> dict:
    """What a run measured on: its arguments and the machine."""
    return {
        "model": args.model,
        "batch_size": args.batch_size,
        "length": args.length,
        "precision": "fp32",
        "rounds": args.rounds,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "malloc": {k: os.environ.get(k) for k in ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_")},
    }


def timed(args, configs, label) -> tuple[dict[str, float], dict]:
    """Median step seconds per configuration, the configurations interleaved round by round; and the batch."""
    g = torch.Generator().manual_seed(0)
    batch = {
        "input_ids": torch.randint(5, load_config(args.model).vocab_size, (args.batch_size, args.length), generator=g),
        "attention_mask": torch.ones(args.batch_size, args.length, dtype=torch.long),
    }
    labels = torch.randint(0, 2, (args.batch_size,), generator=g)
    runs = {}
    for config in configs:
        torch.manual_seed(0)
        model = build(args.model, *config).train()
        optimizer = torch.optim.AdamW(model.trainable_parameters().values(), lr=1e-4)
        step(model, optimizer, batch, labels)  # warm-up
        runs[config] = (model, optimizer)
    times = {config: [] for config in configs}
    for _ in range(args.rounds):
        for config in configs:
            model, optimizer = runs[config]
            start = time.perf_counter()
            step(model, optimizer, batch, labels)
            times[config].append(time.perf_counter() - start)
    return {label[c]: statistics.median(t) for c, t in times.items()}, batch


def lora_group(args, configs) -> int:
    label = {c: f"{c[0]}_{c[1]}" + ("_reference" if c[2] else "") for c in configs}
    label[("lora", 1, False)] = "lora"
    median, _ = timed(args, configs, label)
    ratios = {name: value / median["lora"] for name, value in median.items()}
    speedups = {
        f"scalearn_lora_{n}_reference_over_batched": median[f"scalearn_lora_{n}_reference"]
        / median[f"scalearn_lora_{n}"]
        for n in (8, 15)
    }
    # batched and per-source outputs on the same weights, in evaluation
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, load_config(args.model).vocab_size, (2, 16), generator=g)
    outputs = []
    for reference in (False, True):
        torch.manual_seed(0)
        model = build(args.model, "scalearn_lora", 8, reference).eval()
        with torch.no_grad():
            outputs.append(model(ids, torch.ones_like(ids)))
    result = {
        "benchmark": "step_time_lora",
        "setup": {**setup(args), "sources": "random LoRA modules, r = 8, on query and value"},
        "median_step_seconds": median,
        "ratio_to_single_lora": ratios,
        "reference_over_batched": speedups,
        "max_abs_output_difference_batched_vs_reference": (outputs[0] - outputs[1]).abs().max().item(),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_record(out, result)
    for name in median:
        print(f"{name:28s} {median[name]:7.3f} s  {ratios[name]:5.2f}x one LoRA")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
