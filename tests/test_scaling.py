"""The scaling report: points per model × method against hand-computed averages and costs, the Pareto
frontier, what the figures plot, and the files `harness report --out` writes for a sweep of several backbones.
Fake result.json files only; tests/test_decoders.py::test_scaling_tiny_end_to_end runs a real sweep."""

import csv
import io
import json
import shutil
import statistics
from pathlib import Path

import pytest

from harness.cli import main
from harness.plan import expand
from harness.report import build_report
from harness.scaling import AVERAGE, COLUMNS, pareto_figure, pareto_frontier, scaling_figure, scaling_points
from harness.spec import load_spec
from harness.store import Store
from scalearn.params import backbone_size, human_count

SPEC = """\
version: 1
name: mini-scaling
models: [roberta-base, qwen3-0.6b]
methods: [adapter, scalearn]
benchmark: glue
targets: [rte, stsb]
sources: [rte, stsb, mnli]
seeds: 2
"""
# test score by (model, method, task): seed 0, seed 1
SCORES = {
    ("roberta-base", "adapter", "rte"): [0.60, 0.64],
    ("roberta-base", "adapter", "stsb"): [0.80, 0.84],
    ("roberta-base", "scalearn", "rte"): [0.70, 0.72],
    ("roberta-base", "scalearn", "stsb"): [0.88, 0.90],
    ("qwen3-0.6b", "adapter", "rte"): [0.66, 0.70],
    ("qwen3-0.6b", "adapter", "stsb"): [0.82, 0.86],
    ("qwen3-0.6b", "scalearn", "rte"): [0.74, 0.78],
    ("qwen3-0.6b", "scalearn", "stsb"): [0.90, 0.92],
}
PARAMS = {"adapter": 894528, "scalearn": 73728}


def wall(trial) -> float:
    """A made-up but distinct wall time per trial: 10 s per seed step, doubled on the decoder."""
    return (10.0 + 10 * trial.seed) * (2 if trial.model == "qwen3-0.6b" else 1)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("scaling")
    (root / "mini.yaml").write_text(SPEC)
    spec = load_spec(root / "mini.yaml")
    trials = expand(spec)
    store = Store(root / "store")
    for trial in trials:
        value = SCORES.get((trial.model, trial.method, trial.task), [0.5, 0.5])[trial.seed]
        test = {"pearson": value, "spearman": value} if trial.task == "stsb" else {"accuracy": value}
        decoder = trial.model == "qwen3-0.6b"
        store.write_result(
            trial.key,
            {
                "trial": trial.summary(),
                "test": test,
                "parameters": {"transfer": PARAMS[trial.method], "head": 10},
                "steps": 100,
                "step_times": [1000.0 + 0.5 * i + (30.0 if i >= 50 else 0.0) for i in range(100)],  # one evaluation
                # a source task's test set is another: its time per example differs
                "test_seconds_per_example": (0.5 if trial.task == "mnli" else 0.01) * (2 if decoder else 1),
                "wall_seconds": wall(trial),
                "peak_memory_mb": 1000.0 + 100 * trial.seed + (5000 if decoder else 0),
                "provenance": {
                    "world_size": 2 if decoder else 1,
                    "hardware": {"device": "cuda" if decoder else "cpu"},
                    # the decoder's seed-0 trials measured their own peak; the rest their worker's lifetime one
                    **({"peak_memory_from": "trial"} if decoder and trial.seed == 0 else {}),
                },
            },
        )
    return root / "mini.yaml", spec, trials, store


def points_of(sweep):
    _, spec, trials, store = sweep
    report = build_report(spec, trials, store)
    return {(p.model, p.method): p for p in scaling_points(report, trials, store)}, trials


def test_points_average_each_seed_over_the_targets_and_sort_by_size(sweep):
    points, _ = points_of(sweep)
    assert [p.model for p in points.values()] == ["roberta-base"] * 2 + ["qwen3-0.6b"] * 2  # 124M, then 0.6B
    point = points[("qwen3-0.6b", "scalearn")]
    assert point.size == backbone_size("qwen3-0.6b")["parameters"]
    assert point.transfer_parameters == PARAMS["scalearn"]
    assert point.scores["rte"] == pytest.approx({0: 74.0, 1: 78.0})
    # seed 0: (74 + 90) / 2 = 82; seed 1: (78 + 92) / 2 = 85
    assert point.scores[AVERAGE] == pytest.approx({0: 82.0, 1: 85.0})
    summary = point.summary(AVERAGE)
    assert summary.mean == pytest.approx(83.5) and summary.sd == pytest.approx(statistics.stdev([82.0, 85.0]))


def test_cost_comes_from_the_trials_records(sweep):
    from harness.scaling import trial_cost

    _, _, _, store = sweep
    points, trials = points_of(sweep)
    cost = points[("qwen3-0.6b", "adapter")].cost
    mine = [t for t in trials if t.model == "qwen3-0.6b" and t.method == "adapter"]
    walls = [wall(t) for t in mine]
    assert cost["trials"] == len(mine) == 2 + 2 + 1  # rte, stsb × 2 seeds; mnli a source only, one seed
    assert cost["median_wall_s"] == pytest.approx(statistics.median(walls))
    assert cost["median_step_s"] == pytest.approx(statistics.median(walls) / 100)
    assert cost["wall_h"] == pytest.approx(sum(walls) / 3600)
    assert cost["device_h"] == pytest.approx(2 * sum(walls) / 3600)  # two processes per trial
    assert cost["device"] == "cuda" and cost["peak_memory_mb"] == 6000.0  # its own peaks win over lifetime ones
    assert not cost["peak_memory_bound"] and points[("roberta-base", "adapter")].cost["peak_memory_bound"]
    assert cost["train_step_s"] == pytest.approx(0.5)  # the gap that held an evaluation does not count
    assert cost["inference_s_per_example"] == pytest.approx(0.02) and cost["inference_from"] == "targets"
    # over the targets' trials alone: mnli's (a source only) would have made it the median of other test sets
    assert trial_cost(mine, store, targets={"mnli"})["inference_s_per_example"] == pytest.approx(1.0)
    assert trial_cost(mine, store)["inference_from"] == "all trials"
    assert points[("roberta-base", "scalearn")].cost["device_h"] == pytest.approx(
        points[("roberta-base", "scalearn")].cost["wall_h"]
    )


def test_pareto_frontier_keeps_points_no_cheaper_point_beats():
    pairs = [(10, 50.0), (100, 60.0), (100, 55.0), (1000, 58.0), (5, 40.0), (2000, 70.0)]
    assert pareto_frontier(pairs) == [(5, 40.0), (10, 50.0), (100, 60.0), (2000, 70.0)]
    assert pareto_frontier([]) == []


def test_figures_plot_one_line_per_method_against_size_and_parameters(sweep):
    points, _ = points_of(sweep)
    ordered = list(points.values())
    figure = scaling_figure(ordered, ["rte", "stsb"], "t")
    panels = [a for a in figure.axes if a.get_visible()]
    assert [a.get_title() for a in panels] == ["average over targets", "rte", "stsb"]
    average = panels[0]
    assert average.get_xscale() == "log"
    sizes = sorted(backbone_size(m)["parameters"] for m in ("roberta-base", "qwen3-0.6b"))
    assert [t.get_text().split("\n")[0] for t in average.get_xticklabels()] == ["roberta-base", "qwen3-0.6b"]
    assert list(average.get_xticks()) == sizes
    # errorbar: (data line, caps, bars); the encoder (roberta) and the decoder (qwen3) are never joined
    lines = {(bars.get_label(), bars.lines[0].get_linestyle()): bars.lines[0] for bars in average.containers}
    assert set(lines) == {(method, style) for method in ("adapter", "scalearn") for style in ("-", "--")}
    by_model = {p.model: p.summary(AVERAGE).mean for p in ordered if p.method == "scalearn"}
    for model, style, marker in [("roberta-base", "-", "o"), ("qwen3-0.6b", "--", "s")]:
        line = lines[("scalearn", style)]
        assert list(line.get_xdata()) == [backbone_size(model)["parameters"]] and line.get_marker() == marker
        assert list(line.get_ydata()) == pytest.approx([by_model[model]])
    assert lines[("scalearn", "-")].get_color() == lines[("scalearn", "--")].get_color()  # a colour per method
    legend = [t.get_text() for t in average.get_legend().get_texts()]
    assert legend == ["adapter", "scalearn", "encoder", "decoder"]

    pareto = pareto_figure(ordered, "p").axes[0]
    assert pareto.get_xscale() == "log" and "transfer parameters" in pareto.get_xlabel()
    frontier = next(line for line in pareto.get_lines() if line.get_label() == "frontier")
    # scalearn (73,728) on qwen3 beats every adapter (894,528): the frontier is that point, held to the right edge
    assert frontier.get_drawstyle() == "steps-post"
    assert list(frontier.get_xdata()) == [PARAMS["scalearn"], PARAMS["adapter"]]
    assert list(frontier.get_ydata()) == pytest.approx([points[("qwen3-0.6b", "scalearn")].summary(AVERAGE).mean] * 2)


def test_a_pause_that_recorded_no_peak_does_not_count_as_a_measured_one(tmp_path):
    """Before pauses measured their stretch, a rung's pause record held a peak of 0 beside `peak_memory_from:
    trial`: it is no measurement, so a row with it and a lifetime peak stays an upper bound, not 0 MB."""
    from harness.scaling import trial_cost

    (tmp_path / "mini.yaml").write_text(SPEC)
    finished, stopped = expand(load_spec(tmp_path / "mini.yaml"))[:2]
    store = Store(tmp_path / "store")
    record = {"steps": 10, "wall_seconds": 60.0, "provenance": {"hardware": {"device": "cpu"}}}
    store.write_result(finished.key, {**record, "peak_memory_mb": 5000.0})  # a worker's lifetime peak
    store.write_rung(stopped.key, 1 / 3, {**record, "peak_memory_mb": 0.0, "provenance": {"peak_memory_from": "trial"}})
    cost = trial_cost([finished, stopped], store)
    assert cost["trials"] == 2 and cost["peak_memory_mb"] == 5000.0 and cost["peak_memory_bound"]
    store.write_rung(
        stopped.key, 1 / 3, {**record, "peak_memory_mb": 2100.0, "provenance": {"peak_memory_from": "trial"}}
    )
    cost = trial_cost([finished, stopped], store)  # a pause that measured its own: the row's peak
    assert cost["peak_memory_mb"] == 2100.0 and not cost["peak_memory_bound"]


def test_the_cost_csv_keeps_a_row_that_nothing_has_scored_yet():
    """A method whose trials ran but none finished a final seed (a study in progress) has its cost in the table
    and the CSV alike: one row without a task or a score."""
    from harness.scaling import Point, cost_csv

    started = Point("qwen3-0.6b", "lora", 600_000_000, 10, {}, {"trials": 2, "wall_h": 0.168})
    (row,) = csv.DictReader(io.StringIO(cost_csv([started])))
    assert (row["method"], row["task"], row["mean"], row["n"], row["trials"]) == ("lora", "", "", "0", "2")
    assert float(row["wall_h"]) == 0.168


def test_the_cost_figure_has_a_bar_per_model_and_method_in_each_panel(sweep):
    from harness.scaling import cost_figure

    points, _ = points_of(sweep)
    figure = cost_figure(list(points.values()), "c")
    step, inference, memory = figure.axes
    assert [a.get_title().split("\n")[0] for a in figure.axes] == [
        "train s / optimizer step",
        "inference ms / example",
        "peak memory MB",
    ]
    assert all(a.get_yscale() == "log" for a in figure.axes)
    assert [t.get_text() for t in step.get_xticklabels()] == ["roberta-base", "qwen3-0.6b"]  # by size
    bars = {c.get_label(): [b.get_height() for b in c] for c in inference.containers}
    assert bars == {"adapter": pytest.approx([10.0, 20.0]), "scalearn": pytest.approx([10.0, 20.0])}  # ms
    heights = {c.get_label(): [b.get_height() for b in c] for c in memory.containers}
    assert heights["scalearn"] == [1100.0, 6000.0]  # the largest trial's peak, per model
    # roberta's trials recorded their workers' lifetime peaks only: upper bounds, drawn hatched; qwen3's, their own
    hatches = {c.get_label(): [b.get_hatch() for b in c] for c in memory.containers}
    assert hatches == {"adapter": ["//", None], "scalearn": ["//", None]}
    assert [b.get_hatch() for c in step.containers for b in c] == [None] * 4
    assert "upper bound" in memory.get_title() and "upper bound" not in step.get_title()
    assert [c.get_label() for c in step.containers] == ["adapter", "scalearn"]
    assert [b.get_height() for b in step.containers[0]] == pytest.approx([0.5, 0.5])


def test_report_out_writes_the_scaling_files_for_several_backbones(sweep, tmp_path, capsys):
    path, _, _, store = sweep
    out = tmp_path / "report"
    assert main(["report", str(path), "--store", str(store.root), "--out", str(out)]) == 0
    capsys.readouterr()
    names = {p.name for p in out.iterdir()}
    assert {"scaling.md", "scaling.tex", "scaling.csv", "scaling.json"} <= names
    figures = {p.name for p in (out / "figures").iterdir()}
    assert {"scaling_mini-scaling.png", "pareto_mini-scaling.png", "cost_mini-scaling.png"} <= figures
    for name in ("scaling_mini-scaling.png", "pareto_mini-scaling.png", "cost_mini-scaling.png"):
        assert (out / "figures" / name).read_bytes()[:4] == b"\x89PNG"
    markdown = (out / "scaling.md").read_text()
    size = human_count(backbone_size("qwen3-0.6b")["parameters"])
    assert (
        # against qwen3's adapter (seed averages 74 and 78): +7.50 points, 73,728 / 7.5 parameters a point
        f"| qwen3-0.6b | {size} | scalearn | 73,728 | 83.50 ± 2.12 | +7.50 | 9.83K | 1.00× | – | 4 | 30.0 s | 0.300 | "
        "0.500 | 20.00 | 0.0333 |" in markdown
    )
    assert f"| qwen3-0.6b | {size} | adapter | 894,528 | 76.00 ± 2.83 | – | – | – | – |" in markdown
    rows_md = [line for line in markdown.splitlines() if line.startswith("| roberta-base") or "| qwen3" in line]
    assert {line.rstrip("| ").rsplit(" | ", 1)[1] for line in rows_md} == {"1100*", "6000"}  # a bound; its own
    rows = list(csv.DictReader(io.StringIO((out / "scaling.csv").read_text())))
    average = next(r for r in rows if (r["model"], r["method"], r["task"]) == ("qwen3-0.6b", "scalearn", AVERAGE))
    assert float(average["mean"]) == pytest.approx(83.5) and average["device"] == "cuda"
    assert float(average["gain_over_adapter"]) == pytest.approx(7.5)
    assert float(average["params_per_point"]) == pytest.approx(73728 / 7.5)
    rte = next(r for r in rows if (r["model"], r["method"], r["task"]) == ("roberta-base", "scalearn", "rte"))
    assert float(rte["gain_over_adapter"]) == pytest.approx(71.0 - 62.0)  # per target, against its adapter
    assert (rte["peak_memory_bound"], average["peak_memory_bound"]) == ("True", "False")  # as the table's *
    assert json.loads((out / "scaling.json").read_text())[0]["size"] == backbone_size("roberta-base")["parameters"]
    tex = (out / "scaling.tex").read_text()
    assert tex.count(r"\\") == 1 + 4 and tex.count("{") == tex.count("}")


@pytest.mark.slow
def test_scaling_tiny_submits_and_reports_its_scaling_files(ray_local, tmp_path, capsys):
    """The acceptance run, on budgets cut to seconds: experiments/scaling-tiny.yaml through real Ray and MLflow;
    three of its backbones, one seed, three methods, two optimizer steps per trial."""
    experiment = Path(__file__).resolve().parent.parent / "experiments" / "scaling-tiny.yaml"
    cut = ["seeds=1", "methods=[adapter, scalearn, lora]", "hyperparameters.all.max_steps=2"]
    cut += ["models=[tiny-llama-s, tiny-bow, tiny-llama-l]"]  # a decoder either side of the encoder
    cut += ["hyperparameters.adapter.max_steps=2", "hyperparameters.lora.max_steps=2"]
    flags = [f for setting in cut for f in ("--set", setting)]
    store = tmp_path / "store"
    assert main(["submit", str(experiment), "--store", str(store), "--num-cpus", "2", *flags]) == 0
    assert "0 failed" in capsys.readouterr().out
    out = tmp_path / "report"
    assert main(["report", str(experiment), "--store", str(store), "--out", str(out), *flags]) == 0
    capsys.readouterr()
    figures = {p.name for p in (out / "figures").iterdir()}
    assert {"scaling_scaling-tiny.png", "pareto_scaling-tiny.png"} <= figures
    table = (out / "scaling.md").read_text()
    for model in ("tiny-llama-s", "tiny-bow", "tiny-llama-l"):
        for method in ("adapter", "scalearn", "lora"):
            row = next(
                line for line in table.splitlines() if line.startswith(f"| {model} | ") and f" {method} |" in line
            )
            cells = [c.strip() for c in row.strip("|").split("|")]
            # ω trained two steps from 2/S: it moved, a little; the others learn no mixing
            column = {name: cells[i] for i, name in enumerate(COLUMNS)}
            moved = column["mixing moved"]
            assert float(moved.removesuffix("%")) > 0 if method == "scalearn" else moved == "–", row
            assert column["trials"] == ("5" if method == "adapter" else "2")  # 3 sources + 2 targets
            assert column["median wall/trial"].endswith(" s") and float(column["s/step"]) > 0  # from the records
            assert 0 < float(column["train s/step"]) <= float(column["s/step"]), row  # a train step
            assert float(column["inference ms/example"]) > 0, row
            assert (column["inference × adapter"] == "–") == (method == "adapter"), row
    sizes = [json.loads((out / "scaling.json").read_text())[i]["size"] for i in range(9)]
    assert sizes == sorted(sizes)
    logged = store / "mlartifacts" / "scaling-tiny"
    assert len(list(logged.glob("*/artifacts/report/figures/scaling_scaling-tiny.png"))) == 1
    assert len(list(logged.glob("*/artifacts/report/figures/pareto_scaling-tiny.png"))) == 1


def test_the_cost_table_says_how_far_each_mixing_moved_from_its_start(sweep, tmp_path):
    """|ω − 2/S| / (2/S), averaged over layers, sources and dimensions, then over the final transfer trials."""
    import shutil

    import numpy as np
    from safetensors.numpy import save_file

    from harness.scaling import cost_markdown

    path, spec, trials, store = sweep
    store = Store(shutil.copytree(store.root, tmp_path / "store"))
    moved = {0: 0.25, 1: 0.75}  # seed → every weight's relative move, half of them up and half down
    for trial in trials:
        if trial.method != "scalearn" or trial.model != "roberta-base":
            continue
        folder = store.model_dir(trial.key)
        folder.mkdir(parents=True)
        sources, start = len(trial.depends_on), 2.0 / len(trial.depends_on)
        omega = np.full((2, sources, 4), start, dtype=np.float32)
        omega[0] *= 1 + moved[trial.seed]
        omega[1] *= 1 - moved[trial.seed]
        save_file({"omega": omega}, str(folder / "transfer.safetensors"))
        (folder / "model.json").write_text(json.dumps({"transfer": {"kind": "scalearn", "init_scale": 2.0}}))
    points = {(p.model, p.method): p for p in scaling_points(build_report(spec, trials, store), trials, store)}
    assert points[("roberta-base", "scalearn")].moved == pytest.approx(0.5)  # (0.25 + 0.75) / 2, both targets
    assert points[("qwen3-0.6b", "scalearn")].moved is None  # no checkpoint, no mixing
    assert points[("roberta-base", "adapter")].moved is None
    table = cost_markdown(list(points.values()), "mini-scaling").splitlines()
    row = next(line for line in table if line.startswith("| roberta-base |") and "| scalearn |" in line)
    assert "| 50.0% |" in row


def test_an_earlier_reports_backbones_join_a_store_that_holds_only_the_others(sweep, tmp_path, capsys):
    """`--earlier DIR`: a study whose backbones ran in different stores reports as one scaling curve, the
    earlier report's points as it recorded them, the store's own backbones from the store."""
    path, *_, store = sweep
    both, later = tmp_path / "both", tmp_path / "later"
    assert main(["report", str(path), "--store", str(store.root), "--out", str(both)]) == 0
    one = ["--set", "models=[qwen3-0.6b]"]
    args = ["report", str(path), "--store", str(store.root), *one, "--out", str(later), "--earlier", str(both)]
    assert main(args) == 0
    capsys.readouterr()
    whole = {(p["model"], p["method"]): p for p in json.loads((both / "scaling.json").read_text())}
    merged = {(p["model"], p["method"]): p for p in json.loads((later / "scaling.json").read_text())}
    assert merged.keys() == whole.keys()
    for key, point in merged.items():
        assert point["earlier"] == (str(both) if key[0] == "roberta-base" else None)
        assert {k: v for k, v in point.items() if k != "earlier"} == {
            k: v for k, v in whole[key].items() if k != "earlier"
        }
    assert f"- roberta-base: as the earlier report in {both} recorded them" in (later / "scaling.md").read_text()
    assert (later / "figures" / "scaling_mini-scaling.png").read_bytes()[:4] == b"\x89PNG"
    assert "roberta-base" not in (later / "report.md").read_text()  # the per-backbone tables: this store's only
    assert "†" not in (later / "scaling.md").read_text()  # every inference time over the targets' trials
    # the file lists both backbones, and this store scored only the decoder: the earlier report's encoder joins it
    half = tmp_path / "half"
    shutil.copytree(store.root, half)
    _, _, trials, _ = sweep
    for trial in trials:
        if trial.model == "roberta-base":
            shutil.rmtree(half / "trials" / trial.key)
    assert main(["report", str(path), "--store", str(half), "--out", str(tmp_path / "h"), "--earlier", str(both)]) == 0
    capsys.readouterr()
    listed = {(p["model"], p["method"]): p for p in json.loads((tmp_path / "h" / "scaling.json").read_text())}
    assert listed == merged
    # a report written before trials kept their own peak: its peaks are lifetime ones, so read as bounds
    old = tmp_path / "old"
    shutil.copytree(both, old)
    points = json.loads((old / "scaling.json").read_text())
    for point in points:
        point["cost"].pop("peak_memory_bound")
        point["cost"].pop("inference_from")  # and its inference times were over all of a row's trials
    (old / "scaling.json").write_text(json.dumps(points))
    args = ["report", str(path), "--store", str(store.root), *one, "--out", str(tmp_path / "o"), "--earlier", str(old)]
    assert main(args) == 0
    capsys.readouterr()
    markdown = (tmp_path / "o" / "scaling.md").read_text()
    rows = [line for line in markdown.splitlines() if "| roberta-base |" in line]
    assert rows and all(line.endswith("| 1100* |") for line in rows)
    assert all(" | 10.00† | " in line for line in rows) and "- † inference over all of the row's trials" in markdown
    scalearn = next(line for line in rows if "| scalearn |" in line)
    assert "| 1.00×† |" in scalearn  # a ratio against the encoder's adapter, itself over all its trials

    # a report of another experiment, or without --out, or onto itself: one line each, nothing written
    other = tmp_path / "other"
    shutil.copytree(both, other)
    report = json.loads((other / "report.json").read_text())
    (other / "report.json").write_text(json.dumps({**report, "experiment": "another"}))
    bad = [
        (["--out", str(tmp_path / "x"), "--earlier", str(other)], "a report of experiment 'another'"),
        (["--out", str(tmp_path / "x"), "--earlier", str(tmp_path / "none")], "no report.json there"),
        (["--earlier", str(both)], "--earlier: only with --out"),
        (["--out", str(both), "--earlier", str(both)], "is the --out folder"),
    ]
    for flags, message in bad:
        assert main(["report", str(path), "--store", str(store.root), *one, *flags]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_point_with_one_target_so_far_says_which_and_is_compared_on_it():
    from harness.scaling import Point, cost_markdown

    adapter = Point("roberta-base", "adapter", 10, 100, {"rte": {0: 60.0, 1: 64.0}, "stsb": {0: 80.0, 1: 84.0}})
    adapter.scores[AVERAGE] = {0: 70.0, 1: 74.0}
    scalearn = Point("roberta-base", "scalearn", 10, 8, {"rte": {0: 70.0, 1: 72.0}})  # stsb not run yet
    rows = cost_markdown([adapter, scalearn], "x").splitlines()
    row = next(line for line in rows if "| scalearn |" in line)
    assert "| 71.00 ± 1.41 (rte) | +9.00 | 1 |" in row  # against the adapter's rte (62), not its average (72)
