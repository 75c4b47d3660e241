"""The in-memory form of a data set: decoded samples and their splits."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ablate.naming import slug

if TYPE_CHECKING:
    from ablate.data.fingerprint import SplitFingerprint


@dataclass
class Sample:
    """One image and its label map."""

    name: str
    image: np.ndarray  # (H, W, C), uint8 / uint16 / float32 as decoded; read-only when cached
    mask: np.ndarray  # (H, W) uint8 or int32: class ids 0..num_classes-1 or ignore_index

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the image."""
        return int(self.image.shape[0]), int(self.image.shape[1])


@dataclass
class DataSplits:
    """A loaded data set: non-empty splits plus statistics of the train split.

    ``in_channels`` is what the model sees: the image bands followed by the derived channels
    (``derived``, in the order exg, exr, sobel); ``mean``/``std`` have one entry per input
    channel (train-split statistics for the bands, 0/1 for the derived channels, which are
    already in [0, 1]).
    """

    splits: dict[str, list[Sample]]
    in_channels: int
    mean: list[float]
    std: list[float]
    # Per split: (num_classes,) int64 pixel counts per class, ignored pixels excluded.
    split_pixels: dict[str, np.ndarray]
    derived: list[str] = field(default_factory=list)  # derived channel names, appended in order
    class_names: list[str] = field(default_factory=list)
    task: str = "binary"
    # Per split: names of the samples that data.drop_empty removed (all-background masks).
    dropped: dict[str, list[str]] = field(default_factory=dict)
    # Per split: the digest and profile of the data its samples came from.
    fingerprints: dict[str, SplitFingerprint] = field(default_factory=dict)

    @property
    def class_pixels(self) -> np.ndarray:
        """(num_classes,) int64 pixel counts on train, ignored pixels excluded."""
        return self.split_pixels["train"]

    @property
    def bands(self) -> int:
        """Channels of the images themselves (``in_channels`` without the derived ones)."""
        return self.in_channels - len(self.derived)

    def class_balance(self) -> dict[str, dict[str, float]]:
        """Per split: ``images``, ``pixels`` (non-ignored pixels at the loaded resolution) and
        the class fractions of those pixels: ``positive_ratio`` (binary: share of class 1) or
        ``frac_<slug>`` per class (multiclass, slug of the class name as in metric keys).
        A fraction over 0 pixels is NaN.
        """
        out: dict[str, dict[str, float]] = {}
        for split, samples in self.splits.items():
            counts = np.asarray(self.split_pixels.get(split, []), dtype=np.int64)
            total = int(counts.sum())
            row: dict[str, float] = {"images": float(len(samples)), "pixels": float(total)}

            def share(count: int, total: int = total) -> float:
                return count / total if total else math.nan

            if self.task == "binary":
                row["positive_ratio"] = share(int(counts[1]) if counts.size > 1 else 0)
            else:
                names = self.class_names or [f"class_{i}" for i in range(counts.size)]
                for index, name in enumerate(names):
                    row[f"frac_{slug(name)}"] = share(int(counts[index]) if index < counts.size
                                                      else 0)
            out[split] = row
        return out
