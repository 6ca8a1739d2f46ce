"""What experiments/scaling.yaml will cost: GPU memory per backbone and GPU hours, from its plan.

No GPU is needed: the plan (trials, steps, batch, length, per-model settings) comes from the experiment file and
the sizes from the published configs (scalearn/catalog.py). Step time is the measured cost per parameter when
benchmarks/results/gpu_decoders.json exists (the median over its backbones of seconds per step per billion
parameters, per method, checkpointed passes where the trial checkpoints); otherwise a FLOP model:

    step seconds = F · N · tokens / (MFU · peak)

F = 4 (forward 2, backward through the frozen layers 2: activations' gradients only), 6 with gradient
checkpointing (the forward again); N backbone parameters; tokens = batch × max_length (every example padded to
the maximum: an upper bound, GLUE's median lengths are far shorter); peak 989 TFLOP/s (H100 SXM, bf16 dense);
MFU 0.35. Evaluation: every ``eval_every_steps`` and at the end on the dev split (10% of train, at most
``max_dev_examples``), then once on
the test split, each example 2 · N · max_length FLOPs. Every trial is counted at its full ``max_steps`` (early
stopping only makes it cheaper).

Memory per trial (GiB): frozen weights (2 or 4 bytes per parameter as ``backbone_dtype``), trained parameters
with AdamW (16 bytes each: fp32 value, gradient, two moments), activations (bf16: the layer inputs kept for
backward, and one layer's working set, or every layer's without checkpointing) and, for AdapterFusion, its
per-source projections. ZeRO-3 divides weights and optimizer state over the trial's GPUs. A rough guide for
choosing GPUs, not a measurement: benchmarks/gpu_decoders.py measures it.

    python benchmarks/scaling_estimate.py [--experiment experiments/scaling.yaml]
                                          [--out benchmarks/results/scaling_estimate.json]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from harness.plan import expand
from harness.spec import load_spec
from scalearn import load_config
from scalearn.params import backbone_size, count_parameters

sys.path.insert(0, str(Path(__file__).resolve().parent))  # its siblings, as a script or loaded by path
from record import write_record  # noqa: E402

PEAK_FLOPS = 989e12
MFU = 0.35
# GLUE training-set sizes (HF `glue`); dev is 10% of train, test the official validation (docs/method.md §4.1)
GLUE_TRAIN = {
    "mnli": 392_702,
    "qqp": 363_846,
    "qnli": 104_743,
    "sst2": 67_349,
    "cola": 8_551,
    "stsb": 5_749,
    "mrpc": 3_668,
    "rte": 2_490,
}
GLUE_TEST = {"mnli": 9_815 + 9_832, "qqp": 40_430, "qnli": 5_463, "sst2": 872, "cola": 1_043, "stsb": 1_500}
GLUE_TEST |= {"mrpc": 408, "rte": 277}
MEASURED_AS = {"adapter": "adapter", "lora": "adapter", "adapterfusion": "adapterfusion_8"}  # else scalearn_8


def measured_rates(path: Path) -> dict[str, float] | None:
    """Seconds per step per billion parameters by measured configuration, median over backbones."""
    if not path.exists():
        return None
    rows = defaultdict(list)
    for model in json.loads(path.read_text())["models"].values():
        for label, row in model["methods"].items():
            if row.get("seconds_per_step_per_billion"):
                rows[label].append(row["seconds_per_step_per_billion"])
    return {label: statistics.median(values) for label, values in rows.items()}


def trial_seconds(trial, n: int, rates: dict | None, tokens_measured: int | None) -> float:
    loop, length = trial.config.loop, trial.config.data.max_length or 128
    tokens = loop.batch_size * loop.gradient_accumulation * length
    if rates:
        label = MEASURED_AS.get(trial.method, "scalearn_8") + ("_checkpointed" if loop.gradient_checkpointing else "")
        step = rates[label] * n / 1e9 * tokens / tokens_measured
    else:
        step = (6 if loop.gradient_checkpointing else 4) * n * tokens / (MFU * PEAK_FLOPS)
    steps = loop.max_steps or 1000
    train = GLUE_TRAIN.get(trial.task, 10_000)
    dev = min(train // 10, trial.config.data.max_dev_examples or train)
    evaluations = math.ceil(steps / (loop.eval_every_steps or steps)) + 1
    evaluation = (evaluations * dev + GLUE_TEST.get(trial.task, 1_000)) * 2 * n * length / (MFU * PEAK_FLOPS)
    return steps * step + evaluation


def memory_gib(trial, model: str, sources: int, gpus: int) -> float:
    size = backbone_size(model)
    n, d, layers = size["parameters"], size["hidden_size"], size["num_layers"]
    loop, length = trial.config.loop, trial.config.data.max_length or 128
    weights = n * (2 if loop.backbone_dtype == "bf16" or loop.engine == "deepspeed" else 4)
    trained = count_parameters(model, trial.method, num_sources=sources)["transfer"] * 16
    if loop.engine == "deepspeed" and loop.zero_stage == 3:
        weights, trained = weights / gpus, trained / gpus
    micro = loop.batch_size // (gpus if loop.engine == "deepspeed" else 1)
    config = load_config(model)
    inter = getattr(config, "intermediate_size", None) or 4 * d
    per_layer = micro * length * (6 * d + 3 * inter) * 2  # one layer's activations in bf16: attention, norms, MLP
    if trial.method == "adapterfusion":
        per_layer += micro * length * sources * 3 * d * 2  # each source's output, key and value
    kept = layers * micro * length * d * 2 + per_layer if loop.gradient_checkpointing else layers * per_layer
    return (weights + trained + kept) / 2**30 * 1.15  # allocator and CUDA context


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", default="experiments/scaling.yaml")
    parser.add_argument("--measured", default="benchmarks/results/gpu_decoders.json")
    parser.add_argument("--out", default="benchmarks/results/scaling_estimate.json")
    args = parser.parse_args(argv)
    spec = load_spec(args.experiment)
    rates = measured_rates(Path(args.measured))
    tokens_measured = None
    if rates:
        measured = json.loads(Path(args.measured).read_text())
        tokens_measured = measured["batch_size"] * measured["length"]
    rows, trials = {}, expand(spec)
    for model in spec.models:
        mine = [t for t in trials if t.model == model]
        gpus = int(spec.resources_for(model).get("gpus") or 1)
        n = backbone_size(model)["parameters"]
        sources = len(spec.source_list(spec.target_list()[0]))
        # data parallel over a trial's GPUs splits each step's work: GPU hours stay (communication left out)
        hours = sum(trial_seconds(t, n, rates, tokens_measured) for t in mine) / 3600
        peaks = {}
        for method in spec.methods:
            trial = next(t for t in mine if t.method == method)
            peaks[method] = round(memory_gib(trial, model, sources, gpus), 1)
        rows[model] = {
            "parameters": n,
            "trials": len(mine),
            "gpus_per_trial": gpus,
            "gpu_hours": round(hours, 1),
            "peak_gib_per_gpu": peaks,
        }
    result = {
        "experiment": spec.name,
        "step_time_from": "measured (" + args.measured + ")"
        if rates
        else f"FLOP model, MFU {MFU}, peak {PEAK_FLOPS:.3g}",
        "models": rows,
        "total_gpu_hours": round(sum(r["gpu_hours"] for r in rows.values()), 1),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_record(out, result)
    print(
        "| model | parameters | trials | GPUs/trial | GPU h | peak GiB/GPU: adapter · scalearn · adapterfusion · lora |"
    )
    print("|---|---|---|---|---|---|")
    for model, row in rows.items():
        p = row["peak_gib_per_gpu"]
        peaks = " · ".join(str(p.get(m, "–")) for m in ("adapter", "scalearn", "adapterfusion", "lora"))
        print(
            f"| {model} | {row['parameters'] / 1e9:.2f}B | {row['trials']} | {row['gpus_per_trial']} | "
            f"{row['gpu_hours']:,} | {peaks} |"
        )
    print(f"total: {result['total_gpu_hours']:,} GPU hours ({result['step_time_from']}); wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
