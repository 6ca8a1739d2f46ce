"""`harness params` gives the paper's per-target transfer parameter counts from configs alone."""

import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main

PAPER_ROBERTA_BASE_8_SOURCES = {  # docs/method.md §1.6 and §2.1
    "scalearn": 73728,
    "scalearn_uniform": 96,
    "scalearn_pp": 6144,
    "scalearn_uniform_pp": 8,
    "adapterfusion": 21252096,
    "adapter": 894528,
}


@pytest.mark.parametrize("method,expected", sorted(PAPER_ROBERTA_BASE_8_SOURCES.items()))
def test_roberta_base_figures(method, expected, capsys):
    assert main(["params", "roberta-base", method, "--sources", "8"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(expected)


@pytest.mark.parametrize(
    "model,method,sources,expected",
    [
        ("roberta-large", "scalearn", 8, 196608),
        ("roberta-large", "adapterfusion", 8, 75546624),
        ("roberta-large", "adapter", 8, 3171840),
        ("xlm-roberta-base", "scalearn", 5, 46080),
        ("xlm-roberta-large", "scalearn_pp", 5, 5120),
        ("roberta-base", "scalearn", 15, 138240),
        ("bert-base-uncased", "scalearn_uniform", 8, 96),
        ("deberta-v3-base", "scalearn_pp", 8, 6144),
        ("minilm", "scalearn", 8, 8 * 384 * 6),
    ],
)
def test_other_backbones(model, method, sources, expected, capsys):
    assert main(["params", model, method, "--sources", str(sources)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(expected)


@pytest.mark.parametrize(
    "method,expected",
    [
        ("ia3", 12 * (2 * 768 + 3072)),  # L·(2d + d_ff) = 55,296 (the paper quotes "57K", docs/method.md §1.6)
        ("lora", 12 * 2 * 8 * (768 + 768)),  # L·2·r·(d + d) = 294,912
        ("compacter_pp", 12 * (2 * (768 + 48) + 48 + 768) + 4**3),  # 29,440: the paper's "29K" (docs/method.md §1.6)
        ("propetl", 2 * 768 * 48 + 48 + 768 + 12 * 2 * 768 * 48 // 32),  # 74,544 prototype + 27,648 for mask bits
    ],
)
def test_single_task_tuners_on_roberta_base(method, expected, capsys):
    assert main(["params", "roberta-base", method]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(expected)


@pytest.mark.parametrize(
    "method,per_task,total",
    [
        ("adapter_m", 111816, 894528),  # one shared Pfeiffer adapter
        ("propetl_m", 15078, 74544 + (12 + 8) * 2 * 768 * 48 // 32),  # prototype + layer and task mask bits
        ("hyperformer", 7427568, 59420544),  # derived from ScaLearn's src/adapters_hf (per-layer generators)
        ("hyperformer_pp", 636878, 5095024),  # one hypernetwork for every layer
    ],
)
def test_joint_methods_on_roberta_base_glue(method, per_task, total, capsys):
    """A joint method shares its parameters among the 8 tasks: the last line is each task's share."""
    assert main(["params", "roberta-base", method, "--sources", "8"]) == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1] == str(per_task) and per_task == -(-total // 8)
    assert f"{total:,}" in out


@pytest.mark.slow
def test_console_script_runs_offline():
    out = subprocess.run(
        [sys.executable, "-m", "harness.cli", "params", "roberta-base", "scalearn_uniform_pp", "--sources", "8"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip().splitlines()[-1] == "8"


def test_unknown_method_is_one_clear_line(capsys):
    assert main(["params", "roberta-base", "scalarn"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "unknown method 'scalarn'" in err and "did you mean 'scalearn'" in err and "adapterfusion" in err


# Published shapes (d, L) of each alias's config.json, written here independently of scalearn/catalog.py,
# and the published backbone size in billions without the LM head (the model card's count less an untied head).
# (hidden size, layers, billions of backbone parameters as published, less the LM head where it is untied)
PUBLISHED = {
    "minilm": (384, 6, 0.0227),
    "roberta-large": (1024, 24, 0.355),
    "deberta-v3-large": (1024, 24, 0.435),  # 304M backbone + 131M embedding, as its model card says
    "qwen3-0.6b": (1024, 28, 0.596),
    "qwen3-1.7b": (2048, 28, 1.72),
    "qwen3-4b": (2560, 36, 4.02),
    "qwen3-8b": (4096, 36, 8.19 - 151936 * 4096 / 1e9),
    "qwen3-14b": (5120, 40, 14.77 - 151936 * 5120 / 1e9),
    "llama-3.2-1b": (2048, 16, 1.24),
    "llama-3.2-3b": (3072, 28, 3.21),
    "llama-3.1-8b": (4096, 32, 8.03 - 128256 * 4096 / 1e9),
    "mistral-7b": (4096, 32, 7.25 - 32768 * 4096 / 1e9),
    "gemma-2-2b": (2304, 26, 2.61),
    "gemma-2-9b": (3584, 42, 9.24),
    # the packaged real backbones (their model cards: 135M, 268M with the 170M embedding, 109.5M)
    "smollm2-135m-q4": (576, 30, 0.1345),
    "gemma3-270m-q4": (640, 18, 0.268),
    "mpnet-base": (768, 12, 0.1095),
}


@pytest.mark.parametrize("alias", sorted(PUBLISHED))
def test_aliases_of_the_scaling_study_against_their_published_configs(alias, capsys):
    from scalearn.params import backbone_size

    d, L, billions = PUBLISHED[alias]
    assert main(["params", alias, "scalearn", "--sources", "8"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(8 * d * L)
    assert main(["params", alias, "scalearn_uniform_pp", "--sources", "8"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "8"
    assert backbone_size(alias)["parameters"] / 1e9 == pytest.approx(billions, rel=0.01)


@pytest.mark.parametrize(
    "method,expected",
    [
        ("scalearn", 1048576),  # 8 · 4096 · 32, the figure
        ("adapter", 32 * (2 * 4096 * 256 + 256 + 4096)),  # L · (2dr + r + d), r = d/16
        ("adapterfusion", 32 * (3 * 4096 * 4096 + 2 * 4096)),
        ("lora", 32 * 8 * ((4096 + 4096) + (4096 + 1024))),  # 3,407,872, as PEFT reports for r = 8 on q, v
        ("ia3", 32 * (2 * 1024 + 14336)),  # keys and values are 8 heads × 128 wide (GQA)
    ],
)
def test_llama_3_1_8b_counts(method, expected, capsys):
    assert main(["params", "llama-3.1-8b", method, "--sources", "8"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(expected)


def test_ls_models_says_which_real_weights_ship_here(capsys):
    from scalearn.packaged import PACKAGED

    assert main(["ls", "models"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    for name, entry in PACKAGED.items():
        state = "installed" if entry.installed() else entry.install_command()
        assert rows[name].endswith(f"real, packaged ({entry.note}): {state}")
    assert "mpnet-base" in rows["sentence-transformers/all-mpnet-base-v2"]  # the alias of the hub's own files
    assert rows["HuggingFaceTB/SmolLM2-135M-Instruct"].endswith("hub or HF cache")  # not the dequantised one
    assert rows["tiny-mpnet"].endswith("random init, for tests")


def test_the_default_store_follows_the_experiment_file(tmp_path, monkeypatch, capsys):
    """`make demo` writes runs/demo; `harness report experiments/demo.yaml` after it reads the same store."""
    from harness.cli import default_store

    monkeypatch.chdir(tmp_path)
    tiny = Path(__file__).resolve().parent.parent / "experiments" / "tiny.yaml"
    mine = tmp_path / "mine.yaml"
    mine.write_text(tiny.read_text().replace("name: tiny", "name: mine"))
    assert default_store(str(mine)) == str(Path("runs") / "mine")
    assert main(["report", str(mine)]) == 2
    assert "no results store at runs/mine" in capsys.readouterr().err
    (tmp_path / "broken.yaml").write_text("name: [unclosed")
    assert default_store(str(tmp_path / "broken.yaml")) == str(Path("runs") / "broken")  # the command says why
    assert default_store(None) == "store"


@pytest.mark.parametrize(
    ("count", "shown"),
    [(999, "999"), (9994, "9.99K"), (9996, "10.0K"), (113_040, "113.0K"), (999_949, "999.9K"), (999_960, "1.00M")]
    + [(12_345_678, "12.3M"), (9_996_000, "10.0M"), (7_504_924_672, "7.50B")],
)
def test_human_count_rounds_before_it_chooses_digits_and_unit(count, shown):
    from scalearn.params import human_count

    assert human_count(count) == shown
