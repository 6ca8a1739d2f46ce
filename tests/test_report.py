"""`harness report`: aggregation against hand-computed numbers, the statistics, the four formats, partial sweeps,
the paper's numbers lined up, and the command line. Fake result.json files only; nothing trains."""

import csv
import io
import json
import re
import statistics

import pytest
from scipy import stats as scipy_stats

from harness import paper
from harness.cli import main
from harness.plan import expand
from harness.report import build_report, render, report_dict, results_table
from harness.spec import load_spec
from harness.stats import paired_bootstrap_p, summarize, welch_p
from harness.store import Store

SPEC = """\
version: 1
name: mini-glue
models: [roberta-base]
methods: [scalearn, adapterfusion, adapter, scalearn_uniform_pp]
benchmark: glue
targets: [rte, stsb]
seeds: 3
seeds_per_task: {rte: 5}
"""
# test scores (the metric each task reports: RTE accuracy, STS-B pearson) by method, task, seed 0, 1, …
SCORES = {
    ("scalearn", "rte"): [0.70, 0.72, 0.77, 0.71, 0.75],
    ("scalearn", "stsb"): [0.90, 0.92, 0.91],
    ("adapterfusion", "rte"): [0.60, 0.61, 0.62, 0.60, 0.62],
    ("adapterfusion", "stsb"): [0.89, 0.93, 0.91],
    ("adapter", "rte"): [0.65, 0.66, 0.64, 0.65, 0.65],
    ("adapter", "stsb"): [0.88, 0.89, 0.90],
}
PARAMS = {"scalearn": 73728, "adapterfusion": 21252096, "adapter": 894528}


def write_results(store: Store, trials, scores=SCORES, skip=()) -> None:
    """A result.json for every planned trial of `scores` (less `skip`), and for the source adapters."""
    for trial in trials:
        if (trial.method, trial.task, trial.seed) in skip:
            continue
        if (trial.method, trial.task) in scores:
            value = scores[(trial.method, trial.task)][trial.seed]
        elif trial.method == "adapter":  # a source adapter of a task that is not a target: an input
            value = 0.5
        else:
            continue
        test = {"loss": 1.0, "pearson": value, "spearman": value - 0.1} if trial.task == "stsb" else {"accuracy": value}
        store.write_result(
            trial.key,
            {"trial": trial.summary(), "test": test, "parameters": {"transfer": PARAMS[trial.method], "head": 1538}},
        )


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    (root / "mini.yaml").write_text(SPEC)
    spec = load_spec(root / "mini.yaml")
    trials = expand(spec)
    store = Store(root / "store")
    write_results(store, trials)
    return root / "mini.yaml", spec, trials, store


@pytest.fixture(scope="module")
def full(sweep):
    _, spec, trials, store = sweep
    return build_report(spec, trials, store, compare_paper=True)


def rows_of(report) -> dict:
    return {row["method"]: row for row in report_dict(report)["tables"][0]["rows"]}


# -- statistics -----------------------------------------------------------------------------------


def test_summary_and_welch_against_hand_computed_values():
    s = summarize([70.0, 72.0, 77.0])
    assert s.mean == pytest.approx(73.0) and s.sd == pytest.approx(13**0.5) and s.n == 3
    assert summarize([5.0]).sd is None
    a, b = [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 8.0, 10.0]
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    t = (statistics.mean(a) - statistics.mean(b)) / (va + vb) ** 0.5
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    assert welch_p(a, b) == pytest.approx(2 * scipy_stats.t.sf(abs(t), df), rel=1e-9)
    assert welch_p(a, b) == pytest.approx(0.06913, abs=1e-5)  # t = -2.251, df = 5.52
    assert welch_p([1.0], b) is None


def test_losses_keep_their_scale_and_scores_are_shown_times_100():
    from harness.stats import scaled

    for loss in ("dev_loss", "rte/test_loss", "loss", "loss_mm", "mnli/test_loss_mm", "train_loss"):
        assert scaled(loss, 0.4512) == 0.4512, loss  # MNLI's mismatched test loss was shown as 45.12
    for score in ("accuracy", "accuracy_mm", "rte/test_mcc", "best_dev_f1"):
        assert scaled(score, 0.4512) == pytest.approx(45.12), score


def test_paired_bootstrap_is_deterministic_and_separates():
    a, b = [80.1, 81.3, 79.8, 80.6, 81.0], [70.2, 71.0, 69.5, 70.9, 70.4]
    assert paired_bootstrap_p(a, b, seed=3) == paired_bootstrap_p(a, b, seed=3)
    assert paired_bootstrap_p(a, b) < 0.001
    assert paired_bootstrap_p(a, a) == 1.0
    noisy = [70.0, 72.5, 69.0, 71.8, 70.1]
    assert paired_bootstrap_p(noisy, [71.0, 71.5, 70.5, 70.2, 70.9]) > 0.3
    assert paired_bootstrap_p([1.0, 2.0, 3.0, 4.0], [0.0] * 4) is None  # too few pairs to say anything


# -- aggregation ----------------------------------------------------------------------------------


def test_cells_are_seed_mean_and_sd_times_100_and_avg_is_the_mean_over_tasks(full):
    rows = rows_of(full)
    assert list(rows) == ["adapter", "adapterfusion", "scalearn", "scalearn_uniform_pp"]  # the paper's order
    rte, stsb = rows["scalearn"]["cells"]["rte"], rows["scalearn"]["cells"]["stsb"]
    assert (rte["mean"], rte["sd"], rte["n"]) == (pytest.approx(73.0), pytest.approx(8.5**0.5), 5)
    assert (stsb["mean"], stsb["sd"]) == (pytest.approx(91.0), pytest.approx(1.0))  # pearson, not spearman
    assert stsb["other_metrics"]["spearman"]["mean"] == pytest.approx(81.0)
    assert rows["scalearn"]["avg"] == pytest.approx(82.0)
    assert "| scalearn | 73.00 ± 2.92" in render(full, "md")


def test_source_adapters_of_non_targets_stay_out_and_the_adapter_baseline_stays_in(full):
    table = report_dict(full)["tables"][0]
    assert table["tasks"] == ["rte", "stsb"]
    adapter = rows_of(full)["adapter"]["cells"]
    assert adapter["rte"]["seeds"] == [0, 1, 2, 3, 4] and adapter["rte"]["mean"] == pytest.approx(65.0)


def test_transfer_parameters_from_results_else_from_the_formula(full):
    rows = rows_of(full)
    assert (rows["scalearn"]["transfer_parameters"], rows["scalearn"]["parameters_from"]) == (73728, "results")
    # no finished trial: the formula from the config, 8 GLUE sources → 8 (docs/method.md §1.6)
    assert (rows["scalearn_uniform_pp"]["transfer_parameters"], rows["scalearn_uniform_pp"]["parameters_from"]) == (
        8,
        "formula",
    )
    assert "| 8* |" in render(full, "md")


def test_a_source_that_swamps_the_mixture_is_named_under_the_table_and_by_status(tmp_path, sweep, capsys):
    path, spec, trials, _ = sweep
    store = Store(tmp_path / "store")
    write_results(store, trials)
    loud = {
        "mnli": {"ratio": 23.4, "layer": 8},
        "qnli": {"ratio": 0.3, "layer": 2},
        "mixed": {"ratio": 11.7, "layer": 8},
    }
    for trial in trials:
        if trial.method in ("scalearn", "adapterfusion") and trial.seed == 1:
            result = store.result(trial.key)
            store.write_result(
                trial.key,
                {
                    **result,
                    "source_scales": {**loud, "mnli": {"ratio": 9.0 + trial.seed, "layer": 3}}
                    if trial.method == "adapterfusion"
                    else loud,
                },
            )
    notes = report_dict(build_report(spec, trials, Store(store.root)))["tables"][0]["notes"]  # a new Store reads anew
    named = [note for note in notes if note.startswith("source ")]
    assert named == [
        "source mnli: its output reached 23.4x its layer's own (layer 8) in the trials of adapterfusion, scalearn; "
        "mixed in from the start, it swamps the representation, so those rows measure a broken source: check its own "
        "trial's dev score"
    ]  # qnli (0.3) and the mixture itself are not sources to name
    assert not [
        note
        for note in report_dict(build_report(spec, trials, sweep[3]))["tables"][0]["notes"]
        if note.startswith("source ")
    ]
    # a source's own trial (stage 1) measures its adapter too: status names it before any transfer trial mixes it
    qqp = next(t for t in trials if t.stage == 1 and t.task == "qqp")
    store.write_result(qqp.key, {**store.result(qqp.key), "adapter_scale": {"ratio": 12.0, "layer": 5}})
    capsys.readouterr()
    main(["status", str(path), "--store", str(store.root)])
    said = [line for line in capsys.readouterr().out.splitlines() if "dwarfs" in line]
    mixed = sum(1 for t in trials if t.method in ("scalearn", "adapterfusion") and t.seed == 1)
    assert said == [
        f"source(s) whose output dwarfs its layer's (above 5x): mnli on roberta-base 23.4x (layer 8; mixed by {mixed} "
        "transfer trial(s) so far); qqp on roberta-base 12.0x (layer 5; mixed by 0 transfer trial(s) so far); a "
        "transfer trial that mixes one measures a broken source: check the source's own trial"
    ]


def test_trials_no_better_than_a_constant_are_named_under_the_table_and_by_status(tmp_path, sweep, capsys):
    path, spec, trials, _ = sweep
    store = Store(tmp_path / "store")
    write_results(store, trials)
    for trial in trials:
        if trial.method == "scalearn" and trial.task == "stsb" and trial.seed in (0, 2):
            floor = {"constant_dev_loss": {"stsb": 2.65}, "best_dev": {"loss": 2.66}}  # not below the constant's
        elif trial.method == "scalearn" and trial.task == "stsb":
            floor = {"constant_dev_loss": {"stsb": 2.65}, "best_dev": {"loss": 0.40}}
        else:
            continue
        store.write_result(trial.key, {**store.result(trial.key), **floor})
    notes = report_dict(build_report(spec, trials, Store(store.root)))["tables"][0]["notes"]
    assert [note for note in notes if note.startswith("no better")] == [
        "no better on dev than a constant prediction (dev loss not below the best constant's): scalearn on stsb "
        "(seeds 0, 2)"
    ]
    capsys.readouterr()
    main(["status", str(path), "--store", str(store.root)])
    said = [line for line in capsys.readouterr().out.splitlines() if "constant prediction" in line]
    assert said == [
        "2 final trial(s) did no better on dev than a constant prediction (their dev loss is not below the best "
        "constant's): scalearn stsb roberta-base seed 0, scalearn stsb roberta-base seed 2"
    ]


def test_significance_against_the_baseline(full):
    rows = rows_of(full)
    rte = rows["scalearn"]["cells"]["rte"]
    a, b = [100 * v for v in SCORES[("scalearn", "rte")]], [100 * v for v in SCORES[("adapterfusion", "rte")]]
    assert rte["p_welch"] == pytest.approx(welch_p(a, b)) and rte["p_welch"] < 0.05
    assert rte["p_bootstrap"] == pytest.approx(paired_bootstrap_p(a, b)) and rte["p_bootstrap"] < 0.05
    assert rows["scalearn"]["cells"]["stsb"]["p_welch"] > 0.05  # 91.0 ± 1.0 vs 91.0 ± 2.0
    assert rows["scalearn"]["cells"]["stsb"]["p_bootstrap"] is None  # 3 seeds: too few pairs
    assert rows["adapterfusion"]["cells"]["rte"]["p_welch"] is None  # the baseline itself
    md = render(full, "md")
    scalearn_line = next(line for line in md.splitlines() if line.startswith("| scalearn |"))
    assert "73.00 ± 2.92†‡" in scalearn_line and "91.00 ± 1.00 " in scalearn_line
    assert "p < 0.05" in md


def test_no_baseline_in_the_sweep_means_no_marks_and_a_note(sweep):
    _, spec, trials, store = sweep
    report = build_report(spec, trials, store, baseline="full_ft")
    md = render(report, "md")
    assert "†" not in md.split("\n- ")[0] and "no significance marks: the baseline full_ft" in md
    with pytest.raises(ValueError, match="unknown --baseline"):
        build_report(spec, trials, store, baseline="adapterfusin")


def test_a_partial_sweep_marks_missing_cells_and_shows_n(tmp_path, sweep):
    _, spec, trials, _ = sweep
    store = Store(tmp_path / "partial")
    skip = {("scalearn", "rte", 4)} | {("adapterfusion", "stsb", seed) for seed in range(3)}
    write_results(store, trials, skip=skip)
    report = build_report(spec, trials, store)
    rows = rows_of(report)
    assert rows["scalearn"]["cells"]["rte"]["n"] == 4 and rows["adapterfusion"]["cells"]["stsb"]["mean"] is None
    assert rows["adapterfusion"]["avg"] is None
    lines = {line.split(" | ")[0]: line for line in render(report, "md").splitlines() if line.startswith("| ")}
    assert "72.50 ± 3.11" in lines["| scalearn"] and "(n=4)" in lines["| scalearn"]
    assert "(n=" not in lines["| adapter"]
    assert lines["| adapterfusion"].split(" | ")[2:4] == ["–", "–"]  # stsb and Avg


# -- formats --------------------------------------------------------------------------------------


def test_latex_is_balanced_escaped_and_square(full):
    tex = render(full, "latex")
    unescaped = re.sub(r"\\[{}]", "", tex)
    depth = 0
    for char in unescaped:
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth >= 0
    assert depth == 0
    assert re.search(r"(?<!\\)_", tex) is None and "scalearn\\_uniform\\_pp" in tex
    assert tex.count(r"$") % 2 == 0 and "$$" not in tex and "<" not in tex.replace("$<$", "")
    spec = re.search(r"\\begin\{tabular\}\{([lrc]+)\}", tex).group(1)
    body = tex.split("\\toprule")[1].split("\\bottomrule")[0]
    rows = [line for line in body.splitlines() if line.endswith(r"\\")]
    assert len(rows) == 5  # header + 4 methods
    assert all(row.count(" & ") + 1 == len(spec) for row in rows)
    assert "\\usepackage{booktabs}" in tex


def test_csv_and_json_parse_back(full):
    records = list(csv.DictReader(io.StringIO(render(full, "csv"))))
    assert len(records) == 4 * 3  # 4 methods × (2 tasks + Avg)
    row = next(r for r in records if r["method"] == "scalearn" and r["task"] == "rte")
    assert float(row["mean"]) == pytest.approx(73.0) and row["n"] == "5" and row["metric"] == "accuracy"
    assert row["seeds"] == "0 1 2 3 4" and float(row["p_welch"]) < 0.05 and row["baseline"] == "adapterfusion"
    data = json.loads(render(full, "json"))
    assert data["tables"][0]["model"] == "roberta-base" and data["citation"] == paper.CITATION
    assert data["tables"][0]["rows"][2]["cells"]["rte"]["scores"] == pytest.approx([70.0, 72.0, 77.0, 71.0, 75.0])


def test_a_score_that_is_not_a_number_is_left_out_and_said_and_the_json_stays_json(tmp_path, sweep):
    """A diverged trial's NaN test score crashed the whole report (statistics.stdev)."""
    _, spec, trials, _ = sweep
    store = Store(tmp_path / "store")
    write_results(store, trials, SCORES | {("scalearn", "stsb"): [0.90, float("nan"), 0.91]})
    report = build_report(spec, trials, store)
    cell = next(row for row in report.tables[0].rows if row.method == "scalearn").cells["stsb"]
    assert cell.scores == {0: pytest.approx(90.0), 2: pytest.approx(91.0)}
    assert "scalearn on stsb, seed 1: its test score is not a number (diverged); left out" in report.tables[0].notes
    assert "| scalearn | 90.50 ± 0.71 (n=2) |" in results_table(trials, store, ["stsb"])  # the submit's summary

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    assert json.loads(render(report, "json"), parse_constant=refuse)["tables"][0]["model"] == "roberta-base"


# -- the paper ------------------------------------------------------------------------------------


def test_compare_paper_lines_up_rows_and_columns(full):
    rows = rows_of(full)
    rte = rows["scalearn"]["cells"]["rte"]
    assert rte["paper"] == 82.06 and rte["diff"] == pytest.approx(73.0 - 82.06)  # GLUE table, ScaLearn, RTE
    assert rows["adapterfusion"]["cells"]["stsb"]["paper"] == 90.37
    assert rows["scalearn"]["paper_avg"] == pytest.approx((82.06 + 90.96) / 2)  # over the same targets
    md = render(full, "md")
    assert "| Method | rte (n=5) | paper | Δ | stsb (n=3) | paper | Δ | Avg | paper | Δ | Params |" in md
    line = next(line for line in md.splitlines() if line.startswith("| scalearn |"))
    assert line.split(" | ")[2:4] == ["82.06", "-9.06"]
    record = next(
        r for r in csv.DictReader(io.StringIO(render(full, "csv"))) if r["method"] == "scalearn" and r["task"] == "rte"
    )
    assert float(record["paper"]) == 82.06 and float(record["diff"]) == pytest.approx(-9.06)


def test_paper_tables_are_chosen_by_model_and_benchmark():
    roberta = "FacebookAI/roberta-base"
    assert paper.find_table(roberta, "glue", []) == "glue"
    assert paper.find_table(roberta, None, ["rte", "cb", "boolq"]) == "superglue"
    assert paper.find_table("FacebookAI/roberta-large", "glue", []) is None
    assert paper.paper_scores("superglue", "scalearn")["rte"] == 78.88  # SuperGLUE sources: another RTE number
    assert paper.paper_scores("glue", "adapter_soup") == {"avg": 71.52}
    assert paper.paper_scores("glue", "probe") == {}


def test_paper_data_averages_match_the_cells():
    """The copied numbers hold together: each row's Avg is the mean of its cells (docs/method.md §4.2), except the
    README's one known slip (ProPETL on SuperGLUE: the cells give 73.66, the table says 73.69)."""
    for name, table in paper.PAPER.items():
        for method, values in table["rows"].items():
            if (name, method) == ("superglue", "ProPETL"):
                assert statistics.mean(values[:-1]) == pytest.approx(73.66, abs=0.01)
                continue
            assert len(values) == len(table["tasks"]) + 1
            assert statistics.mean(values[:-1]) == pytest.approx(values[-1], abs=0.011), (name, method)


# -- command line and the submit summary --------------------------------------------------------


def test_cli_prints_and_writes_every_format(sweep, tmp_path, capsys):
    spec_file, _, _, store = sweep
    assert (
        main(["report", str(spec_file), "--store", str(store.root), "--format", "md", "--out", str(tmp_path / "out")])
        == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("### mini-glue: roberta-base") and "| scalearn | 73.00 ± 2.92" in out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "report.csv",
        "report.json",
        "report.md",
        "report.tex",
    ]
    assert (tmp_path / "out" / "report.md").read_text().strip() == out.strip()


def test_a_report_is_attached_where_the_sweep_was_tracked(sweep, tmp_path, capsys):
    """A sweep submitted with --tracking-uri is tracked there, not in the store: its report goes there too."""
    from mlflow.tracking import MlflowClient

    from harness.tracking.server import seed_database

    spec_file, _, _, store = sweep
    seed_database(tmp_path / "elsewhere.db")  # an empty MLflow database, as a server's would be
    uri = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    out = ["--out", str(tmp_path / "out"), "--tracking-uri", uri]
    assert main(["report", str(spec_file), "--store", str(store.root), *out]) == 0
    assert f"attached to MLflow experiment 'mini-glue' (run 'report'); at {uri}" in capsys.readouterr().err
    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("mini-glue").experiment_id])
    assert run.info.run_name == "report" and run.info.status == "FINISHED"
    assert "report/report.md" in [f.path for f in client.list_artifacts(run.info.run_id, "report")]
    assert not store.has_tracking  # nothing written into the store's own database


@pytest.mark.parametrize(
    "extra, message",
    [(["--format", "xls"], "unknown --format 'xls'"), (["--compare", "readme"], "unknown --compare")],
)
def test_cli_rejects_bad_options_in_one_line(sweep, capsys, extra, message):
    spec_file, _, _, store = sweep
    assert main(["report", str(spec_file), "--store", str(store.root), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("harness report: ") and message in err and "\n" not in err


def test_cli_missing_store(sweep, tmp_path, capsys):
    spec_file = sweep[0]
    assert main(["report", str(spec_file), "--store", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no results store at" in err and "\n" not in err


def test_results_table_keeps_its_role(sweep):
    _, spec, trials, store = sweep
    text = results_table(trials, store, spec.target_list())
    assert "| roberta-base | scalearn | 91.00 ± 1.00 (n=3) | 73.00 ± 2.92 (n=5) |" in text
    assert "mnli" not in text  # a source adapter, not a result


def test_a_submit_names_a_source_out_of_scale_once_before_the_transfer_trials_that_mix_it(tmp_path, sweep):
    from harness.submit import SourceWatch

    _, spec, trials, _ = sweep
    store = Store(tmp_path / "store")
    write_results(store, trials)
    mnli, qnli = (next(t for t in trials if t.stage == 1 and t.task == task) for task in ("mnli", "qnli"))
    record = {
        "adapter_scale": {"ratio": 23.1, "layer": 8},
        "best_dev": {"loss": 0.41},
        "constant_dev_loss": {"mnli": 0.35},
    }
    store.write_result(mnli.key, {**store.result(mnli.key), **record})
    store.write_result(qnli.key, {**store.result(qnli.key), "adapter_scale": {"ratio": 0.3, "layer": 2}})
    lines = []
    watch = SourceWatch(spec, Store(store.root), lines.append)
    watch.finished(qnli)  # in scale: nothing to say
    watch.planned(trials)  # the transfer trials that consume mnli are planned
    watch.planned(trials)
    watch.finished(mnli)  # said once
    assert lines == [
        "mini-glue: the adapter of mnli on roberta-base puts out 23.1x its layer's own output (layer 8; its dev loss "
        "0.41 against a constant's 0.35): every transfer trial that mixes it measures a broken source; check its "
        "training"
    ]


def test_a_few_shot_sweep_reports_a_targets_k_shot_adapter_not_its_full_data_source_adapter(tmp_path):
    """In a few-shot sweep a target is also another target's source: its full-data source adapter (seed 0) is an
    input, and must not take seed 0 of the target's k-shot adapter row (it did: 90 among scores near 51)."""
    (tmp_path / "fs.yaml").write_text(SPEC + "data: {few_shot: 16}\n")
    spec = load_spec(tmp_path / "fs.yaml")
    trials = expand(spec)
    full_data = [t for t in trials if t.method == "adapter" and t.task == "rte" and t.config.data.few_shot is None]
    assert len(full_data) == 1 and full_data[0].role == "final" and full_data[0].seed == 0  # the source for stsb
    store = Store(tmp_path / "store")
    for trial in trials:
        if trial.method == "adapter" and trial.task in ("rte", "stsb"):
            value = 0.50 + 0.01 * trial.seed if trial.config.data.few_shot else 0.90
            test = {"pearson": value} if trial.task == "stsb" else {"accuracy": value}
            store.write_result(trial.key, {"trial": trial.summary(), "test": test})
    (table,) = build_report(spec, trials, store).tables
    adapter = next(row for row in table.rows if row.method == "adapter")
    assert adapter.cells["rte"].scores == {seed: pytest.approx(50.0 + seed) for seed in range(5)}
    assert not any("two different trials" in note for note in table.notes)
    assert "| adapter | 52.00 ± 1.58 (n=5) |" in results_table(trials, store, ["rte"], spec.data.few_shot)
