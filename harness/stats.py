"""Statistics over seeds for the report: summaries, Welch's t-test, a paired bootstrap. Pure functions.

The unit of sampling is the seed (docs/method.md §4.2: a table cell is the mean over seeds, sd with ddof=1), so
these tests say how likely a difference is under seed-to-seed variation; with 3 to 10 seeds they are weak,
and the report says they are not corrected for multiple comparisons.
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

BOOTSTRAP_RESAMPLES = 10_000
MIN_BOOTSTRAP_PAIRS = 5
"""Below this the bootstrap gives no p. With few pairs the resampled means underestimate the spread (by
(n-1)/n) and take few values: with 2 pairs of one sign p is 1/(resamples + 1) whatever the effect, and with 3
pairs differences of (-1, -4, -1) already give p ≈ 0.04 where a paired t-test gives 0.18. Welch's test covers
the 3-seed tasks."""


@dataclass(frozen=True)
class Summary:
    mean: float
    sd: float | None
    """Sample standard deviation (ddof=1); None for a single seed."""
    n: int


def summarize(values: Sequence[float]) -> Summary:
    """Mean and sample sd (ddof=1, as the paper) of one cell's seeds."""
    if not values:
        raise ValueError("summarize: no values")
    sd = statistics.stdev(values) if len(values) > 1 else None
    return Summary(statistics.fmean(values), sd, len(values))


def welch_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided p-value of Welch's t-test (unequal variances) of a against b.

    None when it is undefined: fewer than two values on a side, or no variance on either side.
    """
    if len(a) < 2 or len(b) < 2:
        return None

    from scipy.stats import ttest_ind

    with warnings.catch_warnings():  # near-identical seeds (a frozen, converged method): scipy warns, p stands
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(ttest_ind(a, b, equal_var=False).pvalue)
    return None if math.isnan(p) else p


def paired_bootstrap_p(
    a: Sequence[float], b: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> float | None:
    """Two-sided p-value of a paired bootstrap test of mean(a - b) = 0; a[i] and b[i] share a seed.

    The differences are centred on zero (the null), resampled with replacement, and p is the share of
    resampled means at least as far from zero as the observed one, with the +1 correction so that p > 0.
    Deterministic for a fixed ``seed``. None for fewer than ``MIN_BOOTSTRAP_PAIRS`` pairs.
    """
    if len(a) != len(b):
        raise ValueError(f"paired_bootstrap_p: {len(a)} vs {len(b)} values; pairs need equal lengths")
    if len(a) < MIN_BOOTSTRAP_PAIRS:
        return None
    import numpy as np

    diffs = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    observed = abs(diffs.mean())
    centred = diffs - diffs.mean()
    rng = np.random.default_rng(seed)
    means = centred[rng.integers(0, len(diffs), size=(resamples, len(diffs)))].mean(axis=1)
    # a tolerance so that exact ties (identical methods: every mean is 0) count as "as extreme"
    extreme = int(np.count_nonzero(np.abs(means) >= observed - 1e-12))
    return (extreme + 1) / (resamples + 1)


SCORE_SCALE = 100
"""Scores are shown ×100, as in the paper's tables (docs/method.md §4.2), in the report and in MLflow alike;
losses are shown as they are."""


def is_loss(metric: str) -> bool:
    """A loss, not a score: "dev_loss", "rte/test_loss", and a further test split's "loss_mm" (MNLI mismatched)."""
    return "loss" in metric.rsplit("/", 1)[-1].split("_")


def scaled(metric: str, value: float) -> float:
    """``value`` of ``metric`` ("accuracy", "dev_loss", "rte/test_mcc", "loss_mm") on the shown scale."""
    return float(value) if is_loss(metric) else SCORE_SCALE * float(value)


__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "MIN_BOOTSTRAP_PAIRS",
    "SCORE_SCALE",
    "Summary",
    "paired_bootstrap_p",
    "is_loss",
    "scaled",
    "summarize",
    "welch_p",
]
