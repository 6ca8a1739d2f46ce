"""Every GLUE, SuperGLUE and HumSet task, on data written in the hub's own schema and layout:
loading from a data folder, the paper's splits, preprocessing, tokenisation and metrics."""

import numpy as np
import pytest
import torch
from hub_fixtures import HUMSET_LABELS, write_all_fixtures

from harness.cli import main
from scalearn.backbones import load_tokenizer
from scalearn.data import load_raw, task_examples, tokenized_task
from scalearn.evaluation import evaluate
from scalearn.tasks import BENCHMARKS, get_task
from scalearn.tasks.humset import LABELS

HUB_TASKS = list(dict.fromkeys(BENCHMARKS["glue"] + BENCHMARKS["superglue"] + BENCHMARKS["humset"]))
ROWS = 60


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    write_all_fixtures(root, rows_per_split=ROWS)
    return root


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("tiny-bert")


def test_our_humset_label_sets_match_the_hub_card():
    for name, labels in LABELS.items():
        assert list(labels) == list(HUMSET_LABELS[name]), name


@pytest.mark.parametrize("name", HUB_TASKS)
def test_task_end_to_end_on_hub_schema(name, data_dir, tokenizer, tmp_path):
    task = get_task(name)
    examples = task_examples(task, data_dir)
    raw_train = load_raw(task, data_dir)[task.splits["train"]]
    if task.protocol == "train_90_10":
        assert len(examples["dev"]) == round(0.1 * len(raw_train)) or task.name == "multirc"
        assert len(examples["train"]) + len(examples["dev"]) == len(raw_train) or task.name == "multirc"
    for split in examples.values():
        assert len(split) > 0
        label = np.asarray(split["label"])
        if task.kind == "multi_label":
            assert label.shape[1] == task.num_labels and set(np.unique(label)) <= {0, 1}
        elif task.kind == "classification":
            assert set(np.unique(label)) <= set(range(task.num_labels))

    data = tokenized_task(task, tokenizer, data_dir=data_dir, cache_dir=tmp_path)
    test = data.splits["test"]
    assert set(data.manifest["sizes"]) >= {"train", "dev", "test"}
    sequences = [ids for row in test["input_ids"] for ids in (row if isinstance(row[0], list) else [row])]
    assert max(len(ids) for ids in sequences) <= task.max_length

    # metrics from logits: a perfect predictor scores 1 on the reported metric, a constant one less
    labels = torch.as_tensor(np.asarray(test["label"], dtype=np.float32))
    if task.kind == "regression":
        perfect = labels * 2 - 1
    elif task.kind == "multi_label":
        perfect = labels * 20 - 10
    else:
        perfect = torch.nn.functional.one_hot(labels.long(), max(task.num_labels, 2)).float()
    scores = evaluate(task, test, perfect)
    assert list(scores)[: len(task.metrics)] == list(task.metrics) or set(scores) == set(task.metrics)
    expected = 1.0
    if task.kind == "multi_label":  # a label absent from the split scores F1 = 0 (sklearn's zero_division=0)
        expected = float((labels.sum(0) > 0).float().mean())
    assert scores[task.metric] == pytest.approx(expected), scores


def test_mnli_has_matched_and_mismatched_test_sets(data_dir):
    examples = task_examples("mnli", data_dir)
    assert set(examples) == {"train", "dev", "test", "test_mm"}
    assert examples["test"]["text"] != examples["test_mm"]["text"]


def test_record_one_example_per_candidate_and_argmax_over_candidates(data_dir):
    task = get_task("record")
    raw = load_raw(task, data_dir)["validation"]
    test = task_examples(task, data_dir)["test"]
    assert len(test) == sum(len(set(entities)) for entities in raw["entities"])
    row = raw[0]
    first = test.filter(lambda e: e["group"] == test[0]["group"])
    assert sorted(first["candidate"]) == sorted(set(row["entities"]))
    for example in first:
        assert "@placeholder" not in example["text_pair"] and example["candidate"] in example["text_pair"]
        assert "@highlight" not in example["text"]
        assert example["label"] == int(example["candidate"] in row["answers"])
    # the wrong candidate scored highest in every query → F1 below 1; the right one → 1
    labels = np.asarray(test["label"])
    wrong = torch.as_tensor(np.stack([labels, 1 - labels], 1), dtype=torch.float)
    assert evaluate(task, test, wrong)["em"] < 1.0


def test_copa_is_multiple_choice_with_because_or_so(data_dir, tokenizer, tmp_path):
    examples = task_examples("copa", data_dir)["train"]
    assert all(len(choices) == 2 for choices in examples["choices"])
    assert all(text.endswith((" because", " so")) for text in examples["text"])
    tokenized = tokenized_task("copa", tokenizer, data_dir=data_dir, cache_dir=tmp_path).splits["train"]
    assert all(len(per_choice) == 2 for per_choice in tokenized["input_ids"])


def test_wsc_marks_the_pronoun_and_pairs_the_noun(data_dir):
    raw = load_raw(get_task("wsc"), data_dir)["validation"]
    examples = task_examples("wsc", data_dir)["test"]
    for row, example in zip(raw, examples, strict=True):
        words = example["text"].split()
        assert words[row["span2_index"]] == f"*{row['text'].split()[row['span2_index']]}*"
        assert example["text_pair"] == row["span1_text"]


def test_wic_prefixes_the_word(data_dir):
    raw = load_raw(get_task("wic"), data_dir)["validation"]
    example = task_examples("wic", data_dir)["test"][0]
    assert example["text"] == f"{raw[0]['word']}: {raw[0]['sentence1']}"
    assert example["text_pair"] == f"{raw[0]['word']}: {raw[0]['sentence2']}"


def test_multirc_groups_answers_of_a_question(data_dir):
    examples = task_examples("multirc", data_dir)["test"]
    groups = np.asarray(examples["group"])
    assert len(set(groups)) < len(groups)  # several answer options per question
    assert all(" " in pair for pair in examples["text_pair"])  # "question answer"


def test_data_prepare_writes_a_folder_the_loader_reads(data_dir, tmp_path, capsys):
    out = tmp_path / "prepared"
    assert main(["data", "prepare", "rte,cb,syn_a", "--out", str(out), "--data-dir", str(data_dir)]) == 0
    printed = capsys.readouterr().out
    assert "syn_a: ships with the project" in printed
    assert (out / "nyu-mll" / "glue" / "rte" / "validation-00000-of-00001.parquet").exists()
    assert task_examples("cb", out)["test"]["text"] == task_examples("cb", data_dir)["test"]["text"]


@pytest.mark.parametrize("benchmark", ["superglue", "humset"])
def test_one_joint_model_over_a_whole_benchmark(benchmark, data_dir, tmp_path):
    """Every task kind in one joint model: COPA's choices, ReCoRD's candidates, MultiRC's answers, CB's three
    classes (SuperGLUE), five multi-label tasks (HumSet); each task gets its own test scores."""
    from scalearn.run import train_joint

    tasks = BENCHMARKS[benchmark]
    result, _ = train_joint(
        tasks,
        method="adapter_m",
        model="tiny-bert",
        max_steps=8,
        eval_every_steps=4,
        batch_size=8,
        data_dir=data_dir,
        cache_dir=tmp_path,
    )
    assert result.steps == 8 and all(np.isfinite(result.losses))
    for task in tasks:
        assert get_task(task).metric in result.tasks[task]["test"], task
    selecting = [t for t in tasks if not get_task(t).selects_on_test]  # ReCoRD stays out of the mean
    for row in result.history:
        assert row["dev_loss"] == pytest.approx(np.mean([row[f"dev_{t}/loss"] for t in selecting]))
