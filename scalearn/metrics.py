"""Task metrics as plain numpy/scipy functions, matching what ScaLearn's evaluation computes (method spec §4.2).

Every score is a fraction (accuracy in [0, 1], correlations in [-1, 1]); reports multiply by 100.
Inputs may be lists, numpy arrays or torch tensors. Classification metrics take predicted class ids,
not logits: take the argmax (or threshold, for multi-label) first.

Where sklearn would divide by zero, we return 0.0 as its defaults do (zero_division="warn" scores 0),
so numbers agree with the official code, which used sklearn and HF's super_glue / ReCoRD scripts.
"""

from __future__ import annotations

import re
import string
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence

import numpy as np

# -- input handling ---------------------------------------------------------------------------------


def _to_numpy(values) -> np.ndarray:
    """Any list, array or torch tensor (any device, bf16 included) as a numpy array."""
    if hasattr(values, "detach"):
        values = values.detach().cpu()
        if values.is_floating_point():  # numpy has no bfloat16
            values = values.double()
    return np.asarray(values)


def _as_vector(values, what: str) -> np.ndarray:
    array = _to_numpy(values)
    if array.ndim == 2 and array.shape[1] == 1:  # a regression head's [N, 1] output
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(
            f"{what} must be a 1-D vector, got shape {array.shape}; for logits take the argmax over the last axis first"
        )
    return array


def _paired_vectors(predictions, labels) -> tuple[np.ndarray, np.ndarray]:
    predictions, labels = _as_vector(predictions, "predictions"), _as_vector(labels, "labels")
    if predictions.shape != labels.shape:
        raise ValueError(f"{len(predictions)} predictions for {len(labels)} labels")
    if len(labels) == 0:
        raise ValueError("no predictions to score")
    return predictions, labels


def _f1_from_counts(true_positives, false_positives, false_negatives):
    """F1 = 2TP / (2TP + FP + FN), elementwise; 0.0 where the denominator is 0 (sklearn's zero_division default)."""
    denominator = 2 * true_positives + false_positives + false_negatives
    return np.where(denominator > 0, 2 * true_positives / np.maximum(denominator, 1), 0.0)


# -- classification ---------------------------------------------------------------------------------


def accuracy(predictions, labels) -> float:
    """Fraction of predictions equal to their label."""
    predictions, labels = _paired_vectors(predictions, labels)
    return float(np.mean(predictions == labels))


def f1_binary(predictions, labels, positive=1) -> float:
    """F1 of the `positive` class (sklearn's average='binary'); 0.0 with no true and no predicted positives."""
    predictions, labels = _paired_vectors(predictions, labels)
    classes = np.union1d(predictions, labels)
    if len(classes) > 2:
        raise ValueError(f"binary F1 needs at most two classes, got {classes.tolist()}; use macro_f1")
    predicted, actual = predictions == positive, labels == positive
    true_positives = np.sum(predicted & actual)
    return float(_f1_from_counts(true_positives, np.sum(predicted & ~actual), np.sum(~predicted & actual)))


f1a = f1_binary
"""MultiRC's F1a: binary F1 over all answer options pooled (SuperGLUE; HF super_glue's f1_a)."""


def macro_f1(predictions, labels, num_labels: int | None = None) -> float:
    """Unweighted mean of per-class F1 over the classes in labels ∪ predictions (sklearn's average='macro').

    `num_labels` only checks that every id lies in [0, num_labels); it does not add absent classes,
    so a class that appears in neither predictions nor labels does not pull the mean down.
    """
    predictions, labels = _paired_vectors(predictions, labels)
    classes = np.union1d(predictions, labels)
    if num_labels is not None and (classes.min() < 0 or classes.max() >= num_labels):
        raise ValueError(f"class ids {classes.tolist()} fall outside [0, {num_labels})")
    predicted = predictions[:, None] == classes[None, :]  # [N, K] one-hot
    actual = labels[:, None] == classes[None, :]
    per_class = _f1_from_counts(
        np.sum(predicted & actual, axis=0), np.sum(predicted & ~actual, axis=0), np.sum(~predicted & actual, axis=0)
    )
    return float(np.mean(per_class))


def matthews_corrcoef(predictions, labels) -> float:
    """Matthews correlation in its multi-class form (Gorodkin's R_K, as sklearn); 0.0 when undefined."""
    predictions, labels = _paired_vectors(predictions, labels)
    _, class_ids = np.unique(np.concatenate([labels, predictions]), return_inverse=True)
    num_classes = int(class_ids.max()) + 1
    n = len(labels)
    confusion = np.zeros((num_classes, num_classes), dtype=np.float64)  # rows: true, columns: predicted
    np.add.at(confusion, (class_ids[:n], class_ids[n:]), 1.0)
    true_per_class, predicted_per_class = confusion.sum(axis=1), confusion.sum(axis=0)
    correct = np.trace(confusion)
    covariance = correct * n - true_per_class @ predicted_per_class
    variance_predicted = n * n - predicted_per_class @ predicted_per_class
    variance_true = n * n - true_per_class @ true_per_class
    if variance_predicted * variance_true == 0:  # one side is constant
        return 0.0
    return float(covariance / np.sqrt(variance_predicted * variance_true))


def multilabel_macro_f1(predictions, labels) -> float:
    """Mean over labels (columns) of per-label F1 on 0/1 matrices [N, C]; sklearn average='macro', zero_division=0.

    Every column counts, including one with no true and no predicted positives: it scores F1 = 0.0,
    as sklearn's defaults give for HumSet's macro-F1 in the official code (sigmoid, threshold 0.5).
    """
    predictions, labels = _to_numpy(predictions), _to_numpy(labels)
    if predictions.ndim != 2 or predictions.shape != labels.shape:
        raise ValueError(f"need two 0/1 matrices [N, C] of one shape, got {predictions.shape} and {labels.shape}")
    if predictions.shape[0] == 0:
        raise ValueError("no predictions to score")
    for what, matrix in (("predictions", predictions), ("labels", labels)):
        if not np.isin(matrix, (0, 1)).all():
            raise ValueError(f"{what} must hold only 0 and 1; threshold the probabilities (at 0.5) first")
    predicted, actual = predictions.astype(bool), labels.astype(bool)
    per_label = _f1_from_counts(
        np.sum(predicted & actual, axis=0), np.sum(predicted & ~actual, axis=0), np.sum(~predicted & actual, axis=0)
    )
    return float(np.mean(per_label))


def multirc_em(predictions, labels, question_ids: Sequence[Hashable]) -> float:
    """Fraction of MultiRC questions whose every answer option is predicted right (SuperGLUE's EM).

    `question_ids` names each option's question and must be unique across paragraphs: use
    (paragraph, question) pairs, as HF's super_glue does; an [N, 2] array is read as such pairs.
    """
    predictions, labels = _paired_vectors(predictions, labels)
    ids = _to_numpy(question_ids)
    if len(ids) != len(labels):
        raise ValueError(f"{len(ids)} question ids for {len(labels)} answer options")
    keys = [tuple(row) for row in ids.tolist()] if ids.ndim == 2 else ids.tolist()
    all_right: dict[Hashable, bool] = defaultdict(lambda: True)
    for key, right in zip(keys, (predictions == labels).tolist(), strict=True):
        all_right[key] &= right
    return float(np.mean(list(all_right.values())))


# -- regression -------------------------------------------------------------------------------------


def _correlation(name: str, predictions, labels) -> float:
    """``scipy.stats.<name>``'s statistic (scipy imported here, not with the module: 0.5 s of every worker's
    start, for the tasks that need it)."""
    from scipy import stats

    predictions, labels = _paired_vectors(predictions, labels)
    predictions, labels = predictions.astype(np.float64), labels.astype(np.float64)
    if np.ptp(predictions) == 0 or np.ptp(labels) == 0:  # undefined; scipy would warn and give nan
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. scipy's near-constant-input warning
        return float(getattr(stats, name)(predictions, labels).statistic)


def pearson(predictions, labels) -> float:
    """Pearson correlation (scipy.stats.pearsonr); 0.0 when either side is constant."""
    return _correlation("pearsonr", predictions, labels)


def spearman(predictions, labels) -> float:
    """Spearman rank correlation (scipy.stats.spearmanr); 0.0 when either side is constant."""
    return _correlation("spearmanr", predictions, labels)


# -- ReCoRD / SQuAD text answers --------------------------------------------------------------------

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(s: str) -> str:
    """Lower-case, drop punctuation and the articles a/an/the, collapse whitespace (ReCoRD/SQuAD v1.1)."""
    s = "".join(ch for ch in s.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", s).split())


def token_f1(prediction: str, gold: str) -> float:
    """F1 of the normalised token bags (with multiplicity); 0.0 when they share no token, both-empty included."""
    prediction_tokens, gold_tokens = normalize_answer(prediction).split(), normalize_answer(gold).split()
    shared = sum((Counter(prediction_tokens) & Counter(gold_tokens)).values())
    if shared == 0:
        return 0.0
    precision, recall = shared / len(prediction_tokens), shared / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, gold: str) -> float:
    """1.0 if the two answers are equal after normalize_answer, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(gold))


def record_metrics(predictions: Mapping[Hashable, str], answers: Mapping[Hashable, Sequence[str]]) -> dict[str, float]:
    """ReCoRD token F1 and EM: best over each query's gold answers, averaged over the queries in `answers`.

    A query without a prediction scores 0 (as the official ReCoRD script); predictions for unknown
    queries are ignored.
    """
    if not answers:
        raise ValueError("no queries to score")
    f1_total = em_total = 0.0
    for query_id, golds in answers.items():
        if not golds:
            raise ValueError(f"query {query_id!r} has no gold answer")
        if query_id not in predictions:
            continue
        prediction = predictions[query_id]
        f1_total += max(token_f1(prediction, gold) for gold in golds)
        em_total += max(exact_match(prediction, gold) for gold in golds)
    return {"f1": f1_total / len(answers), "em": em_total / len(answers)}


# -- registry ---------------------------------------------------------------------------------------

METRICS: dict[str, Callable[..., float]] = {
    "accuracy": accuracy,
    "f1": f1_binary,
    "macro_f1": macro_f1,
    "mcc": matthews_corrcoef,
    "pearson": pearson,
    "spearman": spearman,
    "multilabel_macro_f1": multilabel_macro_f1,
}
"""Metrics a task entry may name, each called as metric(predictions, labels)."""


def constant_loss(kind: str, labels) -> float | None:
    """The lowest mean loss any constant prediction reaches on these labels, the head's loss for ``kind``
    (scalearn/heads.py): a model whose dev loss is not below it learned nothing a constant could not.

    - regression (MSE): the labels' variance (the constant is their mean);
    - classification and multiple choice (cross-entropy over classes or choice positions): the entropy of the
      labels' distribution (the constant is that distribution);
    - multi-label (binary cross-entropy averaged over labels): the mean binary entropy of each label's rate.

    An oracle on purpose: the constant is fitted to the labels it is scored on, so no constant does better.
    None for an empty split or an unknown kind.
    """
    values = _to_numpy(labels)
    if values.size == 0:
        return None
    if kind == "regression":
        return float(np.var(values.astype(float)))
    if kind in ("classification", "multiple_choice"):
        counts = np.bincount(values.astype(int).ravel())
        p = counts[counts > 0] / counts.sum()
        return float(-(p * np.log(p)).sum())
    if kind == "multi_label":
        rate = np.clip(values.reshape(len(values), -1).astype(float).mean(0), 1e-12, 1 - 1e-12)
        return float(np.mean(-(rate * np.log(rate) + (1 - rate) * np.log(1 - rate))))
    return None


def compute(names: str | Iterable[str], predictions, labels) -> dict[str, float]:
    """Several named metrics of one set of predictions, as {name: score}."""
    names = [names] if isinstance(names, str) else list(names)
    unknown = [name for name in names if name not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; known: {sorted(METRICS)}")
    predictions, labels = _to_numpy(predictions), _to_numpy(labels)  # convert a tensor once, not per metric
    return {name: METRICS[name](predictions, labels) for name in names}
