"""Test-set sampling uncertainty of one trained model's score, from per-image confusion counts.

A split's IoU is computed from counts summed over its images (never a mean of per-image IoU).
Which images a test set happens to hold is itself a source of uncertainty, separate from the
seed-to-seed variation of training that the ablation table covers: these intervals say how
much the score of *one trained model* would move on another test set drawn like this one.

- :func:`image_interval`: the score with a BCa bootstrap interval over images (images
  resampled with replacement, counts re-summed, the score recomputed);
- :func:`compare_images`: two models on the same images (paired): the difference of their
  scores with a paired BCa bootstrap interval (the same resampled images for both), and a
  paired permutation p-value (each image's counts swapped between the two models; exact over
  all 2^n swaps up to 12 images, Monte Carlo above).

Scores: binary, the positive class's IoU; multi-class, mIoU over the scored classes present
(TP + FP + FN > 0) in the (resampled) set, as the tracked ``miou`` is defined.
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass

import numpy as np

from ablate.inference.lazy import special
from ablate.inference.onesample import EXACT_UP_TO, LEVEL, RESAMPLES, SEED

_CHUNK = 1000  # resamples per block (memory: CHUNK x images weights)


@dataclass(frozen=True)
class ImageInterval:
    """A score over ``n`` images with its bootstrap interval (NaN bounds: none)."""

    n: int
    estimate: float
    low: float
    high: float
    method: str


@dataclass(frozen=True)
class ImageComparison:
    """Model A minus model B on the same ``n`` images: their scores, the difference with its
    paired bootstrap interval, and the paired permutation p-value."""

    n: int
    score_a: float
    score_b: float
    delta: float
    low: float
    high: float
    p: float
    method: str


def pooled_score(sums: np.ndarray, scored: np.ndarray) -> np.ndarray:
    """IoU (one class) or mIoU of summed counts ``(..., K, 4)`` (TP, FP, FN, TN): classes that
    are not ``scored`` or absent (TP + FP + FN = 0) are left out; NaN when none is left."""
    tp, fp, fn = sums[..., 0], sums[..., 1], sums[..., 2]
    den = tp + fp + fn
    valid = (den > 0) & np.asarray(scored, dtype=bool)
    iou = np.where(valid, tp / np.where(den > 0, den, 1), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: no class to score
        return np.nanmean(iou, axis=-1)


def image_interval(counts: np.ndarray, scored: np.ndarray, level: float = LEVEL) -> ImageInterval:
    """The pooled score of ``counts`` (N, K, 4) with a BCa bootstrap interval over images."""
    c = np.asarray(counts, dtype=float)
    n = c.shape[0]
    estimate = float(pooled_score(c.sum(axis=0), scored)) if n else math.nan

    def stat(sums: np.ndarray) -> np.ndarray:
        return pooled_score(sums.reshape(*sums.shape[:-1], *c.shape[1:]), scored)

    low, high, method = _bca(c.reshape(n, -1), stat, estimate, level)
    return ImageInterval(n, estimate, low, high, method)


def compare_images(a: np.ndarray, b: np.ndarray, scored: np.ndarray,
                   level: float = LEVEL) -> ImageComparison:
    """Model A's counts ``a`` against model B's ``b``, both (N, K, 4) over the same images in
    the same order."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired image counts differ in shape: {a.shape} vs {b.shape}")
    n, shape = a.shape[0], a.shape[1:]
    score_a = float(pooled_score(a.sum(axis=0), scored)) if n else math.nan
    score_b = float(pooled_score(b.sum(axis=0), scored)) if n else math.nan
    delta = score_a - score_b
    width = int(np.prod(shape))

    def stat(sums: np.ndarray) -> np.ndarray:
        left = sums[..., :width].reshape(*sums.shape[:-1], *shape)
        right = sums[..., width:].reshape(*sums.shape[:-1], *shape)
        return pooled_score(left, scored) - pooled_score(right, scored)

    both = np.concatenate([a.reshape(n, -1), b.reshape(n, -1)], axis=1)
    low, high, boot = _bca(both, stat, delta, level)
    p, exact = _swap_p(a.reshape(n, -1), b.reshape(n, -1), shape, scored, delta)
    swaps = (f"exact paired permutation ({2 ** n:,} swaps)" if exact
             else f"Monte Carlo paired permutation ({RESAMPLES:,} swaps, seed {SEED})")
    return ImageComparison(n, score_a, score_b, delta, low, high, p, f"{boot}; {swaps}")


def _weights(rng: np.random.Generator, size: int, n: int) -> np.ndarray:
    """(size, n) how often each image is drawn in each of ``size`` bootstrap resamples."""
    draws = rng.integers(0, n, (size, n)) + n * np.arange(size)[:, None]
    return np.bincount(draws.ravel(), minlength=size * n).reshape(size, n).astype(float)


def _bca(x: np.ndarray, stat, estimate: float, level: float) -> tuple[float, float, str]:
    """BCa bootstrap interval of ``stat(sum of rows of x)`` over the N rows (images):
    ``RESAMPLES`` resamples drawn with seed ``SEED``, bias from the share of resampled
    statistics below the estimate (ties count half, as scipy), acceleration from the
    jackknife (leave one image out)."""
    n = x.shape[0]
    if n < 3 or math.isnan(estimate):
        return math.nan, math.nan, "none (fewer than 3 images)" if n < 3 else "none (no score)"
    rng = np.random.default_rng(SEED)
    boot = np.concatenate([stat(_weights(rng, min(_CHUNK, RESAMPLES - i), n) @ x)
                           for i in range(0, RESAMPLES, _CHUNK)])
    boot = boot[~np.isnan(boot)]
    method = f"BCa bootstrap over images ({RESAMPLES:,} resamples, seed {SEED})"
    if boot.size == 0 or np.all(boot == boot[0]):
        return estimate, estimate, "none (no spread over images)"
    share = (np.count_nonzero(boot < estimate) + np.count_nonzero(boot <= estimate)) / (
        2 * boot.size)
    if not 0.0 < share < 1.0:
        return math.nan, math.nan, "none (the estimate lies outside every resample)"
    z0 = special.ndtri(share)
    jack = stat(x.sum(axis=0)[None, :] - x)
    jack = jack[~np.isnan(jack)]
    spread = jack.mean() - jack
    den = 6.0 * float(np.sum(spread**2)) ** 1.5
    accel = float(np.sum(spread**3)) / den if den > 0 else 0.0
    bounds = []
    for tail in ((1 - level) / 2, (1 + level) / 2):
        z = special.ndtri(tail)
        bounds.append(float(special.ndtr(z0 + (z0 + z) / (1 - accel * (z0 + z)))))
    low, high = np.percentile(boot, [100 * bounds[0], 100 * bounds[1]])
    return float(low), float(high), method


def _swap_p(a: np.ndarray, b: np.ndarray, shape: tuple[int, ...], scored: np.ndarray,
            delta: float) -> tuple[float, bool]:
    """Two-sided p-value of the score difference when each image's counts are swapped between
    the two models at random (exact over all patterns up to ``EXACT_UP_TO`` images)."""
    n = a.shape[0]
    if n == 0 or math.isnan(delta):
        return math.nan, True
    total_a, total_b, d = a.sum(axis=0), b.sum(axis=0), a - b
    exact = n <= EXACT_UP_TO
    if exact:
        swaps = np.array(list(itertools.product((0.0, 1.0), repeat=n)))
    else:
        swaps = np.random.default_rng(SEED).integers(0, 2, (RESAMPLES, n)).astype(float)
    moved = swaps @ d  # counts that move from A to B when those images swap
    diff = (pooled_score((total_a - moved).reshape(-1, *shape), scored)
            - pooled_score((total_b + moved).reshape(-1, *shape), scored))
    tolerance = 1e-9 * max(abs(delta), 1e-300)
    hits = np.count_nonzero(np.abs(diff) >= abs(delta) - tolerance)
    if exact:
        return hits / swaps.shape[0], True
    return (1 + hits) / (1 + swaps.shape[0]), False
