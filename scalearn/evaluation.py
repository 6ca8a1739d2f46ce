"""A task's metrics from model outputs on one of its splits (reference §4.2). Fractions; reports ×100."""

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


def evaluate(task: TaskSpec, split, logits) -> dict[str, float]:
    """Every metric of ``task`` for ``logits`` on ``split`` (examples or tokenised rows, same order)."""
    labels = np.asarray(split["label"])
    if task.name == "record":
        predicted = record_predictions(logits, split["group"], split["candidate"])
        answers = {}
        for group, gold in zip(split["group"], split["answers"], strict=True):
            answers.setdefault(group, gold)
        return metrics.record_metrics(predicted, answers)
    predicted = predictions(task, logits)
    if task.name == "multirc":
        return {
            "f1a": metrics.f1_binary(predicted, labels),
            "em": metrics.multirc_em(predicted, labels, np.asarray(split["group"])),
        }
    return metrics.compute(list(task.metrics), predicted, labels)
