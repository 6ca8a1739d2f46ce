"""The data layer: protocol splits, few-shot, synthetic benchmark, tokenisation cache (hits, races, keys)."""

import json
import multiprocessing as mp
import os
from pathlib import Path

import numpy as np
import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from scalearn.backbones import load_tokenizer
from scalearn.data import (
    DataNotAvailableError,
    few_shot,
    load_raw,
    protocol_splits,
    task_examples,
    tokenized_task,
    tokenizer_fingerprint,
)
from scalearn.evaluation import evaluate
from scalearn.tasks import BENCHMARKS, get_task
from scalearn.tasks.synthetic import CONCEPTS, SYNTHETIC_TASKS


def fake_glue(n=1000, labels=(0.7, 0.3), seed=0):
    rng = np.random.RandomState(seed)
    label = rng.choice(len(labels), n, p=labels)
    features = Features({"sentence": Value("string"), "label": ClassLabel(names=["negative", "positive"])})
    rows = {"sentence": [f"row {i}" for i in range(n)], "label": label.tolist()}
    validation = {k: v[:50] for k, v in rows.items()}
    return DatasetDict(
        {
            "train": Dataset.from_dict(rows, features=features),
            "validation": Dataset.from_dict(validation, features=features),
        }
    )


def test_ninety_ten_split_is_stratified_seeded_and_disjoint():
    task = get_task("sst2")
    raw = fake_glue()
    splits = protocol_splits(task, raw)
    assert (len(splits["train"]), len(splits["dev"]), len(splits["test"])) == (900, 100, 50)
    assert set(splits["train"]["sentence"]).isdisjoint(splits["dev"]["sentence"])
    ratio = np.mean(raw["train"]["label"])
    assert abs(np.mean(splits["dev"]["label"]) - ratio) < 0.011  # stratified: dev keeps the label ratio
    again = protocol_splits(task, fake_glue())
    assert again["dev"]["sentence"] == splits["dev"]["sentence"]  # seed 42, not the trial's seed
    assert few_shot(splits["train"], 16)["sentence"] == splits["train"]["sentence"][:16]


def test_a_spread_sample_covers_a_split_stored_in_label_order_and_is_the_same_every_time():
    """The offline corpora keep their files' order: bbc_news' first 100 training rows are all one class. The first
    rows are refused in one line that names the way out; `sample: spread` keeps rows whose text hashes first,
    every class present, the same rows every call, in the split's order; dev's cap follows the same choice."""
    with pytest.raises(
        ValueError,
        match=r"bbc_news: the 100 training rows data.sample 'first' keeps hold only label 0 of its 5; set data.sample",
    ):
        task_examples("bbc_news", few_shot_k=100)
    spread = task_examples("bbc_news", few_shot_k=100, max_dev=50, sample="spread")
    assert len(spread["train"]) == 100 and len(set(spread["train"]["label"])) == 5
    again = task_examples("bbc_news", few_shot_k=100, max_dev=50, sample="spread")
    assert spread["train"]["text"] == again["train"]["text"] and spread["dev"]["text"] == again["dev"]["text"]
    first_dev = task_examples("bbc_news", max_dev=50)["dev"]["text"]
    assert len(spread["dev"]) == 50 and spread["dev"]["text"] != first_dev


def test_a_few_shot_k_past_the_split_says_that_every_row_is_used(caplog):
    examples = task_examples("syn_a_low", few_shot_k=100_000)
    assert 0 < len(examples["train"]) < 100_000
    assert f"syn_a_low: few_shot 100000 is more than its {len(examples['train'])} training rows" in caplog.text


def test_record_protocol_selects_on_the_reported_test_set():
    task = get_task("record")
    assert task.selects_on_test
    raw = DatasetDict({"train": Dataset.from_dict({"x": [1, 2, 3]}), "validation": Dataset.from_dict({"x": [4, 5]})})
    splits = protocol_splits(task, raw)
    assert len(splits["train"]) == 3 and splits["dev"]["x"] == splits["test"]["x"] == [4, 5]
    assert not get_task("rte").selects_on_test


def test_mnli_reports_mismatched_too():
    assert get_task("mnli").extra_test_splits == {"test_mm": "validation_mismatched"}


def test_benchmarks_have_the_papers_tasks():
    assert len(BENCHMARKS["glue"]) == 8 and len(BENCHMARKS["superglue"]) == 8 and len(BENCHMARKS["humset"]) == 5
    assert len(BENCHMARKS["gsg"]) == 15 and BENCHMARKS["gsg"].count("rte") == 1
    assert "rte" in BENCHMARKS["superglue"] and get_task("rte").dataset == "nyu-mll/glue"
    assert get_task("multirc").max_length == 324 and get_task("record").max_length == 256
    assert get_task("mrpc").max_length == 128


def test_synthetic_benchmark_is_deterministic_and_has_known_structure():
    first, second = task_examples("syn_a"), task_examples("syn_a")
    assert first["train"]["text"] == second["train"]["text"]
    for name, task in SYNTHETIC_TASKS.items():
        data = task_examples(name)
        assert len(data["train"]) == task.train_size
        concept = {f"w{i}" for i in CONCEPTS[task.concept]}
        for text, label in zip(data["test"]["text"][:200], data["test"]["label"][:200], strict=True):
            hits = sum(word in concept for word in text.split())
            expected = {"count": float(hits), "parity": hits % 2, "at_least_2": int(hits >= 2)}[task.rule]
            assert label == expected
    labels = task_examples("syn_a")["train"]["label"]
    assert 0.4 < np.mean(labels) < 0.6


def test_missing_hub_data_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))
    with pytest.raises(DataNotAvailableError) as error:
        load_raw(get_task("rte"), data_dir=tmp_path)
    message = str(error.value)
    assert "task rte" in message and "nyu-mll/glue" in message and "harness data prepare" in message
    assert str(tmp_path) in message and "\n" not in message


@pytest.fixture(scope="module")
def tiny_tokenizer():
    return load_tokenizer("tiny-bert")


def test_tokenised_entry_is_reused_and_keyed(tmp_path, tiny_tokenizer):
    first = tokenized_task("syn_b", tiny_tokenizer, cache_dir=tmp_path)
    second = tokenized_task("syn_b", tiny_tokenizer, cache_dir=tmp_path)
    assert (first.hit, second.hit) == (False, True) and first.key == second.key
    assert second.splits["train"]["input_ids"] == first.splits["train"]["input_ids"]
    assert json.loads((first.path / "manifest.json").read_text())["sizes"]["train"] == 1024
    # any part of the key changes the entry
    assert tokenized_task("syn_b", tiny_tokenizer, max_length=16, cache_dir=tmp_path).key != first.key
    assert tokenized_task("syn_b", tiny_tokenizer, few_shot_k=16, cache_dir=tmp_path).key != first.key
    assert tokenized_task("syn_c", tiny_tokenizer, cache_dir=tmp_path).key != first.key
    assert (
        max(
            len(ids)
            for ids in tokenized_task("syn_b", tiny_tokenizer, max_length=8, cache_dir=tmp_path).splits["train"][
                "input_ids"
            ]
        )
        == 8
    )


def test_tokenizer_fingerprint_ignores_call_settings(tiny_tokenizer):
    before = tokenizer_fingerprint(tiny_tokenizer)
    tiny_tokenizer(["w1 w2 w3"], truncation=True, max_length=2, padding="max_length")
    assert tokenizer_fingerprint(tiny_tokenizer) == before
    assert tokenizer_fingerprint(load_tokenizer("minilm")) != before


def _race(cache_dir, barrier, queue):
    """One worker building syn_a's entry; its rename into place waits until the other has built its own copy too,
    so the two renames race every time (a worker that found the entry built would never reach the barrier, and
    the other would time out there: the test fails when the race is not exercised)."""
    real_rename = os.rename

    def rename(source, destination):
        if Path(destination).parent.name == "syn_a" and Path(source).name.startswith("."):
            barrier.wait(timeout=120)
        return real_rename(source, destination)

    os.rename = rename  # this spawned process only
    result = tokenized_task("syn_a", load_tokenizer("tiny-bert"), cache_dir=cache_dir)
    queue.put((result.key, result.hit, len(result.splits["train"]), result.splits["test"]["input_ids"][:3]))


@pytest.mark.slow
def test_two_processes_racing_make_one_valid_entry(tmp_path):
    context = mp.get_context("spawn")
    queue, barrier = context.Queue(), context.Barrier(2)
    workers = [context.Process(target=_race, args=(str(tmp_path), barrier, queue)) for _ in range(2)]
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=180) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert [hit for _, hit, *_ in results] == [False, False]  # both built it: the race happened
    assert results[0][0] == results[1][0] and results[0][2:] == results[1][2:]
    entries = list((tmp_path / "tokenized" / "syn_a").iterdir())
    assert [e.name for e in entries] == [results[0][0]], entries  # one entry, no staging left behind
    assert tokenized_task("syn_a", load_tokenizer("tiny-bert"), cache_dir=tmp_path).hit


def test_evaluate_uses_the_tasks_metric(tiny_tokenizer, tmp_path):
    data = tokenized_task("syn_a_count", tiny_tokenizer, cache_dir=tmp_path).splits["test"]
    labels = np.asarray(data["label"], dtype=np.float32)
    result = evaluate(get_task("syn_a_count"), data, labels * 2 + 1)  # a perfect linear predictor
    assert result["pearson"] == pytest.approx(1.0)
