"""Stored masks to class ids (``mask_map``, ``mask_threshold`` or ``mask_colors``), rejecting
values that are not classes with a message that says which setting fixes them, and masks of
another size than their image fitted to it (``mask_fit``)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ablate.data.io import colour_code
from ablate.data.problems import DataProblem

BAD_VALUES = "masks whose values are not classes"
STORED_0_255 = "masks stored as 0/255"
SOFT = "soft (anti-aliased) masks"
UNKNOWN_COLOURS = "masks with colours not in data.mask_colors"
OTHER_SIZE = "masks of another size than their image"

# A binary mask with more distinct stored values than this is taken for a soft one.
SOFT_VALUES = 3


def present_values(raw: np.ndarray) -> np.ndarray:
    """The distinct values of a label map, sorted."""
    if raw.dtype in (np.uint8, np.uint16):
        # A histogram is far cheaper than np.unique's sort on whole images.
        return np.flatnonzero(np.bincount(raw.ravel(), minlength=1))
    return np.unique(raw)


def to_labels(
    raw: np.ndarray,
    mask_map: dict[int, int],
    num_classes: int,
    ignore_index: int | None,
    source: Path | str,
    threshold: float | None = None,
) -> np.ndarray:
    """Class ids of the stored mask ``raw`` in a compact label dtype: with ``threshold``
    values >= it are 1 and the others 0 (binary), else ``mask_map`` is applied; DataError on a
    value that is not a class."""
    dtype = label_dtype(num_classes, ignore_index)
    if threshold is not None:
        return (raw >= threshold).astype(dtype)
    if raw.dtype.kind == "f":  # decode_mask keeps only non-integer (soft) masks as float
        raise DataProblem(_soft_message(source, raw, num_classes), SOFT)
    return map_mask(raw, mask_map, num_classes, ignore_index, source)


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
        kind = BAD_VALUES
        if num_classes == 2 and set(values) <= {0, 255}:
            kind = STORED_0_255
        elif num_classes == 2 and len(values) > SOFT_VALUES:
            kind = SOFT
        raise DataProblem(_bad_values_message(source, bad, values, num_classes, ignore_index,
                                              bool(mask_map)), kind)
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


def colour_labels(
    codes: np.ndarray,
    colours: dict[tuple[int, int, int], int],
    num_classes: int,
    ignore_index: int | None,
    source: Path | str,
) -> np.ndarray:
    """Class ids of a colour-coded mask (``codes``: :func:`ablate.data.io.read_colour_mask`)
    by ``data.mask_colors``; DataError naming the colours that are not in it."""
    out = np.zeros(codes.shape, dtype=label_dtype(num_classes, ignore_index))
    covered = np.zeros(codes.shape, dtype=bool)
    for colour, target in colours.items():
        hit = codes == colour_code(*colour)
        out[hit] = target
        covered |= hit
    if not covered.all():
        raise DataProblem(_colours_message(source, codes[~covered]), UNKNOWN_COLOURS)
    return out


def _colours_message(source: Path | str, unknown: np.ndarray) -> str:
    found, counts = np.unique(unknown, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    shown = ", ".join(f"{c >> 16},{(c >> 8) & 255},{c & 255} ({n} px)"
                      for c, n in zip(found[order][:5].tolist(), counts[order][:5].tolist(),
                                      strict=True))
    more = f" and {found.size - 5} more" if found.size > 5 else ""
    blend = (" (so many colours: the mask was smoothed or saved lossily; colour masks must be "
             "stored losslessly, e.g. PNG, without anti-aliasing)" if found.size > 20 else "")
    return (f"{source}: {unknown.size} pixels have colours that are not in data.mask_colors: "
            f"{shown}{more}{blend}; add them to data.mask_colors (to a class, or to "
            "data.ignore_index to ignore them)")


def resize_labels(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) label map resized to ``size`` (H, W) by nearest-neighbour sampling of pixel
    centres, so every output value is one of the input's labels; dtype kept."""
    height, width = size
    if (height, width) == mask.shape:
        return mask
    rows = np.minimum(((np.arange(height) + 0.5) * (mask.shape[0] / height)).astype(np.int64),
                      mask.shape[0] - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * (mask.shape[1] / width)).astype(np.int64),
                      mask.shape[1] - 1)
    return np.ascontiguousarray(mask[rows[:, None], cols[None, :]])


def fit_mask(mask: np.ndarray, size: tuple[int, int], how: str, fill: int | None,
             source: Path | str, image: str) -> np.ndarray:
    """``mask`` brought to its image's ``size`` (H, W) by ``data.mask_fit``: ``crop`` cuts
    the rows and columns beyond the image (bottom, right) and fills missing ones with ``fill``
    (ignore_index), ``resize`` resamples it (nearest neighbour); ``error``: DataError."""
    (mh, mw), (ih, iw) = mask.shape, size
    what = f"{source}: mask is {mh}x{mw} (HxW) but its image {image} is {ih}x{iw}"
    if how == "resize":
        return resize_labels(mask, size)
    if how == "crop":
        if mh >= ih and mw >= iw:
            return np.ascontiguousarray(mask[:ih, :iw])
        if fill is None:
            raise DataProblem(f"{what}; data.mask_fit: crop fills the missing pixels with "
                              "data.ignore_index, which is not set: set it (e.g. 255) or use "
                              "data.mask_fit: resize", OTHER_SIZE)
        out = np.full(size, fill, dtype=mask.dtype)
        out[: min(mh, ih), : min(mw, iw)] = mask[:ih, :iw]
        return out
    raise DataProblem(f"{what}; masks must match their image: fix the file, or set "
                      "data.mask_fit: crop (cut at the bottom/right, pad with ignore_index) or "
                      "data.mask_fit: resize (nearest neighbour)", OTHER_SIZE)


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


def threshold_hint(high: float) -> str:
    """A mask_threshold halfway up the value range that reaches ``high``."""
    if high <= 1.0:
        return "0.5"
    return "128" if high <= 255 else "32768"


def _soft_message(source: Path | str, raw: np.ndarray, num_classes: int) -> str:
    if num_classes == 2:
        hint = threshold_hint(float(raw.max()))
        return (f"{source}: mask has non-integer values (a soft mask); set "
                f"data.mask_threshold (e.g. {hint}: values >= it become class 1)")
    return (f"{source}: mask has non-integer values; masks of a multiclass task must be label "
            "maps (one class id per pixel)")


def _bad_values_message(
    source: Path | str,
    bad: list[int],
    values: list[int],
    num_classes: int,
    ignore_index: int | None,
    mapped: bool,
) -> str:
    shown = ", ".join(str(v) for v in bad[:10]) + (", ..." if len(bad) > 10 else "")
    ignore = f" nor ignore_index ({ignore_index})" if ignore_index is not None else ""
    head = f"{source}: mask values [{shown}] are not classes (0..{num_classes - 1}){ignore}; "
    target = "data.ignore_index" if ignore_index is None else f"ignore_index ({ignore_index})"
    to_map = (f"{'add them to' if mapped else 'map them with'} data.mask_map (to a class, or "
              f"to {target} to ignore them)")
    if num_classes == 2 and set(values) <= {0, 255}:
        return head + "set data.mask_map: {255: 1} (or data.mask_threshold: 128)"
    if num_classes == 2 and len(values) > SOFT_VALUES:
        hint = threshold_hint(max(values))
        return (head + f"for soft (anti-aliased) masks set data.mask_threshold (e.g. {hint}: "
                f"values >= it become class 1); otherwise {to_map}")
    if ignore_index is None and len(bad) == 1:
        return head + f"{to_map}, or set data.ignore_index: {bad[0]} if it marks pixels to ignore"
    return head + to_map
