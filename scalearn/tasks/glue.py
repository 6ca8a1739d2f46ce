"""GLUE: 8 tasks (no WNLI), hub id nyu-mll/glue (docs/method.md §4.1, §4.2)."""

from __future__ import annotations

from functools import partial

from scalearn.tasks.base import TaskSpec, simple_examples

GLUE = "nyu-mll/glue"
_CLS = dict(
    benchmark="glue",
    kind="classification",
    dataset=GLUE,
    origin="GLUE, Wang et al., ICLR 2019",
    licence="per task, as on the nyu-mll/glue dataset card",
)


def _task(name: str, text_fields: tuple[str, ...], metric: str, metrics: tuple[str, ...], **kw) -> TaskSpec:
    spec = TaskSpec(name=name, config=name, text_fields=text_fields, metric=metric, metrics=metrics, **{**_CLS, **kw})
    return _with_simple_preprocess(spec)


def _with_simple_preprocess(spec: TaskSpec) -> TaskSpec:
    from dataclasses import replace

    return replace(spec, preprocess=partial(simple_examples, spec))


GLUE_TASKS = [
    _task(
        "mnli",
        ("premise", "hypothesis"),
        "accuracy",
        ("accuracy",),
        num_labels=3,
        label_names=("entailment", "neutral", "contradiction"),
        splits={"train": "train", "test": "validation_matched", "test_mm": "validation_mismatched"},
    ),
    _task(
        "qqp", ("question1", "question2"), "accuracy", ("accuracy", "f1"), label_names=("not_duplicate", "duplicate")
    ),
    _task("qnli", ("question", "sentence"), "accuracy", ("accuracy",), label_names=("entailment", "not_entailment")),
    _task("sst2", ("sentence",), "accuracy", ("accuracy",), label_names=("negative", "positive")),
    _task(
        "stsb",
        ("sentence1", "sentence2"),
        "pearson",
        ("pearson", "spearman"),
        kind="regression",
        num_labels=1,
        stratify=False,
    ),
    _task(
        "mrpc", ("sentence1", "sentence2"), "accuracy", ("accuracy", "f1"), label_names=("not_equivalent", "equivalent")
    ),
    _task("rte", ("sentence1", "sentence2"), "accuracy", ("accuracy",), label_names=("entailment", "not_entailment")),
    _task("cola", ("sentence",), "mcc", ("mcc", "accuracy"), label_names=("unacceptable", "acceptable")),
]
