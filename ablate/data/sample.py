"""The in-memory form of a data set: decoded samples and their splits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
    """A loaded data set: non-empty splits plus statistics of the train split."""

    splits: dict[str, list[Sample]]
    in_channels: int
    mean: list[float]
    std: list[float]
    class_pixels: np.ndarray  # (num_classes,) int64 pixel counts on train, ignored pixels excluded
