"""Load-time preparation of decoded samples: no-data pixels, upscaling, empty-mask filtering."""

from __future__ import annotations

import cv2
import numpy as np

from ablate.data.masks import nodata_pixels, present_values, resize_labels
from ablate.data.sample import Sample
from ablate.data.transforms import image_interpolation
from ablate.errors import DataError


def mask_nodata(
    image: np.ndarray, mask: np.ndarray, nodata: float, ignore_index: int
) -> np.ndarray:
    """``mask`` with every no-data pixel of ``image`` set to ``ignore_index`` (a new array when
    any pixel changes; ``mask`` itself is never written)."""
    empty = nodata_pixels(image, nodata)
    if not empty.any():
        return mask
    out = np.array(mask, copy=True)
    out[empty] = ignore_index
    return out


def scaled_size(size: tuple[int, int], factor: float) -> tuple[int, int]:
    """(H, W) scaled by ``factor``, rounded, at least 1x1."""
    return max(1, round(size[0] * factor)), max(1, round(size[1] * factor))


def upscale_image(image: np.ndarray, factor: float, resize: str = "auto") -> np.ndarray:
    """(H, W, C) ``image`` resized by ``factor`` with the ``data.resize`` interpolation (auto:
    cubic, or area for a factor below 1), dtype kept (integer images saturate at their range)."""
    height, width = scaled_size(image.shape[:2], factor)
    if (height, width) == image.shape[:2]:
        return image
    flag = image_interpolation(resize, image.shape[:2], (height, width))
    out = cv2.resize(image, (width, height), interpolation=flag)
    return out.reshape(height, width, image.shape[2])


def upscale_mask(mask: np.ndarray, factor: float) -> np.ndarray:
    """(H, W) label map resized by ``factor`` with nearest-neighbour sampling (pixel centres),
    so every output value is one of the input's labels; dtype kept."""
    return resize_labels(mask, scaled_size(mask.shape, factor))


def prepare(
    sample: Sample,
    nodata: float | None,
    ignore_index: int | None,
    upscale: float,
    resize: str = "auto",
) -> Sample:
    """``sample`` with no-data pixels set to ``ignore_index`` in its mask, then upscaled.

    No-data is found on the image as decoded (before any interpolation could blur it); the
    mask is upscaled with nearest-neighbour sampling, so the ignored region stays crisp.

    ``data.upscale`` acts at load time, before the pipeline's ``data.size`` resize and
    ``data.crop``. With ``data.size`` set the model still sees ``data.size`` (upscaling only
    changes what that resize starts from), so the factor matters when ``data.size`` is unset
    (the model sees the upscaled images, and metrics are computed at that size) or with
    ``data.crop`` (a crop of the same pixel size then covers a smaller part of the scene).
    """
    image, mask = sample.image, sample.mask
    if nodata is not None:
        if ignore_index is None:  # DataSpec validation rules this out
            raise DataError("data.nodata needs data.ignore_index (e.g. 255)")
        mask = mask_nodata(image, mask, nodata, ignore_index)
    if upscale != 1.0:
        image, mask = upscale_image(image, upscale, resize), upscale_mask(mask, upscale)
        image.flags.writeable = False
    if image is sample.image and mask is sample.mask:
        return sample
    return Sample(name=sample.name, image=image, mask=mask)


def has_foreground(mask: np.ndarray, num_classes: int, ignore_index: int | None) -> bool:
    """Whether ``mask`` has a pixel of a class other than 0 (ignored pixels do not count)."""
    values = {int(v) for v in present_values(mask)}
    return any(0 < v < num_classes and v != ignore_index for v in values)


def drop_empty(
    splits: dict[str, list[Sample]], num_classes: int, ignore_index: int | None
) -> tuple[dict[str, list[Sample]], dict[str, list[str]]]:
    """Every split without its all-background samples, and the dropped names per split;
    DataError naming the split that this would leave empty."""
    kept: dict[str, list[Sample]] = {}
    dropped: dict[str, list[str]] = {}
    for split, samples in splits.items():
        flags = [has_foreground(s.mask, num_classes, ignore_index) for s in samples]
        keep = [s for s, flag in zip(samples, flags, strict=True) if flag]
        if not keep:
            raise DataError(
                f"data.drop_empty: all {len(samples)} samples of the {split} split have "
                "all-background masks (no pixel of a class other than 0), so the split would "
                "be empty; set data.drop_empty: false or change the split"
            )
        kept[split] = keep
        dropped[split] = [s.name for s, flag in zip(samples, flags, strict=True) if not flag]
    return kept, dropped

