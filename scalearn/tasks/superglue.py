"""SuperGLUE: 8 tasks, hub id aps/super_glue; RTE is the GLUE RTE task (docs/method.md §4.1, §4.2).

Inputs as the paper's code builds them (docs/method.md §4.1):
- BoolQ (question, passage); CB (premise, hypothesis).
- WiC ("word: sentence1", "word: sentence2").
- WSC: the text with the pronoun (span 2) wrapped in *…*, paired with the span-1 text.
- COPA: multiple choice over ("premise because|so", choice).
- MultiRC: (paragraph, "question answer"), one binary example per answer option; max length 324.
- ReCoRD: one binary example per candidate entity, the query's @placeholder filled with it, paired
  after the passage ("@highlight" lines as "- " bullets); max length 256, truncating the passage. A query's
  prediction is its candidate with the highest P(label = 1).
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

from scalearn.tasks.base import TaskSpec, examples_from, simple_examples

SUPER_GLUE = "aps/super_glue"
_BOOL = ("False", "True")


def _wic(batch: dict) -> dict:
    n = len(batch["word"])
    first = [f"{w}: {s}" for w, s in zip(batch["word"], batch["sentence1"], strict=True)]
    second = [f"{w}: {s}" for w, s in zip(batch["word"], batch["sentence2"], strict=True)]
    return examples_from(n, text=first, text_pair=second, label=list(batch["label"]))


def mark_span(text: str, index: int) -> str:
    """The text with its ``index``-th whitespace word wrapped in asterisks."""
    words = text.split()
    words[index] = f"*{words[index]}*"
    return " ".join(words)


def _wsc(batch: dict) -> dict:
    n = len(batch["text"])
    marked = [mark_span(t, i) for t, i in zip(batch["text"], batch["span2_index"], strict=True)]
    return examples_from(n, text=marked, text_pair=list(batch["span1_text"]), label=list(batch["label"]))


def _copa(batch: dict) -> dict:
    n = len(batch["premise"])
    joiner = {"cause": "because", "effect": "so"}
    text = [f"{p} {joiner[q]}" for p, q in zip(batch["premise"], batch["question"], strict=True)]
    choices = [[a, b] for a, b in zip(batch["choice1"], batch["choice2"], strict=True)]
    return examples_from(n, text=text, choices=choices, label=list(batch["label"]))


def _group_id(idx: dict, outer: str, inner: str) -> int:
    return int(idx[outer]) * 1_000_000 + int(idx[inner])


def _multirc(batch: dict) -> dict:
    n = len(batch["paragraph"])
    pair = [f"{q} {a}" for q, a in zip(batch["question"], batch["answer"], strict=True)]
    groups = [_group_id(i, "paragraph", "question") for i in batch["idx"]]
    return examples_from(n, text=list(batch["paragraph"]), text_pair=pair, label=list(batch["label"]), group=groups)


def _record(batch: dict) -> dict:
    out = {k: [] for k in ("text", "text_pair", "choices", "label", "group", "candidate", "answers")}
    for passage, query, entities, answers, idx in zip(
        batch["passage"], batch["query"], batch["entities"], batch["answers"], batch["idx"], strict=True
    ):
        passage = passage.replace("@highlight\n", "- ")
        gold = set(answers)
        for entity in dict.fromkeys(entities):  # unique, in order
            out["text"].append(passage)
            out["text_pair"].append(query.replace("@placeholder", entity))
            out["choices"].append([])
            out["label"].append(int(entity in gold))
            out["group"].append(_group_id(idx, "passage", "query"))
            out["candidate"].append(entity)
            out["answers"].append(list(answers))
    return out


_SG = dict(
    benchmark="superglue",
    kind="classification",
    dataset=SUPER_GLUE,
    origin="SuperGLUE, Wang et al., NeurIPS 2019",
    licence="per task, as on the super_glue dataset card",
)


def _simple(spec: TaskSpec) -> TaskSpec:
    return replace(spec, preprocess=partial(simple_examples, spec))


SUPERGLUE_TASKS = [
    TaskSpec(
        name="record",
        config="record",
        metric="f1",
        metrics=("f1", "em"),
        protocol="record",
        max_length=256,
        label_names=("no", "yes"),
        preprocess=_record,
        scoring="record_query",
        **_SG,
    ),
    TaskSpec(
        name="multirc",
        config="multirc",
        metric="f1a",
        metrics=("f1a", "em"),
        max_length=324,
        label_names=_BOOL,
        preprocess=_multirc,
        scoring="multirc_question",
        **_SG,
    ),
    _simple(
        TaskSpec(
            name="boolq",
            config="boolq",
            metric="accuracy",
            metrics=("accuracy",),
            label_names=_BOOL,
            text_fields=("question", "passage"),
            **_SG,
        )
    ),
    TaskSpec(
        name="wic", config="wic", metric="accuracy", metrics=("accuracy",), label_names=_BOOL, preprocess=_wic, **_SG
    ),
    TaskSpec(
        name="wsc",
        config="wsc.fixed",
        metric="accuracy",
        metrics=("accuracy",),
        label_names=_BOOL,
        preprocess=_wsc,
        **_SG,
    ),
    TaskSpec(
        name="copa",
        config="copa",
        metric="accuracy",
        metrics=("accuracy",),
        label_names=("choice1", "choice2"),
        preprocess=_copa,
        **{**_SG, "kind": "multiple_choice"},
    ),
    _simple(
        TaskSpec(
            name="cb",
            config="cb",
            metric="accuracy",
            metrics=("accuracy", "macro_f1"),
            num_labels=3,
            label_names=("entailment", "contradiction", "neutral"),
            text_fields=("premise", "hypothesis"),
            stratify=False,
            **_SG,
        )
    ),
]
"""RTE belongs to SuperGLUE as well; it is the GLUE task (registered once, in glue.py)."""
