"""The synthetic hub fixtures round-trip through ``load_dataset("parquet")`` with the hub's exact schemas."""

from __future__ import annotations

import re
from collections import defaultdict

import datasets
import pytest
from datasets import ClassLabel, load_dataset
from hub_fixtures import (
    HUB_SCHEMAS,
    HUMSET_LABEL_COLUMNS,
    HUMSET_LABELS,
    fixture_path,
    write_all_fixtures,
    write_hub_fixture,
)

KEYS = sorted(HUB_SCHEMAS)


@pytest.fixture(scope="module")
def hub_root(tmp_path_factory):
    datasets.disable_progress_bars()
    root = tmp_path_factory.mktemp("hub")
    written = write_all_fixtures(root)
    assert sorted(written) == KEYS
    return root


@pytest.fixture(scope="module")
def loaded(hub_root, tmp_path_factory):
    cache = tmp_path_factory.mktemp("hf_cache")
    out = {}
    for hub_id, config in KEYS:
        splits = HUB_SCHEMAS[(hub_id, config)]["splits"]
        files = {s: str(fixture_path(hub_root, hub_id, config, s)) for s in splits}
        out[(hub_id, config)] = load_dataset("parquet", data_files=files, cache_dir=str(cache))
    return out


def test_expected_keys():
    glue = {c for h, c in KEYS if h == "nyu-mll/glue"}
    sg = {c for h, c in KEYS if h == "aps/super_glue"}
    assert glue == {"mnli", "qqp", "qnli", "sst2", "stsb", "mrpc", "rte", "cola"}
    assert sg == {"boolq", "cb", "copa", "multirc", "record", "wic", "wsc", "wsc.fixed", "rte"}
    assert ("nlp-thedeep/humset", "1.0.0") in HUB_SCHEMAS


@pytest.mark.parametrize("key", KEYS, ids=lambda k: f"{k[0]}:{k[1]}" if isinstance(k, tuple) else str(k))
def test_schema_and_splits_round_trip(hub_root, loaded, key):
    hub_id, config = key
    schema = HUB_SCHEMAS[key]
    for split in schema["splits"]:
        assert fixture_path(hub_root, hub_id, config, split).name == f"{split}-00000-of-00001.parquet"
    dd = loaded[key]
    assert list(dd) == schema["splits"]
    for split, ds in dd.items():
        assert ds.num_rows == 40, split
        assert ds.features == schema["features"], split
        assert list(ds.features) == list(schema["features"]), split  # column order as on the hub
        for name, feat in schema["features"].items():
            if isinstance(feat, ClassLabel):
                assert ds.features[name].names == feat.names
                labels = ds[name]
                if split.startswith("test"):
                    assert set(labels) == {-1}, split
                else:
                    counts = [labels.count(i) for i in range(feat.num_classes)]
                    assert max(counts) - min(counts) <= 1, (split, counts)  # balanced over classes


def test_record_entities_and_answers(loaded):
    dd = loaded[("aps/super_glue", "record")]
    for split, ds in dd.items():
        queries = set()
        for ex in ds:
            passage, entities, answers = ex["passage"], ex["entities"], ex["answers"]
            assert "@highlight\n" in passage and "@placeholder" in ex["query"]
            assert entities and all(e in passage for e in entities)
            assert set(answers) <= set(entities)
            assert bool(answers) == (split != "test")
            spans = ex["entity_spans"]
            assert len(spans["text"]) == len(spans["start"]) == len(spans["end"]) >= len(entities)
            assert spans["start"] == sorted(spans["start"])
            for text, start, end in zip(spans["text"], spans["start"], spans["end"], strict=True):
                assert passage[start:end] == text  # end is exclusive (super_glue 1.0.3)
            assert set(spans["text"]) == set(entities)
            queries.add(ex["idx"]["query"])
            for a in answers:  # the filled-in query mentions an entity of the passage
                assert a in ex["query"].replace("@placeholder", a)
        assert len(queries) == ds.num_rows  # query ids unique; passages may carry several queries
        assert len({ex["idx"]["passage"] for ex in ds}) < ds.num_rows


@pytest.mark.parametrize("config", ["wsc", "wsc.fixed"])
def test_wsc_spans_point_at_span_texts(loaded, config):
    for ds in loaded[("aps/super_glue", config)].values():
        for ex in ds:
            words = ex["text"].split()
            span1 = ex["span1_text"].split()
            i1, i2 = ex["span1_index"], ex["span2_index"]
            assert words[i1 : i1 + len(span1)] == span1
            assert re.sub(r"\W+$", "", words[i2]) == ex["span2_text"]


def test_multirc_groups(loaded):
    for split, ds in loaded[("aps/super_glue", "multirc")].items():
        groups = defaultdict(list)
        paragraphs = {}
        for ex in ds:
            key = (ex["idx"]["paragraph"], ex["idx"]["question"])
            groups[key].append(ex["label"])
            assert paragraphs.setdefault(ex["idx"]["paragraph"], ex["paragraph"]) == ex["paragraph"]
        assert all(len(labels) >= 2 for labels in groups.values()), split
        assert len({ex["idx"]["answer"] for ex in ds}) == ds.num_rows
        if split != "test":
            assert all(0 in labels and 1 in labels for labels in groups.values())
        assert len(paragraphs) < len(groups)  # several questions share a paragraph


def test_copa_wic_stsb(loaded):
    for ds in loaded[("aps/super_glue", "copa")].values():
        assert set(ds["question"]) == {"cause", "effect"}
        assert all(ex["choice1"] != ex["choice2"] for ex in ds)
    for ds in loaded[("aps/super_glue", "wic")].values():
        for ex in ds:
            assert ex["sentence1"][ex["start1"] : ex["end1"]] == ex["word"]
            assert ex["sentence2"][ex["start2"] : ex["end2"]] == ex["word"]
    for split, ds in loaded[("nyu-mll/glue", "stsb")].items():
        labels = ds["label"]
        if split == "test":
            assert set(labels) == {-1.0}
        else:
            assert all(0.0 <= x <= 5.0 for x in labels) and len(set(labels)) > 5


def test_humset_multilabel(loaded):
    dd = loaded[("nlp-thedeep/humset", "1.0.0")]
    train_labels = {c: {x for ls in dd["train"][c] for x in ls} for c in HUMSET_LABEL_COLUMNS}
    for c in ("sectors", "subpillars_1d", "subpillars_2d"):
        assert train_labels[c] == set(HUMSET_LABELS[c])  # train covers every label name
    for split, ds in dd.items():
        assert all(text.strip() for text in ds["excerpt"])
        assert ds["n_tokens"] == [len(t.split()) for t in ds["excerpt"]]
        for c in HUMSET_LABEL_COLUMNS:
            lists = ds[c]
            assert {x for ls in lists for x in ls} <= train_labels[c] <= set(HUMSET_LABELS[c]), (split, c)
            assert all(len(ls) == len(set(ls)) for ls in lists)
        assert any(len(ls) >= 2 for ls in ds["sectors"]) and any(not ls for ls in ds["sectors"])
        for sub, pil in (("subpillars_1d", "pillars_1d"), ("subpillars_2d", "pillars_2d")):
            for subs, pils in zip(ds[sub], ds[pil], strict=True):
                assert set(pils) == {s.split("->")[0] for s in subs}


def test_deterministic_and_config_resolution(tmp_path):
    a = write_hub_fixture(tmp_path / "a", "nyu-mll/glue", "mrpc", rows_per_split=6, seed=3)
    b = write_hub_fixture(tmp_path / "b", "nyu-mll/glue", "mrpc", rows_per_split=6, seed=3)
    assert a == tmp_path / "a" / "nyu-mll" / "glue" / "mrpc"
    for split in ("train", "validation", "test"):
        name = f"{split}-00000-of-00001.parquet"
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert write_hub_fixture(tmp_path, "nlp-thedeep/humset", None).name == "1.0.0"
    with pytest.raises(ValueError):
        write_hub_fixture(tmp_path, "aps/super_glue", None)
    with pytest.raises(KeyError):
        write_hub_fixture(tmp_path, "nyu-mll/glue", "wnli")
