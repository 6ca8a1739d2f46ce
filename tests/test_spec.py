"""Experiment files: every malformed file is exit code 2 and one line `FILE:key.path: what (expected)`."""

import json
from pathlib import Path

import pytest

from harness.cli import main

GOOD = """\
version: 1
models: [tiny-bert]
methods: [adapter, scalearn]
benchmark: synthetic
targets: [syn_a_low]
sources: [syn_a, syn_b, syn_a_low]
seeds: 2
hyperparameters:
  all: {epochs: 1, max_steps: 2}
"""

# (what is wrong, file text, the key path in the message, a fragment of the message)
MALFORMED = [
    ("unknown top-level key", GOOD + "sedes: 3\n", "sedes", "did you mean 'seeds'"),
    ("unknown key in resources", GOOD + "resources: {cpu: 1}\n", "resources.cpu", "did you mean 'cpus'"),
    ("unknown key in data", GOOD + "data: {max_len: 64}\n", "data.max_len", "unknown key"),
    ("missing version", GOOD.replace("version: 1\n", ""), "version", "missing"),
    ("wrong version", GOOD.replace("version: 1", "version: 7"), "version", "not supported"),
    ("missing models", GOOD.replace("models: [tiny-bert]\n", ""), "models", "missing"),
    ("empty models", GOOD.replace("[tiny-bert]", "[]"), "models", "must be a non-empty list of strings (got [])"),
    ("empty methods", GOOD.replace("[adapter, scalearn]", "[]"), "methods", "must be a non-empty list"),
    ("unknown model", GOOD.replace("tiny-bert", "robreta-base"), "models.0", "did you mean 'roberta-base'"),
    ("unknown method", GOOD.replace("scalearn]", "scalarn]"), "methods.1", "did you mean 'scalearn'"),
    ("unknown benchmark", GOOD.replace("synthetic", "glu"), "benchmark", "unknown benchmark 'glu'"),
    ("unknown target", GOOD.replace("targets: [syn_a_low]", "targets: [syn_q]"), "targets.0", "unknown task"),
    (
        "target outside the tasks",
        GOOD.replace("targets: [syn_a_low]", "targets: [rte]"),
        "targets.0",
        "not among the experiment's tasks",
    ),
    (
        "source outside the tasks",
        GOOD.replace("sources: [syn_a,", "sources: [mrpc,"),
        "sources.0",
        "not among the experiment's tasks",
    ),
    ("zero seeds", GOOD.replace("seeds: 2", "seeds: 0"), "seeds", "must be a whole number ≥ 1 or a non-empty list"),
    ("negative seeds", GOOD.replace("seeds: 2", "seeds: -3"), "seeds", "(got -3)"),
    ("empty seed list", GOOD.replace("seeds: 2", "seeds: []"), "seeds", "(got [])"),
    (
        "seeds of wrong type",
        GOOD.replace("seeds: 2", "seeds: many"),
        "seeds",
        "must be a whole number ≥ 1 or a non-empty list of whole numbers ≥ 0 (got 'many')",
    ),
    (
        "models not a list",
        GOOD.replace("models: [tiny-bert]", "models: {a: 1}"),
        "models",
        "must be a non-empty list of strings",
    ),
    (
        "no benchmark and no tasks",
        GOOD.replace("benchmark: synthetic\n", "")
        .replace("targets: [syn_a_low]\n", "")
        .replace("sources: [syn_a, syn_b, syn_a_low]\n", ""),
        "benchmark",
        "needs `benchmark` or `tasks`",
    ),
    (
        "unknown hyper-parameter",
        GOOD.replace("{epochs: 1, max_steps: 2}", "{epohcs: 1}"),
        "hyperparameters.all.epohcs",
        "unknown hyper-parameter",
    ),
    (
        "hyper-parameter for an unknown method",
        GOOD + "  scalarn: {learning_rate: 0.1}\n",
        "hyperparameters.scalarn",
        "unknown method",
    ),
    (
        "method field on the wrong method",
        GOOD + "  adapter: {omega_dropout: 0.1}\n",
        "hyperparameters.adapter.omega_dropout",
        "unknown hyper-parameter",
    ),
    ("negative retries", GOOD + "retries: -1\n", "retries", "must be a whole number ≥ 0 (got -1)"),
    ("zero cpus", GOOD + "resources: {cpus: 0}\n", "resources.cpus", "must be a number > 0 (got 0)"),
    (
        "seeds_per_task for an unknown task",
        GOOD + "seeds_per_task: {rtee: 10}\n",
        "seeds_per_task.rtee",
        "unknown task",
    ),
    (
        "model_hyperparameters for a model not in models",
        GOOD + "model_hyperparameters: {tiny-llama: {batch_size: 4}}\n",
        "model_hyperparameters.tiny-llama",
        "unknown model",
    ),
    (
        "a bad value in model_hyperparameters",
        GOOD + "model_hyperparameters: {tiny-bert: {batch_size: 0}}\n",
        "model_hyperparameters.tiny-bert.batch_size",
        "must be",
    ),
    (
        "unknown key in model_resources",
        GOOD + "model_resources: {tiny-bert: {gpu: 1}}\n",
        "model_resources.tiny-bert.gpu",
        "unknown key; did you mean 'gpus'? (expected one of cpus, gpus, memory_gb)",
    ),
    (
        "negative gpus in model_resources",
        GOOD + "model_resources: {tiny-bert: {gpus: -1}}\n",
        "model_resources.tiny-bert.gpus",
        "(got -1)",
    ),
    ("not a mapping", "- just\n- a list\n", None, "must hold a mapping"),
    ("bad YAML syntax", GOOD.replace("seeds: 2", "seeds: [2"), "line 8", "flow sequence at line 7"),
    ("include of a missing file", "include: nowhere.yaml\n" + GOOD, None, "cannot read"),
    # YAML's `true` is not 1, and a key given twice is not the last one silently
    ("a boolean as a count", GOOD + "data: {few_shot: true}\n", "data.few_shot", "a boolean is not a number"),
    ("a boolean as seeds", GOOD.replace("seeds: 2", "seeds: yes"), "seeds", "a boolean is not a number"),
    ("an infinite resource", GOOD + "resources: {cpus: .inf}\n", "resources.cpus", "(got inf)"),
    ("a key given twice", GOOD + "seeds: 1\n", "line 10", "duplicate key 'seeds' (first at line 7)"),
    ("a name that is a path", GOOD + "name: ../../etc\n", "name", "a plain name"),
    (
        "values each fine, wrong together",
        GOOD + "model_hyperparameters: {tiny-bert: {backbone_dtype: bf16}}\n",
        "hyperparameters",
        "backbone_dtype bf16 needs precision bf16",
    ),
    (
        "a misspelled search setting",
        GOOD + "search: {trails: 3, adapter: {learning_rate: [0.1, 0.2]}}\n",
        "search.trails",
        "did you mean 'trials'",
    ),
    (
        "a source adapter that is nowhere",
        GOOD + "source_adapters: {syn_b: ./does/not/exist}\n",
        "source_adapters.syn_b",
        "no such folder",
    ),
    ("search seeds without a search", GOOD + "search_seeds: 2\n", "search_seeds", "nothing is searched"),
    (
        "more start-up points than trials",
        GOOD + "search: {sampler: tpe, trials: 4, startup: 6, adapter: {learning_rate: {low: 1e-4, high: 1e-2}}}\n",
        "search.startup",
        "6 start-up points is more than the 4 trials",
    ),
    (
        "fp16 on trials that ask for no GPU",
        GOOD + "model_hyperparameters: {tiny-bert: {precision: fp16}}\n",
        "hyperparameters",
        "precision fp16 needs a GPU, and its trials ask for none (resources.gpus)",
    ),
    (
        "a grid value given twice",
        GOOD + "search: {adapter: {learning_rate: [1e-3, 0.001]}}\n",
        "search.adapter.learning_rate.1",
        "the value at position 0 again",
    ),
    (
        "a grid too large to list",
        GOOD
        + "search: {adapter: {"
        + ", ".join(
            f"{k}: [{', '.join(map(str, range(1, 11)))}]"
            for k in ("epochs", "batch_size", "patience", "max_steps", "eval_batch_size", "log_every_steps")
        )
        + "}}\n",
        "search",
        "1,000,000 points, more than 100,000",
    ),
]


@pytest.mark.parametrize("what,text,location,fragment", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_file_is_one_clear_line(what, text, location, fragment, tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert main(["validate", str(path)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    assert lines[0].startswith(str(path)) or lines[0].startswith(str(path.resolve())) or "nowhere" in lines[0]
    if location is not None:
        assert f":{location}:" in lines[0], lines[0]
    assert fragment in lines[0], lines[0]


def test_at_least_twenty_kinds_of_malformed_files():
    assert len(MALFORMED) >= 20


def test_good_file_validates_and_counts_trials(tmp_path, capsys):
    path = tmp_path / "good.yaml"
    path.write_text(GOOD)
    assert main(["validate", str(path)]) == 0
    # stage 1: adapter on syn_a_low × 2 seeds + sources syn_a, syn_b (syn_a_low seed 0 is shared); stage 2: 2
    assert capsys.readouterr().out.strip() == "ok: 6 trials (4 stage 1, 2 stage 2) in good"


def test_include_merges_a_base_file(tmp_path, capsys):
    (tmp_path / "base.yaml").write_text(GOOD)
    (tmp_path / "child.yaml").write_text("include: base.yaml\nseeds: 1\nname: child\n")
    assert main(["validate", str(tmp_path / "child.yaml")]) == 0
    assert "ok: 4 trials" in capsys.readouterr().out


def test_an_included_files_mistake_names_that_file_and_its_name_names_the_store(tmp_path, capsys):
    from harness.cli.common import default_store

    (tmp_path / "base.yaml").write_text(GOOD + "name: base-study\nresorces: {cpus: 1}\n")
    (tmp_path / "child.yaml").write_text("include: base.yaml\nseeds: 1\n")
    assert main(["validate", str(tmp_path / "child.yaml")]) == 2
    assert capsys.readouterr().err.startswith(f"{tmp_path / 'base.yaml'}:resorces: unknown key")
    (tmp_path / "base.yaml").write_text(GOOD + "name: base-study\n")
    assert default_store(str(tmp_path / "child.yaml")) == "runs/base-study"  # the name it includes
    assert default_store(str(tmp_path / "child.yaml"), ["name=mine"]) == "runs/mine"


def test_a_file_that_is_not_utf8_is_one_line(tmp_path, capsys):
    path = tmp_path / "latin.yaml"
    path.write_bytes(GOOD.encode() + "name: caf\u00e9\n".encode("latin-1"))
    for command in ("validate", "plan"):
        assert main([command, str(path)]) == 2
        assert capsys.readouterr().err.strip() == f"{path}: not UTF-8 text (byte 0xe9 at offset {len(GOOD) + 9})"


def test_shipped_experiment_files_validate(capsys):
    for path in sorted((Path(__file__).resolve().parent.parent / "experiments").glob("*.yaml")):
        assert main(["validate", str(path)]) == 0, path
    assert capsys.readouterr().out.count("ok:") >= 1


def test_plan_json_lists_the_fields(tmp_path, capsys):
    path = tmp_path / "good.yaml"
    path.write_text(GOOD)
    assert main(["plan", str(path), "--json", "--store", str(tmp_path / "store")]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"key", "stage", "method", "task", "seed", "model", "depends_on", "done"} <= set(rows[0])
    assert [r["stage"] for r in rows] == sorted(r["stage"] for r in rows)
    transfer = [r for r in rows if r["stage"] == 2]
    by_key = {r["key"]: r for r in rows}
    for row in transfer:
        assert [by_key[k]["task"] for k in row["depends_on"]] == ["syn_a", "syn_b", "syn_a_low"]  # target last
        assert all(by_key[k]["seed"] == 0 for k in row["depends_on"])  # the seed-0 source adapters


def test_per_model_settings_reach_that_models_trials(tmp_path, capsys):
    """`model_hyperparameters` win over `hyperparameters` for that backbone only; `model_resources` over
    `resources`; a block may name a model by alias or hub id."""
    from harness.plan import make_plan
    from harness.spec import load_spec

    path = tmp_path / "two.yaml"
    text = GOOD.replace("models: [tiny-bert]", "models: [tiny-bert, tiny-llama]")
    text += "  scalearn: {batch_size: 16}\n"
    text += "model_hyperparameters:\n  tiny-llama: {batch_size: 4, gradient_accumulation: 4}\n"
    text += "resources: {cpus: 1}\nmodel_resources: {tiny-llama: {cpus: 2, memory_gb: 3}}\n"
    path.write_text(text)
    spec = load_spec(path)
    trials = make_plan(spec, None).trials
    by_model = {}
    for trial in trials:
        loop = trial.config.loop
        by_model.setdefault((trial.model, trial.config.method), set()).add(
            (loop.batch_size, loop.gradient_accumulation)
        )
    assert by_model[("tiny-bert", "adapter")] == {(32, 1)}
    assert by_model[("tiny-bert", "scalearn")] == {(16, 1)}
    assert by_model[("tiny-llama", "adapter")] == {(4, 4)}
    assert by_model[("tiny-llama", "scalearn")] == {(4, 4)}
    assert spec.resources_for("tiny-llama") == {**spec.resources.model_dump(), "cpus": 2.0, "memory_gb": 3.0}
    assert spec.resources_for("tiny-bert") == spec.resources.model_dump()
