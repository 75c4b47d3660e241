"""Statistics of the report outside the ablation table: mean ± std over repeats, Welch
intervals between two studies, Pareto fronts. (Comparisons within a study pair seeds:
:mod:`ablate.reporting.comparisons` and :mod:`ablate.inference`.)

Every interval here is a Welch (unequal-variance) t interval for a contrast of group means,
``sum_i c_i * mean_i``: standard error ``sqrt(sum_i c_i^2 s_i^2 / n_i)`` (``s_i`` with ddof=1)
and Welch-Satterthwaite degrees of freedom. For the two-group contrast (1, -1) it is exactly
``scipy.stats.ttest_ind(a, b, equal_var=False).confidence_interval()``. A group with fewer than
2 values has no variance, so no interval (NaN bounds).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ablate.inference.lazy import special
from ablate.metrics.scores import binary_scores

LEVEL = 0.95


@dataclass(frozen=True)
class Estimate:
    """A contrast of group means with its interval (NaN bounds: no interval)."""

    value: float
    low: float = math.nan
    high: float = math.nan

    @property
    def has_interval(self) -> bool:
        return not (math.isnan(self.low) or math.isnan(self.high))

    @property
    def includes_zero(self) -> bool:
        """True when the interval covers 0 (the difference is within seed noise)."""
        return self.has_interval and self.low <= 0.0 <= self.high


def contrast(
    groups: Sequence[Sequence[float]], weights: Sequence[float], level: float = LEVEL
) -> Estimate:
    """``sum(w_i * mean(group_i))`` with its Welch-Satterthwaite t interval."""
    arrays = [np.asarray(g, dtype=float) for g in groups]
    arrays = [a[~np.isnan(a)] for a in arrays]
    if any(a.size == 0 for a in arrays):
        return Estimate(math.nan)
    value = _denoise(float(sum(w * a.mean() for w, a in zip(weights, arrays, strict=True))),
                     max(abs(float(a.mean())) for a in arrays))
    if any(a.size < 2 for a in arrays):
        return Estimate(value)
    terms = [w * w * a.var(ddof=1) / a.size for w, a in zip(weights, arrays, strict=True)]
    variance = sum(terms)
    if variance == 0.0:  # identical values in every group: no spread, a zero-width interval
        return Estimate(value, value, value)
    dof = variance**2 / sum(t * t / (a.size - 1) for t, a in zip(terms, arrays, strict=True))
    half = float(special.stdtrit(dof, 0.5 + level / 2)) * math.sqrt(variance)
    return Estimate(value, value - half, value + half)


def welch_difference(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> Estimate:
    """``mean(a) - mean(b)`` with the Welch t interval."""
    return contrast([a, b], [1.0, -1.0], level)


def summary(values: pd.Series) -> tuple[float, float, int]:
    """Mean, standard deviation (ddof=1; NaN for one value) and count of the non-NaN values."""
    clean = values.dropna().astype(float)
    n = int(clean.size)
    mean = float(clean.mean()) if n else math.nan
    std = _denoise(float(clean.std(ddof=1)), abs(mean)) if n > 1 else math.nan
    return mean, std, n


def is_noise(value: np.ndarray | float, scale: np.ndarray | float) -> np.ndarray | bool:
    """Floating-point noise: |value| below 1e-12 of |scale|, the numbers it came from
    (elementwise on arrays)."""
    return np.abs(value) <= 1e-12 * np.maximum(np.abs(scale), 1e-300)


def _denoise(value: float, scale: float) -> float:
    """0 for floating-point noise, else ``value``."""
    return 0.0 if is_noise(value, scale) else value


def pareto_front(points: np.ndarray, maximize: Sequence[bool]) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``points`` (n x k). A point is dominated when
    another is at least as good in every column and strictly better in one; rows with a NaN
    are never on the front; duplicates of a front point are all on it."""
    values = np.asarray(points, dtype=float)
    signs = np.where(np.asarray(maximize, dtype=bool), -1.0, 1.0)
    costs = values * signs  # lower is better in every column
    front = np.zeros(len(costs), dtype=bool)
    valid = np.flatnonzero(~np.isnan(costs).any(axis=1))
    # In lexicographic order a point can only be dominated by one before it, and whatever
    # dominates it is itself dominated by, or is, a front point found before it: comparing
    # with the front so far is enough (O(n * front) instead of O(n^2)).
    order = valid[np.lexsort(costs[valid].T[::-1])]
    kept: list[np.ndarray] = []
    for i in order:
        if kept:
            others = np.asarray(kept)
            if (np.all(others <= costs[i], axis=1) & np.any(others < costs[i], axis=1)).any():
                continue
        kept.append(costs[i])
        front[i] = True
    return front


def count_scores(tp: float, fp: float, fn: float, tn: float) -> dict[str, float]:
    """Accuracy, IoU and F1 of one set of binary confusion counts (as the tracked metrics)."""
    scores = binary_scores(tp, fp, fn, tn)
    return {"accuracy": scores["accuracy"], "IoU": scores["iou"], "F1": scores["f1"]}
