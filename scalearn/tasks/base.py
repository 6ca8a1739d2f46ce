"""What a task is: a short declarative entry (lm-eval style) plus, where needed, a preprocessing function.

Every task turns its raw rows into *examples* with the same columns, so tokenisation, batching and
evaluation are shared by all tasks:

    text       first segment
    text_pair  second segment ("" when there is none)
    choices    the second segments of a multiple-choice example (COPA), else []
    label      int (classification, multiple choice), float (regression), list[int] 0/1 (multi-label)
    group      examples that are scored together: a ReCoRD query, a MultiRC question (else -1)
    candidate  the entity a ReCoRD example fills in (else "")
    answers    the gold answers of its ReCoRD query (else [])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # a name for the annotation only: scalearn.heads imports torch, task specs do not
    from scalearn.heads import HeadKind

EXAMPLE_COLUMNS = ("text", "text_pair", "choices", "label", "group", "candidate", "answers")

# Split rules (docs/method.md §4.1):
#   "train_90_10"  90/10 split of the official train set (seed 42, stratified by label unless stated);
#                  the official validation set is the reported test set.
#   "record"       full train for training; the official validation set is dev AND test (the paper's
#                  exception: model selection on the test set; reports flag it).
#   "official"     the dataset's own train / validation / test splits (HumSet, offline, synthetic).
PROTOCOLS = ("train_90_10", "record", "official")


@dataclass(frozen=True)
class TaskSpec:
    name: str
    benchmark: str
    kind: HeadKind
    metric: str
    """The metric the paper reports for this task (docs/method.md §4.2)."""
    metrics: tuple[str, ...]
    """Every metric computed; the first is ``metric``."""
    num_labels: int = 2
    label_names: tuple[str, ...] | None = None
    dataset: str | None = None
    """Hugging Face hub id of the raw data (None for data shipped in packages or generated)."""
    config: str | None = None
    text_fields: tuple[str, ...] = ()
    """Raw columns for (text, text_pair) when no ``preprocess`` is given."""
    label_field: str = "label"
    splits: dict[str, str] = field(default_factory=lambda: {"train": "train", "test": "validation"})
    """Raw split names: train, test (and dev for the "official" protocol), plus extra reported test splits."""
    protocol: str = "train_90_10"
    stratify: bool = True
    max_length: int = 128
    preprocess: Callable | None = None
    """raw rows (a dict of columns) → example rows (a dict of EXAMPLE_COLUMNS); batched."""
    loader: Callable | None = None
    """For data that does not come from the hub: () → DatasetDict of raw splits."""
    select_by: Literal["loss", "metric"] = "loss"
    """What the checkpoint is selected on when a run says "auto": the dev loss, or the reported metric
    (HumSet, as its scripts: docs/method.md §4.2)."""
    scoring: Literal["per_example", "record_query", "multirc_question"] = "per_example"
    """How predictions become ``metrics`` (``scalearn.evaluation``): each example on its own, or grouped:
    the best-scored candidate per ReCoRD query, MultiRC's answers per question (EM)."""
    version: int = 1
    """Bumped when anything that changes the examples changes; part of every cache key."""
    origin: str = ""
    licence: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"task {self.name}: protocol {self.protocol!r} unknown; choose one of {PROTOCOLS}")
        if self.metrics[0] != self.metric:
            raise ValueError(f"task {self.name}: the first of `metrics` must be the reported metric {self.metric!r}")
        if self.loader is None and self.dataset is None:
            raise ValueError(f"task {self.name}: needs a hub `dataset` or a `loader`")

    @property
    def selects_on_test(self) -> bool:
        """True when model selection uses the reported test set (ReCoRD, as in the paper)."""
        return self.protocol == "record"

    @property
    def extra_test_splits(self) -> dict[str, str]:
        """Further reported test sets, e.g. MNLI's mismatched validation set as "test_mm"."""
        return {k: v for k, v in self.splits.items() if k.startswith("test_")}


def simple_examples(task: TaskSpec, batch: dict) -> dict:
    """Examples from plain (text[, text_pair], label) columns."""
    n = len(batch[task.text_fields[0]])
    pair = batch[task.text_fields[1]] if len(task.text_fields) > 1 else [""] * n
    return {
        "text": list(batch[task.text_fields[0]]),
        "text_pair": list(pair),
        "choices": [[] for _ in range(n)],
        "label": list(batch[task.label_field]),
        "group": [-1] * n,
        "candidate": [""] * n,
        "answers": [[] for _ in range(n)],
    }


def examples_from(n: int, **columns) -> dict:
    """Fill the example columns a preprocess function did not set with their defaults."""
    defaults = {
        "text_pair": [""] * n,
        "choices": [[] for _ in range(n)],
        "group": [-1] * n,
        "candidate": [""] * n,
        "answers": [[] for _ in range(n)],
    }
    return {**defaults, **columns}
