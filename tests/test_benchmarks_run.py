"""The benchmark scripts still run (on a tiny model, one round); their figures come from `make bench`."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load(name):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def test_step_time_benchmark_runs_and_writes_its_json(tmp_path):
    out = tmp_path / "step_time.json"
    args = ["--model", "tiny-bert", "--rounds", "1", "--batch-size", "4", "--length", "16", "--out", str(out)]
    args += ["--threads", str(torch.get_num_threads())]  # the thread count is process-wide: leave it as is
    assert load("step_time").main(args) == 0
    result = json.loads(out.read_text())
    assert set(result["ratio_to_single_adapter"]) >= {"adapter", "scalearn_8", "scalearn_15", "fusion_8"}
    assert result["ratio_to_single_adapter"]["adapter"] == 1.0
    assert all(v < 1e-4 for v in result["max_abs_output_difference_batched_vs_reference"].values())


def test_real_backbones_benchmark_runs_and_writes_its_json(tmp_path):
    out = tmp_path / "real_backbones.json"
    args = ["--models", "minilm", "--rounds", "1", "--batch-size", "2", "--length", "8", "--out", str(out)]
    assert load("real_backbones").main([*args, "--threads", str(torch.get_num_threads())]) == 0
    written = json.loads(out.read_text())
    row = written["backbones"]["minilm"]
    assert row["parameters"] == 22_565_376 and row["adapter_train_step_seconds"] > 0
    made = written["made"]  # every benchmark's JSON says what made it
    assert made["git_commit"] and made["packages"]["torch"] and made["date"] and "command" in made
    assert row["scalearn_eval_seconds_per_example"] > 0


def test_a_partial_run_does_not_replace_the_committed_json_of_every_backbone(capsys):
    committed = "benchmarks/results/method_costs.json"
    assert load("method_costs").main(["--models", "minilm,not-installed-here", "--out", committed]) == 1
    assert "covers every backbone" in capsys.readouterr().out


def test_method_costs_benchmark_measures_each_method_in_a_fresh_process(tmp_path):
    out = tmp_path / "method_costs.json"
    args = ["--models", "minilm", "--methods", "adapter,scalearn_lora", "--batch-size", "2", "--length", "8"]
    assert load("method_costs").main([*args, "--eval-batch-size", "4", "--rounds", "1", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["backbones"]["minilm"]
    for row in rows.values():  # weights are mapped from their file and paged in when used: a forward pass reads
        # MiniLM's 43 MB of layer weights (of its embeddings, only the rows of the tokens it looks up)
        assert row["peak_mb"] > row["built_mb"] + 40 and row["built_mb"] > row["after_imports_mb"]
    assert rows["adapter"]["peak_over_adapter"] == rows["adapter"]["eval_seconds_per_example_over_adapter"] == 1.0
    lora = rows["scalearn_lora"]
    assert lora["train_step_seconds"] > 0 and lora["eval_seconds_per_example_over_adapter"] == pytest.approx(
        lora["eval_seconds_per_example"] / rows["adapter"]["eval_seconds_per_example"]
    )
    # both train the same head; ScaLearn over LoRA adds only its ω, far fewer than an adapter
    assert rows["scalearn_lora"]["trainable_parameters"] < rows["adapter"]["trainable_parameters"]


def test_data_cache_benchmark_runs_and_writes_its_json(tmp_path):
    out = tmp_path / "data_cache.json"
    args = ["--model", "minilm", "--tasks", "vader_amazon", "--hits", "1", "--step-shape", "2x16", "--out", str(out)]
    assert load("data_cache").main(args) == 0
    result = json.loads(out.read_text())
    row = result["tasks"]["vader_amazon"]
    # the benchmark itself asserts the first load missed and the later ones hit; timings are only reported
    # (this machine is noisy), so check the figures it wrote agree with each other
    assert row["train_examples"] > 0 and row["miss_seconds"] > 0 and row["hit_seconds"] > 0
    assert row["miss_over_hit"] == pytest.approx(row["miss_seconds"] / row["hit_seconds"])


def test_loop_overhead_benchmark_runs_and_writes_its_json(tmp_path):
    out = tmp_path / "loop_overhead.json"
    assert load("loop_overhead").main(["--model", "tiny-bert", "--steps", "3", "--rounds", "1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["steps_per_second"]) == {"bare_torch_loop", "fit_torch", "fit_deepspeed_zero2", "fit_joint_torch"}
    assert result["fit_joint_over_fit_time"] > 0
    assembly = result["batch_assembly_ms"]
    assert set(assembly) == {"select_walk", "rows_of"} and min(assembly.values()) > 0
    assert result["select_walk_over_rows_of"] == pytest.approx(assembly["select_walk"] / assembly["rows_of"])


def test_scheduler_overhead_benchmark_runs_and_writes_its_json(ray_local, tmp_path):
    out = tmp_path / "scheduler_overhead.json"
    assert load("scheduler_overhead").main(["--stage1", "2", "--stage2", "6", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["trials"] == 8 and {"run_seconds", "per_trial_ms", "noop_resubmit_seconds"} <= set(result)


def test_mlflow_throughput_benchmark_runs_and_writes_its_json(tmp_path):
    out = tmp_path / "mlflow_throughput.json"
    arguments = ["--runs", "20", "--api-runs", "5", "--long-runs", "5", "--out", str(out)]
    assert load("mlflow_throughput").main(arguments) == 0
    result = json.loads(out.read_text())
    assert [row["path"] for row in result["rows"]] == ["bulk", "bulk", "api", "bulk", "submit"]
    assert all(row["all_logged"] for row in result["rows"]) and result["bulk_speedup_over_api"] > 0


def test_packing_simulation_runs_and_packs(tmp_path):
    peaks = tmp_path / "peaks.json"
    peaks.write_text(
        json.dumps(
            {"adapter": 9000, "adapterfusion": 12000, "scalearn": 9500, "scalearn_uniform_pp": 9400, "full_ft": 16000}
        )
    )
    out = tmp_path / "packing_sim.json"
    assert load("packing_sim").main(["--peaks", str(peaks), "--trials", "200", "--gpus", "4", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    by_u = {row["utilisation"]: row for row in result["rows"]}
    assert result["per_device"]["adapter"] == 7 and result["per_device"]["full_ft"] == 4
    assert by_u[0.25]["speedup"] > 2 > by_u[0.5]["speedup"] > 1  # light trials pack; at u = 1 nothing to gain
    assert 0.8 < by_u[1.0]["speedup"] < 1.1


def test_preflight_benchmark_runs_and_writes_its_json(own_ray, tmp_path):  # it times the start of a Ray of its own
    out = tmp_path / "preflight.json"
    assert load("preflight").main(["--rounds", "1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["trials"] == {"demo": 19, "tiny": 10} and result["ray_start_seconds"] > 0
    assert set(result["preflight_seconds"]) == {"demo", "tiny"}


def test_gpu_decoders_benchmark_runs_on_the_cpu_with_tiny_decoders(tmp_path):
    out = tmp_path / "gpu_decoders.json"
    args = ["--device", "cpu", "--models", "tiny-llama,tiny-gemma2", "--steps", "1", "--batch-size", "2"]
    assert load("gpu_decoders").main([*args, "--length", "8", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    rows = result["models"]["tiny-llama"]["methods"]
    assert set(rows) == {f"{m}{c}" for m in ("adapter", "scalearn_8", "adapterfusion_8") for c in ("", "_checkpointed")}
    assert all(row["loss_finite"] and row["step_s"] > 0 for row in rows.values())
    assert result["models"]["tiny-gemma2"]["parameters"] > 0


def test_scaling_estimate_covers_every_model_of_the_scaling_study(tmp_path):
    out = tmp_path / "estimate.json"
    assert load("scaling_estimate").main(["--measured", str(tmp_path / "none.json"), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    rows = result["models"]
    assert len(rows) == 11 and all(row["trials"] == 176 for row in rows.values())
    # the FLOP model is linear in the parameters: an 8B decoder costs about 8B / 0.6B times a 0.6B one's hours
    ratio = rows["llama-3.1-8b"]["gpu_hours"] / rows["qwen3-0.6b"]["gpu_hours"]
    assert ratio == pytest.approx(rows["llama-3.1-8b"]["parameters"] / rows["qwen3-0.6b"]["parameters"], rel=0.05)
    peaks = rows["llama-3.1-8b"]["peak_gib_per_gpu"]
    assert peaks["scalearn"] < peaks["adapterfusion"]  # AdapterFusion trains 3·d² per layer; ScaLearn d per source


def test_step_time_lora_group_runs_and_writes_its_json(tmp_path):
    out = tmp_path / "step_time_lora.json"
    args = ["--group", "lora", "--model", "tiny-bert", "--rounds", "1", "--batch-size", "4", "--length", "16"]
    assert load("step_time").main([*args, "--out", str(out), "--threads", str(torch.get_num_threads())]) == 0
    result = json.loads(out.read_text())
    assert set(result["ratio_to_single_lora"]) == {
        "lora",
        "scalearn_lora_8",
        "scalearn_lora_8_reference",
        "scalearn_lora_15",
        "scalearn_lora_15_reference",
    }
    assert result["max_abs_output_difference_batched_vs_reference"] < 1e-5


def test_halving_vs_grid_sets_the_two_reports_side_by_side(tmp_path, capsys):
    def row(method, chosen, test, **compute):
        points = [{"point": {"learning_rate": rate}} for rate in (0.001, 0.01, 0.1)]
        selected = {"metric": "accuracy", "mean": test, "sd": 1.0, "n": 2}
        return {"model": "m", "method": method, "task": "t", "stage": 2, "points": points, "chosen": chosen}, {
            "test_of_chosen": selected,
            **compute,
        }

    def report(rows, averages):
        table = {"model": "m", "baseline": "adapter", "rows": [{"method": k, "avg": v} for k, v in averages.items()]}
        return {"selection": [a | b for a, b in rows], "tables": [table]}

    grid = report([row("adapter", 1, 80.0), row("scalearn", 2, 70.0)], {"adapter": 80.0, "scalearn": 70.0})
    halving = report(  # the adapter's search trained 30 of 90 steps in 60 s; ScaLearn's chose another point
        [
            row("adapter", 1, 80.0, search_steps=30, grid_steps=90, search_seconds=60.0),
            row("scalearn", 0, 72.0, search_steps=40, grid_steps=90, search_seconds=40.0),
        ],
        {"adapter": 80.0, "scalearn": 72.0},
    )
    paths = [tmp_path / "grid.json", tmp_path / "halving.json"]
    for path, content in zip(paths, (grid, halving), strict=True):
        path.write_text(json.dumps(content))
    out = tmp_path / "compared.json"
    assert load("halving_vs_grid").main([*map(str, paths), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["search_steps"] == 70 and result["grid_steps"] == 180 and result["same_point"] == 1
    assert result["grid_hours_estimated"] * 3600 == pytest.approx(60 / 30 * 90 + 40 / 40 * 90)  # at each group's pace
    assert [g["same_point"] for g in result["groups"]] == [True, False]
    printed = capsys.readouterr().out
    assert "70 optimizer steps against the grid's 180 (39%)" in printed and "| scalearn | 72.00 | 70.00 |" in printed


def test_eval_order_benchmark_runs_and_writes_its_json(tmp_path):
    out = tmp_path / "eval_order.json"
    args = [
        "--models",
        "tiny-bert",
        "--tasks",
        "vader_tweets",
        "--rounds",
        "1",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--out",
        str(out),
    ]
    assert load("eval_order").main([*args, "--threads", str(torch.get_num_threads())]) == 0
    figures = json.loads(out.read_text())["backbones"]["tiny-bert"]
    test = figures["vader_tweets/test"]
    assert test["rows"] == 425 and test["speedup"] > 0
    assert test["padded_tokens"]["longest_first"] < test["padded_tokens"]["split_order"]
    assert figures["trial_evaluation_speedup"] > 0
