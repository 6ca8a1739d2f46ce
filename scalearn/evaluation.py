"""A task's metrics from model outputs on one of its splits (docs/method.md §4.2). Fractions; reports ×100."""

from __future__ import annotations

import numpy as np
import torch

from scalearn import metrics
from scalearn.tasks.base import TaskSpec


def predictions(task: TaskSpec, logits: torch.Tensor | np.ndarray) -> np.ndarray:
    """Class ids, regression scores, or a 0/1 matrix (multi-label, sigmoid at threshold 0.5)."""
    logits = torch.as_tensor(logits).float()
    if task.kind == "regression":
        return logits.reshape(-1).numpy()
    if task.kind == "multi_label":
        return (torch.sigmoid(logits) >= 0.5).long().numpy()
    return logits.argmax(-1).numpy()


def record_predictions(logits, groups, candidates) -> dict[int, str]:
    """Per ReCoRD query, the candidate entity with the highest P(label = 1)."""
    scores = torch.log_softmax(torch.as_tensor(logits).float(), -1)[:, 1].numpy()
    best: dict[int, tuple[float, str]] = {}
    for score, group, candidate in zip(scores, groups, candidates, strict=True):
        if group not in best or score > best[group][0]:
            best[group] = (float(score), candidate)
    return {group: candidate for group, (_, candidate) in best.items()}


def _record_scores(task: TaskSpec, split, logits, labels) -> dict[str, float]:
    predicted = record_predictions(logits, split["group"], split["candidate"])
    answers = {}
    for group, gold in zip(split["group"], split["answers"], strict=True):
        answers.setdefault(group, gold)
    return metrics.record_metrics(predicted, answers)


def _multirc_scores(task: TaskSpec, split, logits, labels) -> dict[str, float]:
    predicted = predictions(task, logits)
    return {
        "f1a": metrics.f1_binary(predicted, labels),
        "em": metrics.multirc_em(predicted, labels, np.asarray(split["group"])),
    }


def _per_example_scores(task: TaskSpec, split, logits, labels) -> dict[str, float]:
    return metrics.compute(list(task.metrics), predictions(task, logits), labels)


SCORING = {"per_example": _per_example_scores, "record_query": _record_scores, "multirc_question": _multirc_scores}
"""A task's ``scoring`` → how its predictions become its metrics."""


def evaluate(task: TaskSpec, split, logits) -> dict[str, float]:
    """Every metric of ``task`` for ``logits`` on ``split`` (examples or tokenised rows, same order)."""
    return SCORING[task.scoring](task, split, logits, np.asarray(split["label"]))
