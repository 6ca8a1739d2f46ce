"""Hyper-parameters chosen on dev inside the sweep (`search:`): the choice rule, the bad inputs, the plan's roles,
and a real two-stage sweep on Ray whose source adapters' learning rate is searched."""

import json
import math

import pytest
import yaml

import harness
from harness.cli import main
from harness.plan import expand, finals
from harness.search import choose, grid_points, search_seeds
from harness.selection import selection_rows
from harness.spec import load_spec
from harness.store import Store

BASE = {
    "version": 1,
    "name": "search",
    "models": ["tiny-bert"],
    "methods": ["adapter", "scalearn"],
    "benchmark": "synthetic",
    "targets": ["syn_a_low"],
    "sources": ["syn_b", "syn_a_low"],
    "seeds": 2,
    "hyperparameters": {"all": {"epochs": 1, "max_steps": 3, "batch_size": 8}},
    "resources": {"cpus": 1},
}


def write(tmp_path, **changes) -> str:
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump({**BASE, **changes}))
    return str(path)


def result(loss=None, metric=None, test=0.5):
    if metric is None:
        return {"selected_by": "loss", "best_dev": {"loss": loss}, "test": {"accuracy": test}, "task": "syn_a"}
    return {"selected_by": "metric", "best_dev": {"accuracy": metric}, "test": {"accuracy": test}, "task": "syn_a"}


def test_the_choice_is_the_best_dev_mean_never_the_test_score():
    results = {
        "a0": result(0.50, test=0.9),
        "a1": result(0.70, test=0.9),  # mean 0.60, the best test
        "b0": result(0.55, test=0.1),
        "b1": result(0.55, test=0.1),  # mean 0.55: best on dev
        "c0": result(math.nan),
        "c1": result(0.1),  # diverged once: the worst
    }
    chosen, means = choose([["a0", "a1"], ["b0", "b1"], ["c0", "c1"]], results.get)
    assert chosen == 1 and means[:2] == pytest.approx([0.60, 0.55]) and math.isnan(means[2])
    by_metric = {"a": result(metric=0.7), "b": result(metric=0.8), "c": result(metric=0.8)}
    assert choose([["a"], ["b"], ["c"]], by_metric.get)[0] == 1  # higher is better; a tie keeps the first
    assert choose([["a"], ["missing"]], by_metric.get) is None  # a search trial still open: no choice yet


def test_grid_and_search_seeds():
    assert grid_points({"learning_rate": [1, 2], "omega_dropout": [0.0, 0.3]}) == [
        {"learning_rate": 1, "omega_dropout": 0.0},
        {"learning_rate": 1, "omega_dropout": 0.3},
        {"learning_rate": 2, "omega_dropout": 0.0},
        {"learning_rate": 2, "omega_dropout": 0.3},
    ]
    assert search_seeds([0, 1, 2], 2) == [0, 1] and search_seeds([0], 2) == [0, 1]


@pytest.mark.parametrize(
    "search, extra, location, fragment",
    [
        ({"adapter": {"learning_rate": []}}, {}, "search.adapter.learning_rate", "(got [])"),
        ({"adapter": {"learning_rate": [1e-3, -1]}}, {}, "search.adapter.learning_rate.1", "must be a number > 0"),
        ({"adapter": {"omega_dropout": [0.1]}}, {}, "search.adapter.omega_dropout", "unknown hyper-parameter"),
        ({"all": {"omega": [[1.0]]}}, {}, "search.all.omega", "unknown hyper-parameter"),
        ({"lora": {"rank": [4]}}, {}, "search.lora", "does not train in this experiment"),
        ({"adaptr": {"rank": [4]}}, {}, "search.adaptr", "did you mean 'adapter'"),
        ({"all": {"learning_rate": [1e-3]}}, {"search_seeds": 3}, "search_seeds", "more than the seeds"),
        ({"all": "fast"}, {}, "search.all", "must be a mapping"),
    ],
)
def test_bad_searches_are_one_line(search, extra, location, fragment, tmp_path, capsys):
    assert main(["validate", write(tmp_path, search=search, **extra)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and f":{location}:" in lines[0] and fragment in lines[0], lines


def test_plan_lists_search_points_and_holds_back_what_waits_for_them(tmp_path, capsys):
    path = write(tmp_path, search={"all": {"learning_rate": [1e-4, 1e-3, 1e-2]}})
    assert main(["plan", path, "--store", str(tmp_path / "store"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    search = [row for row in rows if row["role"] == "search" and row["key"] is not None]
    # adapter on syn_a_low (its first seed) and the source adapter of syn_b: 3 points each; the transfer
    # trials wait for the sources' choice, scalearn itself searches once they exist
    assert {row["point"]["learning_rate"] for row in search} == {1e-4, 1e-3, 1e-2}
    assert sorted((row["method"], row["task"], row["seed"]) for row in search) == sorted(
        [("adapter", "syn_a_low", 0)] * 3 + [("adapter", "syn_b", 0)] * 3
    )
    assert not [row for row in rows if row["role"] == "final"]
    # the transfer trials are listed without a key until their sources' search chose (scalearn searches too)
    waiting = [row for row in rows if row["stage"] == 2]
    assert waiting and all(row["key"] is None and row["waits_for"] == ["syn_b", "syn_a_low"] for row in waiting)
    assert sorted(row["point"]["learning_rate"] for row in waiting) == [1e-4, 1e-3, 1e-2]  # at its first seed
    assert {row["seed"] for row in waiting} == {0}
    assert main(["validate", path]) == 0
    assert "6 search trials, the final ones planned when their search is done" in capsys.readouterr().out


@pytest.mark.slow
def test_a_searched_sweep_chooses_on_dev_resumes_and_grows(tmp_path):
    """Real Ray: the source adapters' learning rate is searched, each group takes its best dev point, the
    transfer trials consume the chosen adapters; a resubmit trains nothing; a new grid point trains itself."""
    grid = [1e-5, 5e-2]
    path = write(tmp_path, methods=["adapter", "scalearn"], search={"adapter": {"learning_rate": grid}})
    store = Store(tmp_path / "store")
    outcome = harness.submit(path, store=store, num_cpus=2, say=lambda line: None)
    assert outcome.ok
    trials = expand(load_spec(path), store)
    assert all(store.is_done(t.key) for t in trials)
    adapters = [t for t in trials if t.method == "adapter"]
    chosen_keys = {}
    for task in ("syn_b", "syn_a_low"):
        points = {t.point["learning_rate"]: t for t in adapters if t.task == task and t.seed == 0}
        assert set(points) == set(grid)
        dev = {lr: store.result(t.key)["best_dev"]["loss"] for lr, t in points.items()}
        best = min(dev, key=dev.get)
        chosen = points[best]
        assert chosen.role == "final"  # the search trial at the chosen point and seed 0 is the final trial
        assert all(t.role == "search" for lr, t in points.items() if lr != best)
        if task == "syn_a_low":  # the adapter baseline's second seed trains at the chosen point
            (second,) = [t for t in adapters if t.task == task and t.seed == 1]
            assert second.role == "final" and second.point == {"learning_rate": best}
        chosen_keys[task] = chosen.key
    for transfer in (t for t in trials if t.stage == 2):  # the transfer trials consume the chosen adapters
        assert transfer.depends_on == tuple(chosen_keys[source] for source in transfer.source_tasks)
    assert sorted(t.method for t in finals(trials) if t.stage == 2) == ["scalearn", "scalearn"]
    report_rows = [t for t in finals(trials) if t.method == "adapter" and t.task == "syn_a_low"]
    assert len(report_rows) == 2  # the report sees the 2 final seeds, not the search points

    # the selection table says what the store holds: each point's dev value, the chosen one, its final test
    rows = {row["task"]: row for row in selection_rows(load_spec(path), store)}
    assert set(rows) == {"syn_b", "syn_a_low"}
    for task, row in rows.items():
        dev = [
            store.result(t.key)["best_dev"]["loss"]
            for lr in grid
            for t in adapters
            if t.task == task and t.seed == 0 and t.point == {"learning_rate": lr}
        ]
        assert [point["dev_mean"] for point in row["points"]] == pytest.approx(dev)
        assert row["chosen"] == dev.index(min(dev)) and row["test_of_chosen"]["metric"] == "accuracy"
    finals_of_target = [t for t in finals(trials) if t.method == "adapter" and t.task == "syn_a_low"]
    tests = [100 * store.result(t.key)["test"]["accuracy"] for t in finals_of_target]
    assert rows["syn_a_low"]["test_of_chosen"]["mean"] == pytest.approx(sum(tests) / len(tests))
    assert rows["syn_a_low"]["test_of_chosen"]["n"] == 2
    out = tmp_path / "report"
    assert main(["report", path, "--store", str(store.root), "--out", str(out), "--format", "json"]) == 0
    assert json.loads((out / "report.json").read_text())["selection"][0]["points"]
    assert "Hyper-parameter selection on dev" in (out / "report.md").read_text()

    again = harness.submit(path, store=store, say=lambda line: None)
    assert again.ok and again.ran == []

    grown = write(tmp_path, methods=["adapter", "scalearn"], search={"adapter": {"learning_rate": [*grid, 1e-3]}})
    before = {t.key for t in trials}
    third = harness.submit(grown, store=store, num_cpus=2, say=lambda line: None)
    new_points = [t for t in expand(load_spec(grown), store) if t.point == {"learning_rate": 1e-3}]
    assert {t.key for t in new_points} <= set(third.ran)  # the new point trained
    assert all(key not in before for key in third.ran)  # and nothing finished before trained again


def test_the_offline_search_study_plans_three_or_more_rates_per_method(capsys):
    """experiments/offline-study.yaml (the searched study): every method searches ≥ 3 learning rates, an
    order of magnitude either side of the paper's, before any result exists."""
    from pathlib import Path

    from scalearn.methods import get_method

    path = Path(__file__).resolve().parent.parent / "experiments" / "offline-study.yaml"
    assert main(["plan", str(path), "--store", "/nonexistent-store", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    spec = load_spec(path)
    for method in spec.methods:
        rates = sorted({row["point"]["learning_rate"] for row in rows if row["method"] == method and "point" in row})
        paper = get_method(method).learning_rate
        assert len(rates) >= 3 and rates[0] <= paper / 10 * 1.0001 and rates[-1] >= paper * 10 * 0.9999, method
