"""Train-split statistics: per-channel mean/std and per-class pixel counts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ablate.data.io import unit_scale
from ablate.data.masks import nodata_pixels
from ablate.data.sample import Sample


def channel_stats(
    samples: Sequence[Sample], channels: int, nodata: float | None = None
) -> tuple[list[float], list[float]]:
    """Per-channel mean and std over all pixels of ``samples``, images scaled to [0, 1].

    Pass the train split only. With ``nodata``, pixels whose bands all equal it are left out
    (no-data fill would otherwise drag the statistics towards the fill value).
    """
    total = np.zeros(channels, dtype=np.float64)
    squares = np.zeros(channels, dtype=np.float64)
    count = 0
    for sample in samples:
        pixels = sample.image.reshape(-1, channels)
        if nodata is not None:
            empty = nodata_pixels(sample.image, nodata).ravel()
            if empty.any():
                pixels = pixels[~empty]
        scale = unit_scale(sample.image.dtype)
        for c in range(channels):
            if pixels.dtype in (np.uint8, np.uint16):
                # A histogram is exact and several times faster than float sums.
                hist = np.bincount(pixels[:, c]).astype(np.float64)
                levels = np.arange(hist.size, dtype=np.float64) / scale
                total[c] += hist @ levels
                squares[c] += hist @ (levels * levels)
            else:
                values = pixels[:, c].astype(np.float64)
                total[c] += values.sum()
                squares[c] += values @ values
        count += pixels.shape[0]
    mean = total / max(count, 1)
    var = np.maximum(squares / max(count, 1) - mean**2, 0.0)
    std = np.sqrt(var)
    # A constant channel would divide by zero; leave it unscaled instead.
    std[std < 1e-8] = 1.0
    return [float(m) for m in mean], [float(s) for s in std]


def class_pixels(
    samples: Sequence[Sample], num_classes: int, ignore_index: int | None
) -> np.ndarray:
    """(num_classes,) int64 count of pixels per class; ignored pixels are not counted."""
    counts = np.zeros(num_classes, dtype=np.int64)
    for sample in samples:
        labels = sample.mask.ravel()
        valid = (labels >= 0) & (labels < num_classes)
        if ignore_index is not None:
            valid &= labels != ignore_index
        counts += np.bincount(labels[valid], minlength=num_classes)[:num_classes]
    return counts


def split_class_pixels(
    splits: Mapping[str, Sequence[Sample]], num_classes: int, ignore_index: int | None
) -> dict[str, np.ndarray]:
    """Per split, the (num_classes,) int64 pixel count per class, ignored pixels excluded."""
    return {split: class_pixels(samples, num_classes, ignore_index)
            for split, samples in splits.items()}
