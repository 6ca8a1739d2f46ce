"""Step time and peak GPU memory of the transfer methods on decoders at their real shapes, in bf16.

Random weights (nothing is downloaded) at the published configs of qwen3-0.6b, qwen3-1.7b and llama-3.2-3b
(scalearn/catalog.py); frozen weights stored in bf16, autocast bf16, AdamW on what trains; batch 32 × 128
tokens, every token real. Per backbone: a single trainable adapter (stage 1), ScaLearn over 8 source adapters
and AdapterFusion over 8, each with and without gradient checkpointing. Each figure is the median of
``--steps`` timed steps after two warm-up steps; the peak is torch.cuda.max_memory_allocated over those steps.
``seconds_per_step_per_billion`` (step time ÷ backbone parameters) is what docs/scaling.md's GPU-hour estimate of
experiments/scaling.yaml scales by (benchmarks/scaling_estimate.py reads this file).

Needs CUDA; without it the script says so and exits 0, unless ``--device cpu`` (a smoke run on tiny models,
for the test suite: tests/test_benchmarks_run.py).

    python benchmarks/gpu_decoders.py [--models qwen3-0.6b,qwen3-1.7b,llama-3.2-3b] [--steps 10]
                                      [--out benchmarks/results/gpu_decoders.json]
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from scalearn import HeadConfig, get_method, load_config, load_encoder
from scalearn.adapters import BottleneckAdapters
from scalearn.methods.base import adapter_config_for
from scalearn.params import backbone_size
from scalearn.train import store_frozen_as

sys.path.insert(0, str(Path(__file__).resolve().parent))  # its siblings, as a script or loaded by path
from record import write_record  # noqa: E402

MODELS = ("qwen3-0.6b", "qwen3-1.7b", "llama-3.2-3b")
METHODS = (("adapter", 0), ("scalearn", 8), ("adapterfusion", 8))


def build(name: str, method: str, sources: int, device: torch.device, checkpointing: bool):
    encoder = load_encoder(name, pretrained=False, device=device)
    head = HeadConfig("classification", encoder.config.hidden_size, 2)
    if sources:
        bank = BottleneckAdapters(adapter_config_for(encoder), sources).to(device)
        with torch.no_grad():
            for p in bank.parameters():
                p.normal_(std=0.02)
        model = get_method(method).build(encoder, head, bank.requires_grad_(False))
    else:
        model = get_method(method).build(encoder, head)
    store_frozen_as(model, torch.bfloat16)
    model.to(device)
    if checkpointing:
        kwargs = {"use_reentrant": False}
        if hasattr(model.encoder, "activation_checkpointing_enable"):
            model.encoder.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            model.encoder.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    return model.train()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(model, batch, labels, device: torch.device, steps: int) -> dict:
    optimizer = torch.optim.AdamW(list(model.trainable_parameters().values()), lr=1e-4)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            logits = model(**batch)
        loss = model.loss(logits.float(), labels)
        loss.backward()
        optimizer.step()
        return loss

    for _ in range(2):
        step()
    synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        loss = step()
        synchronize(device)
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {"step_s": statistics.median(times), "peak_gib": peak, "loss_finite": bool(torch.isfinite(loss))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--no-checkpointing-pass", action="store_true", help="only the checkpointed pass")
    parser.add_argument("--out", default="benchmarks/results/gpu_decoders.json")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_decoders: no CUDA device here; nothing measured (run it where one is: docs/scaling.md)")
        return 0
    from scalearn.train import _native_bf16

    if device.type == "cuda" and not _native_bf16(device):  # emulated bf16 would time the emulation
        print(f"gpu_decoders: {torch.cuda.get_device_name(device)} has no native bf16; nothing measured")
        return 0

    results = {}
    passes = (True,) if args.no_checkpointing_pass else (False, True)
    for name in args.models.split(","):
        size = backbone_size(name)
        g = torch.Generator().manual_seed(0)
        vocab = load_config(name).vocab_size
        batch = {
            "input_ids": torch.randint(5, vocab, (args.batch_size, args.length), generator=g).to(device),
            "attention_mask": torch.ones(args.batch_size, args.length, dtype=torch.long, device=device),
        }
        labels = torch.randint(0, 2, (args.batch_size,), generator=g).to(device)
        rows = {}
        for method, sources in METHODS:
            for checkpointing in passes:
                label = f"{method}{f'_{sources}' if sources else ''}{'_checkpointed' if checkpointing else ''}"
                torch.manual_seed(0)
                try:
                    model = build(name, method, sources, device, checkpointing)
                    row = measure(model, batch, labels, device, args.steps)
                except torch.OutOfMemoryError:
                    row = {"step_s": None, "peak_gib": None, "out_of_memory": True}
                model = None
                gc.collect()
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                if row.get("step_s"):
                    row["tokens_per_s"] = args.batch_size * args.length / row["step_s"]
                    row["seconds_per_step_per_billion"] = row["step_s"] / (size["parameters"] / 1e9)
                rows[label] = row
                print(f"{name:14s} {label:28s} {row}", flush=True)
        results[name] = {**size, "methods": rows}

    summary = {
        "what": "median step time (s) and peak allocated GPU memory (GiB); random weights at published shapes, "
        "frozen weights bf16, autocast bf16, AdamW; batch × length tokens per step, all real",
        "batch_size": args.batch_size,
        "length": args.length,
        "steps": args.steps,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "models": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_record(out, summary)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
