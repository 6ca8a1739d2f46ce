"""Hyper-parameters chosen on dev inside the sweep (`search:`): the choice rule, the bad inputs, the plan's roles,
and a real two-stage sweep on Ray whose source adapters' learning rate is searched."""

import json
import math

import pytest
import yaml

import harness
from harness.cli import main
from harness.plan import expand, finals, make_plan
from harness.search import FAILED, best_index, grid_points, point_value, random_points, sample, search_seeds
from harness.selection import selection_rows
from harness.spec import Range, SearchSpec, load_spec
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
    keys = [["a0", "a1"], ["b0", "b1"], ["c0", "c1"]]
    values = [point_value(point, results.get) for point in keys]
    assert best_index(values) == 1 and [v for v, _ in values[:2]] == pytest.approx([0.60, 0.55])
    assert math.isnan(values[2][0]) and values[0][1] is True  # lower is better for a loss
    by_metric = {"a": result(metric=0.7), "b": result(metric=0.8), "c": result(metric=0.8), "f": FAILED}
    metric_values = [point_value([k], by_metric.get) for k in "abc"]
    assert best_index(metric_values) == 1  # higher is better; a tie keeps the first
    assert point_value(["a", "missing"], by_metric.get) is None  # a search trial still open: no choice yet
    # a point whose trial failed for good is the worst, whichever way is better
    assert best_index([point_value(["f"], by_metric.get), *metric_values]) == 2
    assert best_index([point_value(["f"], by_metric.get), point_value(["a0"], results.get)]) == 1


def test_grid_and_search_seeds():
    assert grid_points({"learning_rate": [1, 2], "omega_dropout": [0.0, 0.3]}) == [
        {"learning_rate": 1, "omega_dropout": 0.0},
        {"learning_rate": 1, "omega_dropout": 0.3},
        {"learning_rate": 2, "omega_dropout": 0.0},
        {"learning_rate": 2, "omega_dropout": 0.3},
    ]
    assert search_seeds([0, 1, 2], 2) == [0, 1] and search_seeds([0], 2) == [0, 1]


def test_random_points_are_fixed_by_the_seed_and_more_trials_keep_the_earlier_ones():
    space = {
        "learning_rate": Range(low=1e-5, high=1e-1, log=True),
        "reduction_factor": Range(low=2, high=64),
        "omega_dropout": [0.0, 0.1, 0.3],
    }
    eight = random_points(space, 8, seed=3)
    assert eight == random_points(space, 8, seed=3) and eight != random_points(space, 8, seed=4)
    assert random_points(space, 12, seed=3)[:8] == eight  # raising `trials` trains only the new points
    assert len({json.dumps(p, sort_keys=True) for p in eight}) == 8  # distinct
    for point in eight:
        assert (
            1e-5 <= point["learning_rate"] <= 1e-1 and float(f"{point['learning_rate']:.4g}") == point["learning_rate"]
        )
        assert isinstance(point["reduction_factor"], int) and 2 <= point["reduction_factor"] <= 64
        assert point["omega_dropout"] in (0.0, 0.1, 0.3)
    # log-uniform: about as many draws below the geometric middle (1e-3) as above it
    rates = [p["learning_rate"] for p in random_points({"learning_rate": space["learning_rate"]}, 400, seed=0)]
    assert 160 < sum(rate < 1e-3 for rate in rates) < 240
    assert len(random_points({"omega_dropout": [0.0, 0.1]}, 5, seed=0)) == 2  # a small space runs out


def test_tpe_proposes_from_finished_points_only_and_the_same_results_give_the_same_points():
    search = SearchSpec(sampler="tpe", trials=8, startup=3, seed=1, scalearn={})
    space = {"learning_rate": Range(low=1e-4, high=1.0, log=True), "omega_dropout": [0.0, 0.3]}

    def dev_loss(point):  # a bowl around learning rate 0.01 (lower is better)
        return (math.log10(point["learning_rate"]) + 2) ** 2 + point["omega_dropout"], True

    points, values = sample(search, space, dev_loss)
    assert len(points) == 8 and None not in values
    assert points[:3] == random_points(space, 3, seed=1)  # the start-up points are the random sampler's
    assert sample(search, space, dev_loss)[0] == points  # the same results propose the same points
    assert len({json.dumps(p, sort_keys=True) for p in points}) == 8
    assert all(1e-4 <= p["learning_rate"] <= 1.0 and p["omega_dropout"] in (0.0, 0.3) for p in points)
    # while a start-up point is unfinished, nothing more is proposed
    open_second = sample(search, space, lambda point: None if point == points[1] else dev_loss(point))
    assert open_second[0] == points[:3] and open_second[1][1] is None
    # different results move the proposals (the model reads them); a failed point (NaN) is allowed
    flipped = sample(search, space, lambda point: (-dev_loss(point)[0], True))[0]
    assert flipped[:3] == points[:3] and flipped[3:] != points[3:]
    failed = sample(search, space, lambda point: (math.nan, None) if point == points[0] else dev_loss(point))
    assert len(failed[0]) == 8
    # the model concentrates where the dev loss is low: its proposals beat the start-up points on average
    later = [dev_loss(p)[0] for p in points[3:]]
    first = [dev_loss(p)[0] for p in points[:3]]
    assert min(later) <= min(first)


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
        ({"all": {"learning_rate": {"low": 1e-4, "high": 1e-2}}}, {}, "search.all.learning_rate", "a range needs"),
        ({"all": {"learning_rate": {"low": 1e-2, "high": 1e-4}}}, {}, "search.all.learning_rate", "low must be below"),
        ({"all": {"learning_rate": {"low": 0, "high": 1, "log": True}}}, {}, "search.all.learning_rate", "low > 0"),
        ({"all": {"learning_rate": {"low": 1e-4}}}, {}, "search.all.learning_rate.high", "missing"),
        (
            {"all": {"learning_rate": {"low": 1e-4, "high": 1, "step": 2}}},
            {},
            "search.all.learning_rate.step",
            "low, high",
        ),
        ({"sampler": "random", "all": {"learning_rate": [1e-3]}}, {}, "search.trials", "needs `trials`"),
        ({"sampler": "grid", "trials": 4, "all": {"learning_rate": [1e-3]}}, {}, "search.trials", "every combination"),
        (
            {"sampler": "random", "trials": 4, "startup": 2, "all": {"learning_rate": [1e-3]}},
            {},
            "search.startup",
            "only",
        ),
        ({"sampler": "random", "trials": 3, "all": {"learning_rate": [1e-3, 1e-2]}}, {}, "search.trials", "≤ 2"),
        ({"sampler": "annealing", "all": {"learning_rate": [1e-3]}}, {}, "search.sampler", "grid"),
        ({"sampler": "tpe", "trials": 0, "all": {"learning_rate": [1e-3]}}, {}, "search.trials", "≥ 1"),
        (
            {"sampler": "random", "trials": 3, "all": {"learning_rate": {"low": -1, "high": 1}}},
            {},
            "search.all.learning_rate.low",
            "must be a number > 0",
        ),
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
    # what the progress line adds to its estimates: the 3 waiting rows and the adapter baseline's seed 1 (its seed 0
    # is the search trial at the chosen point); scalearn's own seed 1, planned once it has searched, is not counted
    assert make_plan(load_spec(path), Store(tmp_path / "store")).still_to_plan() == 3 + 1
    assert main(["validate", path]) == 0
    assert "6 search trials, the final ones planned when their search is done" in capsys.readouterr().out


def test_a_task_block_pins_what_it_sets_for_that_tasks_groups_only(tmp_path, capsys):
    """Sources kept at a rate chosen before, targets searched: syn_b's block sets the rate, so its source adapter
    trains once at it, with the key it would have had without a search; syn_a_low's groups are searched."""
    search = {"all": {"learning_rate": [1e-4, 1e-3, 1e-2]}}
    pinned = {"syn_b": {"learning_rate": 0.003}}
    path = write(tmp_path, search=search, task_hyperparameters=pinned)
    trials = expand(load_spec(path))
    syn_b = [t for t in trials if t.task == "syn_b"]
    assert [(t.role, t.point, t.config.loop.learning_rate) for t in syn_b] == [("final", None, 0.003)]
    unsearched = expand(load_spec(write(tmp_path, task_hyperparameters=pinned)))
    assert syn_b[0].key == next(t.key for t in unsearched if t.task == "syn_b")  # the same trial as unsearched
    own = sorted(t.point["learning_rate"] for t in trials if t.task == "syn_a_low" and t.method == "adapter")
    assert own == [1e-4, 1e-3, 1e-2]


@pytest.mark.slow
def test_a_searched_sweep_chooses_on_dev_resumes_and_grows(ray_local, tmp_path):
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
    from mlflow.tracking import MlflowClient  # MLflow's descriptions: the search's points, the chosen one

    client = MlflowClient(tracking_uri=store.tracking_uri)
    experiment = client.get_experiment_by_name(load_spec(path).name).experiment_id
    groups = client.search_runs([experiment], filter_string="tags.`harness.level` = 'group'")
    notes = {r.data.tags["harness.group"]: r.data.tags["mlflow.note.content"] for r in groups}
    for task, row in rows.items():
        best = grid[row["chosen"]]
        search = notes[f"stage1/adapter/{task}/tiny-bert/search"].splitlines()
        assert search[0].startswith(f"**Search** of adapter on {task}") and "(loss ↓;" in search[0]
        marked = [line for line in search if line.startswith("| learning_rate=")]
        assert [line.split(" | ")[0] for line in marked] == [f"| learning_rate={lr:g}" for lr in grid]
        assert [line.rstrip(" |").endswith("✓") for line in marked] == [lr == best for lr in grid]
        assert f"{row['points'][row['chosen']]['dev_mean']:.4g} " in marked[row["chosen"]]  # a loss, as it is
        final = notes[f"stage1/adapter/{task}/tiny-bert"]
        assert final.startswith(f"Hyper-parameters chosen on dev by the search: **learning_rate={best:g}**.")
        (run,) = [r for r in groups if r.data.tags["harness.group"] == f"stage1/adapter/{task}/tiny-bert"]
        assert float(run.data.params["loop.learning_rate"]) == best  # the chosen point, as a param to compare on
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


def test_the_real_scaling_study_searches_its_targets_and_its_sources(capsys):
    """experiments/scaling-real.yaml, before any result: per backbone, each source task (adapter and LoRA on three
    tasks) searches its method's whole grid at seed 0, as every target group searches 3 or more rates: a rate pinned
    on one backbone diverged on another (the file says where); nothing downloads."""
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "experiments" / "scaling-real.yaml"
    assert main(["plan", str(path), "--store", "/nonexistent-store", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    spec = load_spec(path)
    for model in spec.models:
        mine = [row for row in rows if row["model"] == model]
        for method in ("adapter", "lora"):
            grid = set(spec.search.spaces()[method]["learning_rate"])
            for task in spec.sources:
                searched = [row for row in mine if (row["method"], row["task"]) == (method, task)]
                assert all(row["role"] == "search" and row["seed"] == 0 for row in searched), (model, method, task)
                assert {row["point"]["learning_rate"] for row in searched} == grid, (model, method, task)
        for method in spec.methods:
            for target in spec.targets:
                points = {
                    row["point"]["learning_rate"] for row in mine if (row["method"], row["task"]) == (method, target)
                }
                assert len(points) >= 3, (model, method, target)


@pytest.mark.slow
def test_a_point_that_fails_for_good_ranks_last_is_recorded_and_a_resubmit_retries_it(ray_local, tmp_path):
    """Real Ray, real trials: Compacter++ at reduction factor 16 cannot build on tiny-bert (bottleneck 2, not
    divisible by its phm_dim), so that point fails at every try; the group still chooses the other point,
    trains its final seeds, records the choice in the store, and a resubmit retries only the failed point."""
    search = {"compacter_pp": {"reduction_factor": [16, 2]}}
    path = write(tmp_path, methods=["compacter_pp"], sources=None, seeds=2, search=search, retries=0)
    store = Store(tmp_path / "store")
    lines = []
    outcome = harness.submit(path, store=store, num_cpus=2, say=lines.append)
    spec = load_spec(path)
    trials = expand(spec, store)
    (broken,) = [t for t in trials if t.point == {"reduction_factor": 16}]
    assert set(outcome.failed) == {broken.key} and "choose a smaller reduction_factor" in outcome.failed[broken.key]
    final = finals(trials)
    assert [t.seed for t in final] == [0, 1] and all(t.point == {"reduction_factor": 2} for t in final)
    assert all(store.is_done(t.key) for t in final)
    (row,) = selection_rows(spec, store)
    assert row["chosen"] == 1 and row["points"][0]["failed"] == 1 and row["points"][0]["dev_mean"] is None
    record = store.choice(row["group"])
    assert record["chosen_point"] == {"reduction_factor": 2} and record["points"][0]["failed"] == 1
    assert (store.root / "choices" / f"{row['group']}.json").is_file()
    from mlflow.tracking import MlflowClient  # MLflow says the same: the search FAILED, the final seeds did not

    client = MlflowClient(tracking_uri=store.tracking_uri)
    experiment = client.get_experiment_by_name(spec.name).experiment_id
    parents = client.search_runs([experiment], filter_string="tags.`harness.level` != 'trial'")
    status = {r.data.tags["harness.group"]: r.info.status for r in parents if "harness.group" in r.data.tags}
    assert sorted(status.values()) == ["FAILED", "FAILED", "FINISHED"], status
    assert [g for g, s in status.items() if s == "FINISHED"][0].endswith(f"/{final[0].task}/tiny-bert")

    again = harness.submit(path, store=store, num_cpus=2, say=lambda line: None)
    assert again.ran == [] and set(again.failed) == {broken.key}  # the failed point was tried once more
    assert store.failure(broken.key)["time"] > store.result(final[0].key)["finished_at"]


def test_a_choice_at_the_edge_of_what_was_searched_is_flagged():
    """The chosen value is the smallest or largest of ≥ 3 tried: flagged (the best may lie beyond); an inner
    choice, a 2-point grid and a non-numeric field are not."""
    from harness.selection import at_edge

    grid = [{"learning_rate": lr, "pooling": "mean"} for lr in (1e-4, 1e-3, 1e-2)]
    assert at_edge(grid, 0) == ["learning_rate"] and at_edge(grid, 2) == ["learning_rate"]
    assert at_edge(grid, 1) == [] and at_edge(grid, None) == []
    assert at_edge([{"learning_rate": 1e-4}, {"learning_rate": 1e-3}], 1) == []
    two_fields = [{"learning_rate": lr, "reduction_factor": rf} for lr, rf in ((1, 2), (2, 16), (3, 8))]
    assert at_edge(two_fields, 1) == ["reduction_factor"]


def test_the_selection_csv_has_one_line_per_point_and_the_test_on_the_chosen_line_only():
    import csv

    from harness.selection import selection_csv, selection_markdown

    points = [
        {"point": {"learning_rate": lr}, "done": 1, "failed": 0, "planned": 1, "dev_mean": dev, "dev_sd": None}
        for lr, dev in ((1e-4, 0.9), (1e-3, 0.5), (1e-2, 0.4))
    ]
    row = {
        "group": "adapter-syn_a-tiny-bert-0123abcd",
        "model": "tiny-bert",
        "method": "adapter",
        "task": "syn_a",
        "stage": 1,
        "points": points,
        "chosen": 2,
        "lower_is_better": True,
        "selects_on": "loss ↓",
        "at_edge": ["learning_rate"],
        "test_of_chosen": {"metric": "accuracy", "mean": 71.5, "sd": None, "n": 1},
        "selects_on_test": False,
    }
    lines = list(csv.DictReader(selection_csv([row]).splitlines()))
    assert [json.loads(line["point"]) for line in lines] == [p["point"] for p in points]
    assert [line["chosen"] for line in lines] == ["False", "False", "True"]
    assert [line["test_mean"] for line in lines] == ["", "", "71.5"] and lines[2]["at_edge"] == "learning_rate"
    table = selection_markdown([row])
    assert "| loss ↓ | 0.4000 | 1/1 | ✓ (edge: learning_rate) | 71.50 (n=1) |" in table  # one seed: no ± sd
    assert "edge: in 1 of 1 groups" in table


def test_status_names_a_searched_source_out_of_scale_only_once_it_is_chosen(tmp_path, capsys):
    """A diverged grid point of a source's search is out of scale and loses; it is no one's source, so status
    names none. The point the search chose is the source: out of scale, it is named."""
    path = write(tmp_path, search={"all": {"learning_rate": [1e-4, 1e-3, 1e-2]}})
    store = Store(tmp_path / "store")
    points = [t for t in expand(load_spec(path)) if t.task == "syn_b" and t.role == "search"]
    losses = {1e-4: 0.9, 1e-3: 0.4, 1e-2: 7.0}  # 1e-3 is chosen; 1e-2 diverged
    for trial in points:
        rate = trial.point["learning_rate"]
        scale = {"ratio": 263.0 if rate == 1e-2 else 0.3, "layer": 1}
        store.write_result(trial.key, {**result(losses[rate]), "trial": trial.summary(), "adapter_scale": scale})

    def said() -> list[str]:
        capsys.readouterr()
        main(["status", path, "--store", str(store.root)])
        return [line for line in capsys.readouterr().out.splitlines() if "dwarfs" in line]

    assert said() == []
    chosen = next(t for t in points if t.point["learning_rate"] == 1e-3)
    store.write_result(chosen.key, {**store.result(chosen.key), "adapter_scale": {"ratio": 12.0, "layer": 1}})
    assert said() == [
        "source(s) whose output dwarfs its layer's (above 5x): syn_b on tiny-bert 12.0x (layer 1; mixed by 0 transfer "
        "trial(s) so far); a transfer trial that mixes one measures a broken source: check the source's own trial"
    ]


def test_status_shows_the_point_a_running_search_leads_with(tmp_path, capsys):
    path = write(tmp_path, search={"all": {"learning_rate": [1e-4, 1e-3, 1e-2]}})
    store = Store(tmp_path / "store")
    points = {t.point["learning_rate"]: t for t in expand(load_spec(path)) if t.task == "syn_b" and t.role == "search"}
    for rate, loss in ((1e-4, 0.9), (1e-2, 0.4)):  # 1e-3 still running
        store.write_result(points[rate].key, {**result(loss), "trial": points[rate].summary()})
    main(["status", path, "--store", str(store.root)])
    line = next(line for line in capsys.readouterr().out.splitlines() if "· syn_b ·" in line)
    assert line.endswith("2/3 points done, searching (best so far learning_rate=0.01: dev loss 0.4000)"), line
