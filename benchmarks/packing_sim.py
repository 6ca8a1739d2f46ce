"""GPU packing, simulated: 1,000 GLUE trials (RoBERTa-base, the paper's methods and budgets) scheduled on a
simulated cluster of N GPUs, one trial per GPU vs packed by measured memory (`harness.packing.per_device`).

Sizes are *measured*, on this CPU machine: for each trial kind (method × max length, batch 32) a fresh
process builds random-init RoBERTa-base with the method's parts and runs two fp32 optimiser steps; its peak
resident memory minus that of a process that only imported the libraries is the kind's footprint (the
same tensors a GPU would hold in fp32: weights, gradients, optimiser state, activations). Durations come
from the paper's budgets: steps = ⌈0.9·train/32⌉ × epochs, times each method's step cost relative to a
single adapter (benchmarks/results/step_time.json; full fine-tuning measured here too).

What cannot be measured without a GPU: how much of a device one trial's kernels use. That is the
parameter ``u`` (utilisation when alone); co-located trials progress at rate 1/max(1, Σu). The figures are
given for several u; at u = 1 packing can only lose (memory is shared, compute is not).

    python benchmarks/packing_sim.py [--gpus 8] [--device-gb 80] [--trials 1000]
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # its siblings, as a script or loaded by path
from record import write_record  # noqa: E402

GLUE_TRAIN = {
    "mnli": 392_702,
    "qqp": 363_846,
    "qnli": 104_743,
    "sst2": 67_349,
    "stsb": 5_749,
    "mrpc": 3_668,
    "rte": 2_490,
    "cola": 8_551,
}
"""Official train-set sizes (GLUE); the protocol trains on 90% of them (docs/method.md §4.1)."""
EPOCHS = {
    "adapter": 30,
    "scalearn": 30,
    "scalearn_uniform": 30,
    "scalearn_pp": 30,
    "scalearn_uniform_pp": 30,
    "adapterfusion": 10,
    "full_ft": 10,
}
METHODS = ("adapter", "adapterfusion", "scalearn", "scalearn_uniform_pp", "full_ft")

MEASURE = r"""
import json, resource, sys, torch
method, length, batch, train = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
from scalearn import HeadConfig, get_method, load_encoder
from scalearn.adapters import BottleneckAdapters
from scalearn.methods.base import adapter_config_for
torch.manual_seed(0)
if train:
    encoder = load_encoder("roberta-base", pretrained=False)
    bank = BottleneckAdapters(adapter_config_for(encoder), 8) if method not in ("adapter", "full_ft") else None
    model = get_method(method).build(encoder, HeadConfig("classification", encoder.config.hidden_size, 3), bank)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    ids = torch.randint(5, 1000, (batch, length))
    labels = torch.randint(0, 3, (batch,))
    for _ in range(2):
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids))
        model.head.loss(logits, labels).backward()
        optimizer.step()
        optimizer.zero_grad()
print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(method: str, length: int, batch: int, train: bool = True) -> float:
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, method, str(length), str(batch), "1" if train else "0"],
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_mb"]


def glue_trials(count: int, step_cost: dict[str, float]) -> list[dict]:
    """Stage 1: an adapter per task (seed 0); stage 2: every method × task × seed until ``count``."""
    trials = [
        {"stage": 1, "kind": "adapter", "steps": math.ceil(0.9 * n / 32) * EPOCHS["adapter"], "task": t}
        for t, n in GLUE_TRAIN.items()
    ]
    seed = 0
    while len(trials) < count:
        for method in METHODS:
            for task, n in GLUE_TRAIN.items():
                if len(trials) < count:
                    trials.append(
                        {
                            "stage": 2,
                            "kind": method,
                            "task": task,
                            "seed": seed,
                            "steps": math.ceil(0.9 * n / 32) * EPOCHS[method],
                        }
                    )
        seed += 1
    for trial in trials:
        trial["work"] = trial["steps"] * step_cost[trial["kind"]]  # seconds alone, at 1 s per adapter step
    return trials


def simulate(
    trials: list[dict],
    gpus: int,
    slots: dict[str, int],
    peaks: dict[str, float],
    device_mb: float,
    utilisation: float,
    margin: float = 0.15,
    reserve_mb: float = 1536.0,
) -> float:
    """Makespan: stage 1, then stage 2 (its sources); in each, longest work first onto the first device with
    room (memory and slots of the kind); co-located trials share compute at rate 1/max(1, Σu)."""
    clock = 0.0
    for stage in (1, 2):
        queue = sorted((t for t in trials if t["stage"] == stage), key=lambda t: -t["work"])
        devices = [{"running": [], "memory": 0.0} for _ in range(gpus)]
        while queue or any(d["running"] for d in devices):
            for device in devices:  # place what fits: an empty device takes anything
                for trial in list(queue):
                    need = peaks[trial["kind"]] * (1 + margin)
                    room = len(device["running"]) < slots[trial["kind"]]
                    fits = room and device["memory"] + need <= device_mb - reserve_mb
                    if not device["running"] or fits:
                        device["running"].append({**trial, "left": trial["work"]})
                        device["memory"] += need
                        queue.remove(trial)
            # advance to the next finish
            events = []
            for index, device in enumerate(devices):
                if device["running"]:
                    rate = 1 / max(1.0, utilisation * len(device["running"]))
                    for job in device["running"]:
                        heapq.heappush(events, (job["left"] / rate, index))
            step = events[0][0]
            clock += step
            for device in devices:
                if device["running"]:
                    rate = 1 / max(1.0, utilisation * len(device["running"]))
                    for job in device["running"]:
                        job["left"] -= step * rate
                    done = [j for j in device["running"] if j["left"] <= 1e-9]
                    for job in done:
                        device["running"].remove(job)
                        device["memory"] -= peaks[job["kind"]] * (1 + margin)
    return clock


def main(argv=None) -> int:
    from harness.packing import per_device

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--device-gb", type=float, default=80.0)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--peaks", default=None, help="a JSON {kind: peak_mb} instead of measuring (for tests)")
    parser.add_argument("--out", default="benchmarks/results/packing_sim.json")
    args = parser.parse_args(argv)
    if args.peaks:
        peaks, baseline = json.loads(Path(args.peaks).read_text()), 0.0
    else:
        baseline = measure("adapter", args.length, args.batch, train=False)
        peaks = {m: measure(m, args.length, args.batch) - baseline for m in METHODS}
    ratio = json.loads(Path("benchmarks/results/step_time.json").read_text())["ratio_to_single_adapter"]
    step_cost = {
        "adapter": 1.0,
        "scalearn": ratio["scalearn_8"],
        "scalearn_uniform_pp": ratio["scalearn_8"],
        "adapterfusion": ratio["fusion_8"],
        "full_ft": 2.0,
    }
    # full fine-tuning: backward through the whole encoder, ~2× an adapter step (not measured; stated as such)
    trials = glue_trials(args.trials, step_cost)
    device_mb = args.device_gb * 1024
    packed = {m: per_device(p, device_mb) for m, p in peaks.items()}
    alone = {m: 1 for m in peaks}
    rows = []
    for u in (0.25, 0.5, 1.0):
        one = simulate(trials, args.gpus, alone, peaks, device_mb, u)
        pack = simulate(trials, args.gpus, packed, peaks, device_mb, u)
        rows.append({"utilisation": u, "makespan_one_per_gpu": one, "makespan_packed": pack, "speedup": one / pack})
        print(f"u = {u:4.2f}: one per GPU {one / 3600:8.1f} h, packed {pack / 3600:8.1f} h → {one / pack:.2f}×")
    result = {
        "benchmark": "packing_sim",
        "trials": len(trials),
        "gpus": args.gpus,
        "device_gb": args.device_gb,
        "batch": args.batch,
        "max_length": args.length,
        "peaks_mb": peaks,
        "baseline_process_mb": baseline,
        "per_device": packed,
        "step_cost": step_cost,
        "unit": "seconds at 1 s per single-adapter step",
        "rows": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_record(out, result)
    print(f"peaks (MB): {', '.join(f'{k} {v:.0f}' for k, v in peaks.items())}; per device: {packed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
