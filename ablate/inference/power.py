"""Power of the two-sided t test, the minimum detectable effect and the seeds a decision needs.

All three use the exact power of the t test from the noncentral t distribution
(``scipy.stats.nct``), not a normal approximation, which matters at a handful of seeds:
power = P(|T'| >= t_{df, 1-alpha/2}) with T' noncentral t, noncentrality
``effect * sqrt(n) / sd``.

- ``samples=1`` (paired): n per-seed differences with standard deviation ``sd``, df = n - 1;
- ``samples=2`` (unpaired): two groups of n runs each, ``sd = sqrt(sd_a^2 + sd_b^2)``,
  df = 2(n - 1) (Welch's test with equal group sizes and spreads).
"""

from __future__ import annotations

import math
from typing import Literal

from ablate.inference.lazy import optimize, stats

POWER = 0.8
CAP = 1000  # seeds needed beyond this are reported as "> 1000"

Samples = Literal[1, 2]


def t_power(effect: float, sd: float, n: int, alpha: float = 0.05, samples: Samples = 1) -> float:
    """Probability that the two-sided t test at level ``alpha`` with ``n`` seeds declares a
    true difference of ``effect`` (NaN below 2 seeds or without an SD; with ``sd`` 0, any
    non-zero effect is certain to be found)."""
    df = _df(n, samples)
    if df < 1 or math.isnan(sd) or math.isnan(effect):
        return math.nan
    if sd == 0.0:
        return 1.0 if effect != 0.0 else alpha
    return _power_nc(abs(effect) * math.sqrt(n) / sd, df, alpha)


def mde(sd: float, n: int, alpha: float = 0.05, target: float = POWER,
        samples: Samples = 1) -> float:
    """Minimum detectable effect: the smallest |difference| that the two-sided t test at level
    ``alpha`` with ``n`` seeds finds with probability ``target`` (NaN below 2 seeds or
    without an SD)."""
    df = _df(n, samples)
    if df < 1 or math.isnan(sd):
        return math.nan
    if sd == 0.0:
        return 0.0
    high = 1.0
    while _power_nc(high, df, alpha) < target:
        high *= 2.0
    nc = optimize.brentq(lambda x: _power_nc(x, df, alpha) - target, 0.0, high, xtol=1e-10)
    return nc * sd / math.sqrt(n)


def seeds_needed(effect: float, sd: float, alpha: float = 0.05, target: float = POWER,
                 samples: Samples = 1, cap: int = CAP) -> int | None:
    """The smallest number of seeds (per configuration) with power >= ``target`` to find a
    true difference of ``effect`` with the two-sided t test at level ``alpha``; None when more
    than ``cap`` would be needed (or the effect is 0)."""
    if math.isnan(effect) or math.isnan(sd):
        raise ValueError("seeds_needed needs a finite effect and SD")
    if effect == 0.0 or t_power(effect, sd, cap, alpha, samples) < target:
        return None
    low, high = 1, 2  # power(low) < target <= power(high); power grows with n
    while t_power(effect, sd, high, alpha, samples) < target:
        low, high = high, min(2 * high, cap)
    while high - low > 1:
        middle = (low + high) // 2
        if t_power(effect, sd, middle, alpha, samples) >= target:
            high = middle
        else:
            low = middle
    return high


def _df(n: int, samples: Samples) -> int:
    return (n - 1) * samples


def _power_nc(nc: float, df: float, alpha: float) -> float:
    crit = stats.t.isf(alpha / 2, df)
    upper = float(stats.nct.sf(crit, df, nc))
    if math.isnan(upper):
        upper = 1.0 - float(stats.nct.cdf(crit, df, nc))
    # scipy's nct.cdf gives NaN far in the tail (e.g. df 2, nc 14); that tail lies below
    # P(T' <= 0) = Phi(-nc), so its bound stands in for it.
    lower = float(stats.nct.cdf(-crit, df, nc))
    if math.isnan(lower):
        lower = float(stats.norm.cdf(-nc))
    return upper + lower
