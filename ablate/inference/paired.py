"""A configuration against its reference (the baseline, or the predecessor in a cumulative
design), seed by seed.

Repeat r of every configuration is trained with the same seed r (common random numbers), so
the differences ``d_r = x_r - ref_r`` cancel everything the seed does to both runs; their
spread is the noise the comparison has to beat. Pairing needs a reference value for every
seed of the configuration (the reference may have more seeds, e.g. when adaptive repeats ran
it longer for another row); a configuration with a seed the reference lacks is compared
unpaired with Welch's t interval and test, and the result says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ablate.inference import onesample
from ablate.inference.estimate import Estimate, fields_of
from ablate.inference.lazy import stats
from ablate.inference.onesample import LEVEL, RESAMPLES, SEED


@dataclass(frozen=True, kw_only=True)
class Comparison(Estimate):
    """A configuration compared with its reference: the
    :class:`~ablate.inference.estimate.Estimate` of the difference configuration minus
    reference, so a positive ``delta`` means the configuration's metric is higher (better when
    ``maximize``, worse otherwise).

    - ``n``: seeds compared (paired: seeds both have; unpaired: the configuration's values),
      ``n_ref``: reference values used; ``dropped``: NaN values left out (both sides);
      ``unmatched``: configuration seeds without a reference value (> 0 means unpaired);
    - ``mean``/``std``: the configuration's mean and standard deviation (ddof=1) over the
      seeds compared; ``ref_mean``/``ref_std``: the reference's over the same seeds
      (unpaired: over all of its values), so ``delta = mean - ref_mean``;
    - ``rel_gain = delta / |ref_mean|`` (NaN for a zero mean);
    - ``sd``: SD of the per-seed differences (paired only); ``se``/``df``: paired t, or
      Welch-Satterthwaite; the t interval is the paired t or Welch's;
    - ``p``: the sign-flip permutation test when paired (exact over all 2^n flips for
      n <= 12), Welch's t test when not; ``method`` names the test behind ``p`` and the
      interval;
    - ``p_better``: share of seeds where the configuration beats the reference (higher when
      ``maximize``, lower otherwise; ties do not count); unpaired: share of all
      (configuration, reference) pairs of runs;
    - ``identical``: paired and every difference exactly 0 (bit-identical runs);
    - ``diffs``: the per-seed differences in seed order (empty when unpaired).
    """

    n_ref: int
    paired: bool
    maximize: bool
    mean: float
    std: float
    ref_mean: float
    ref_std: float
    rel_gain: float
    p_better: float
    identical: bool
    method: str
    dropped: int = 0
    unmatched: int = 0
    diffs: tuple[float, ...] = ()


def compare(
    values: Mapping[int, float],
    reference: Mapping[int, float],
    maximize: bool,
    level: float = LEVEL,
) -> Comparison:
    """Compare a configuration's ``values`` (seed -> metric) with ``reference`` (seed ->
    metric): paired over the configuration's seeds when the reference has all of them,
    Welch otherwise. NaN values are dropped and counted."""
    x = _finite(values)
    ref = _finite(reference)
    dropped = len(values) + len(reference) - len(x) - len(ref)
    unmatched = sum(1 for seed in x if seed not in ref)
    if x and not unmatched:
        return _paired(x, ref, maximize, level, dropped)
    return _welch(x, ref, maximize, level, dropped, unmatched)


def differences(values: Mapping[int, float], reference: Mapping[int, float]) -> list[float]:
    """Per-seed differences ``values[s] - reference[s]`` over the seeds both have a finite
    value for, in seed order: the sample a sequential look (adaptive repeats) is taken on,
    by the runner and by the report alike."""
    x, ref = _finite(values), _finite(reference)
    return [x[s] - ref[s] for s in sorted(x) if s in ref]


def _finite(values: Mapping[int, float]) -> dict[int, float]:
    return {int(s): float(v) for s, v in values.items() if v is not None and not math.isnan(v)}


def _paired(x: dict[int, float], ref: dict[int, float], maximize: bool, level: float,
            dropped: int) -> Comparison:
    seeds = sorted(x)
    a = np.array([x[s] for s in seeds])
    b = np.array([ref[s] for s in seeds])
    d = a - b
    sample = onesample.summarize(d, level)
    wins = d > 0 if maximize else d < 0
    ref_mean = float(b.mean())
    method = f"paired t interval, {sample.p_method}"
    return Comparison(
        **fields_of(Estimate, sample), n_ref=len(seeds), paired=True, maximize=maximize,
        mean=float(a.mean()), std=_std(a), ref_mean=ref_mean, ref_std=_std(b),
        rel_gain=_relative(sample.delta, ref_mean), p_better=float(wins.mean()),
        identical=sample.identical, method=method, dropped=dropped,
        diffs=tuple(float(v) for v in d))


def _welch(x: dict[int, float], ref: dict[int, float], maximize: bool, level: float,
           dropped: int, unmatched: int) -> Comparison:
    a, b = np.array(list(x.values())), np.array(list(ref.values()))
    nan = math.nan
    mean = float(a.mean()) if a.size else nan
    ref_mean = float(b.mean()) if b.size else nan
    delta = mean - ref_mean
    se, df = _welch_se_df(a, b)
    low, high = onesample.t_interval(delta, se, df, level)
    boot_low, boot_high, boot_method = _welch_bootstrap(a, b, level)
    wins = (a[:, None] > b[None, :]) if maximize else (a[:, None] < b[None, :])
    why = f"{unmatched} seed(s) without a reference value" if unmatched else "no seeds"
    p = onesample.t_test_p(delta, se, df)
    return Comparison(
        n=int(a.size), delta=delta, level=level, se=se, df=df, ci_low=low, ci_high=high,
        boot_low=boot_low, boot_high=boot_high, boot_method=boot_method, p=p, p_t=p,
        n_ref=int(b.size), paired=False, maximize=maximize, mean=mean, std=_std(a),
        ref_mean=ref_mean, ref_std=_std(b), rel_gain=_relative(delta, ref_mean),
        p_better=float(wins.mean()) if wins.size else nan, identical=False,
        method=f"Welch t interval and test (unpaired: {why})", dropped=dropped,
        unmatched=unmatched)


def _welch_se_df(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Welch standard error and Welch-Satterthwaite degrees of freedom (NaN below 2 values a
    side; df = n_a + n_b - 2 when neither side has spread)."""
    if a.size < 2 or b.size < 2:
        return math.nan, math.nan
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    variance = va + vb
    if variance == 0.0:
        return 0.0, float(a.size + b.size - 2)
    df = variance**2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    return math.sqrt(variance), float(df)


def _welch_bootstrap(a: np.ndarray, b: np.ndarray, level: float) -> tuple[float, float, str]:
    """BCa bootstrap of the difference of means, resampling each side on its own."""
    if min(a.size, b.size) < onesample.BOOTSTRAP_MIN_N:
        return math.nan, math.nan, f"none (n < {onesample.BOOTSTRAP_MIN_N} on a side)"
    if np.all(a == a[0]) and np.all(b == b[0]):
        delta = float(a[0] - b[0])
        return delta, delta, "none (no spread: every resample is the same)"
    result = stats.bootstrap(
        (a, b), lambda u, v, axis: u.mean(axis) - v.mean(axis), confidence_level=level,
        n_resamples=RESAMPLES, method="BCa", rng=np.random.default_rng(SEED))
    ci = result.confidence_interval
    return float(ci.low), float(ci.high), f"BCa, two samples ({RESAMPLES:,} resamples, seed {SEED})"


def _std(a: np.ndarray) -> float:
    return float(a.std(ddof=1)) if a.size > 1 else math.nan


def _relative(delta: float, ref_mean: float) -> float:
    return delta / abs(ref_mean) if ref_mean and not math.isnan(ref_mean) else math.nan
