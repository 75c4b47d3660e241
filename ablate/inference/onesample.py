"""One sample of per-seed differences: its t interval, bootstrap interval and sign-flip p-value.

A paired comparison (configuration minus reference, seed by seed) and a factorial effect
(the effect contrast computed on each seed's cells) both reduce to one number per seed; this
module summarises such a sample. Every figure is reproducible: the bootstrap and the Monte
Carlo sign flips draw from a generator seeded with ``SEED``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ablate.inference.estimate import Estimate
from ablate.inference.lazy import stats

LEVEL = 0.95
RESAMPLES = 10_000  # bootstrap resamples and Monte Carlo sign flips
EXACT_UP_TO = 12  # all 2^n sign flips up to this n (4,096 flips), Monte Carlo above
SEED = 0
BOOTSTRAP_MIN_N = 3


@dataclass(frozen=True, kw_only=True)
class Sample(Estimate):
    """The :class:`~ablate.inference.estimate.Estimate` of per-seed differences
    ``d_1..d_n`` (NaNs already dropped).

    - ``delta``: the mean difference; ``sd``: NaN for n=1; ``se = sd / sqrt(n)`` and
      ``df = n - 1`` of the t statistic;
    - ``ci_low``/``ci_high``: the t interval ``delta ± t_{df, 1-alpha/2} * se`` at ``level``
      (NaN for n=1; a zero-width interval when every difference is the same);
    - ``boot_low``/``boot_high``: BCa, 10,000 resamples, seed 0; ``none (n < 3)`` below 3
      seeds, where a bootstrap has too few distinct resamples to mean anything; with no spread
      every resample has the same mean and the interval is that point;
    - ``p``: two-sided sign-flip permutation p-value of "the differences are symmetric about 0"
      with the mean as statistic: exact over all 2^n flips for n <= 12, else Monte Carlo
      (10,000 flips, seed 0, ``(1 + hits) / (1 + flips)``); ``p_exact`` says which;
    - ``p_t``: the one-sample t test's (1 when every difference is 0);
    - ``identical``: every difference is exactly 0 (bit-identical runs).
    """

    p_exact: bool
    identical: bool

    @property
    def p_method(self) -> str:
        """Which sign-flip test gave ``p``, in words."""
        if self.p_exact:
            return f"exact sign-flip permutation ({2 ** self.n:,} flips)"
        return f"Monte Carlo sign-flip permutation ({RESAMPLES:,} flips, seed {SEED})"


def summarize(diffs: Sequence[float], level: float = LEVEL) -> Sample:
    """The :class:`Sample` of finite differences ``diffs`` (callers drop NaNs first)."""
    d = np.asarray(diffs, dtype=float)
    n = int(d.size)
    if n == 0:
        return Sample(n=0, delta=math.nan, level=level, boot_method="none (no data)",
                      p_exact=True, identical=False)
    mean = float(d.mean())
    identical = bool(np.all(d == 0.0))
    sd = float(d.std(ddof=1)) if n > 1 else math.nan
    se, df = sd / math.sqrt(n), float(n - 1)
    low, high = t_interval(mean, se, df, level)
    boot_low, boot_high, boot_method = bootstrap_interval(d, level)
    p, exact = sign_flip_p(d)
    return Sample(n=n, delta=mean, level=level, sd=sd, se=se, df=df, ci_low=low, ci_high=high,
                  boot_low=boot_low, boot_high=boot_high, boot_method=boot_method, p=p,
                  p_t=t_test_p(mean, se, df), p_exact=exact, identical=identical)


def t_interval(mean: float, se: float, df: float, level: float = LEVEL) -> tuple[float, float]:
    """``mean ± t_{df, (1+level)/2} * se``; NaN bounds without a standard error."""
    if math.isnan(se) or not df > 0:
        return math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, df)) * se
    return mean - half, mean + half


def t_test_p(mean: float, se: float, df: float) -> float:
    """Two-sided p-value of ``mean / se`` against Student's t with ``df`` degrees of freedom:
    1 for ``0 / 0`` (no difference at all), 0 for a non-zero mean with no spread."""
    if math.isnan(se) or not df > 0:
        return math.nan
    if se == 0.0:
        return 1.0 if mean == 0.0 else 0.0
    return float(2.0 * stats.t.sf(abs(mean) / se, df))


def bootstrap_interval(d: np.ndarray, level: float = LEVEL) -> tuple[float, float, str]:
    """BCa bootstrap interval of the mean of ``d`` (scipy.stats.bootstrap, 10,000 resamples,
    seed 0), with the method in words; NaN below 3 values."""
    if d.size < BOOTSTRAP_MIN_N:
        return math.nan, math.nan, f"none (n < {BOOTSTRAP_MIN_N})"
    if np.all(d == d[0]):
        return float(d[0]), float(d[0]), "none (no spread: every resample is the same)"
    result = stats.bootstrap((d,), np.mean, confidence_level=level, n_resamples=RESAMPLES,
                             method="BCa", rng=np.random.default_rng(SEED))
    ci = result.confidence_interval
    return float(ci.low), float(ci.high), f"BCa ({RESAMPLES:,} resamples, seed {SEED})"


def sign_flip_p(d: np.ndarray) -> tuple[float, bool]:
    """Two-sided sign-flip permutation p-value of the mean of ``d`` and whether it is exact.

    The share of sign patterns whose |mean| is at least the observed |mean| (a relative
    tolerance of 1e-9 keeps floating-point ties as ties)."""
    n = d.size
    if n == 0:
        return math.nan, True
    observed = abs(float(d.sum()))
    tolerance = 1e-9 * max(float(np.abs(d).sum()), 1e-300)
    if n <= EXACT_UP_TO:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
        hits = np.abs(signs @ d) >= observed - tolerance
        return float(hits.mean()), True
    rng = np.random.default_rng(SEED)
    signs = rng.choice((1.0, -1.0), size=(RESAMPLES, n))
    hits = int(np.count_nonzero(np.abs(signs @ d) >= observed - tolerance))
    return (1 + hits) / (1 + RESAMPLES), False
