"""Mapping stored mask values to class ids, and rejecting values that are not classes."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ablate.errors import DataError


def present_values(raw: np.ndarray) -> np.ndarray:
    """The distinct values of an integer label map, sorted."""
    if raw.dtype in (np.uint8, np.uint16):
        # A histogram is far cheaper than np.unique's sort on whole images.
        return np.flatnonzero(np.bincount(raw.ravel(), minlength=1))
    return np.unique(raw)


def map_mask(
    raw: np.ndarray,
    mask_map: dict[int, int],
    num_classes: int,
    ignore_index: int | None,
    source: Path | str,
) -> np.ndarray:
    """``raw`` with ``mask_map`` applied, in a compact label dtype; DataError on a non-class."""
    values = [int(v) for v in present_values(raw)]
    bad = [
        v
        for v in values
        if not (0 <= mask_map.get(v, v) < num_classes or mask_map.get(v, v) == ignore_index)
    ]
    if bad:
        raise DataError(_bad_values_message(source, bad, values, num_classes, ignore_index))
    dtype = label_dtype(num_classes, ignore_index)
    if not mask_map:
        return raw.astype(dtype)
    if raw.dtype in (np.uint8, np.uint16):
        lut = np.arange(np.iinfo(raw.dtype).max + 1, dtype=np.int64)
        for stored, target in mask_map.items():
            if 0 <= stored < lut.size:
                lut[stored] = target
        return lut.astype(dtype)[raw]
    distinct, inverse = np.unique(raw, return_inverse=True)
    lut = np.array([mask_map.get(int(v), int(v)) for v in distinct], dtype=dtype)
    return lut[inverse].reshape(raw.shape)


def nodata_pixels(image: np.ndarray, nodata: float) -> np.ndarray:
    """(H, W) bool: pixels whose bands *all* equal ``nodata`` (in the decoded image's units;
    a NaN ``nodata`` matches NaN bands)."""
    if math.isnan(nodata):
        if image.dtype.kind != "f":
            return np.zeros(image.shape[:2], dtype=bool)
        return np.isnan(image).all(axis=2)
    return (image == nodata).all(axis=2)


def label_dtype(num_classes: int, ignore_index: int | None) -> np.dtype:
    """The smallest dtype holding every label: masks stay compact in memory (int64 per batch)."""
    labels = [num_classes - 1] + ([ignore_index] if ignore_index is not None else [])
    return np.dtype(np.uint8 if min(labels) >= 0 and max(labels) <= 255 else np.int32)


def _bad_values_message(
    source: Path | str,
    bad: list[int],
    values: list[int],
    num_classes: int,
    ignore_index: int | None,
) -> str:
    shown = ", ".join(str(v) for v in bad[:10]) + (", ..." if len(bad) > 10 else "")
    ignore = f" nor ignore_index ({ignore_index})" if ignore_index is not None else ""
    hint = ""
    if set(values) <= {0, 255} and num_classes == 2:
        hint = " (for 0/255 masks: data.mask_map: {255: 1})"
    return (
        f"{source}: mask values [{shown}] are not classes (0..{num_classes - 1}){ignore}; "
        f"add them to data.mask_map{hint} or set data.ignore_index"
    )
