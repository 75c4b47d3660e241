"""p-values adjusted for testing the rows of one table at once.

- ``holm`` (default): Holm's step-down adjustment; a row whose adjusted p is <= alpha is a
  discovery, and the chance of any false discovery in the table (family-wise error) stays
  <= alpha whatever the dependence between rows;
- ``bh``: Benjamini-Hochberg; the expected share of false discoveries among the discoveries
  (false discovery rate) stays <= alpha for independent or positively dependent rows (rows
  sharing one baseline are positively dependent);
- ``none``: the p-values as they are.

NaN p-values (rows without a test) pass through as NaN and do not count among the m tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

Correction = Literal["holm", "bh", "none"]
CORRECTIONS: tuple[Correction, ...] = ("holm", "bh", "none")


def adjust(p: Sequence[float], method: Correction = "holm") -> np.ndarray:
    """Adjusted p-values, in the order given (each clipped to at most 1)."""
    if method not in CORRECTIONS:
        raise ValueError(f"unknown correction {method!r}: use one of {', '.join(CORRECTIONS)}")
    values = np.asarray(p, dtype=float)
    out = values.copy()
    tested = ~np.isnan(values)
    if method == "none" or not tested.any():
        return out
    out[tested] = _holm(values[tested]) if method == "holm" else _bh(values[tested])
    return out


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm: the i-th smallest p times (m - i + 1), made non-decreasing in that order."""
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted


def _bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg: the i-th smallest p times m / i, made non-decreasing in that order
    (a running minimum from the largest)."""
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    return adjusted
