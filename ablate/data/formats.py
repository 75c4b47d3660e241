"""Mixed image formats to one channel count (``data.channels``, ``data.keep_alpha``).

An image's bands are its colour bands plus, for PNG-like files with an alpha channel, the
alpha band. Alpha is dropped unless ``keep_alpha``; then it is the last band, and an image
without one gets an opaque band (the dtype's maximum). The colour bands are converted only
between grey and RGB: grey -> RGB repeats the band, RGB -> grey is the ITU-R 601-2 luma
L = 0.299 R + 0.587 G + 0.114 B (PIL's ``convert("L")``). Any other difference is an error.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ablate.data.io import Decoded, unit_scale
from ablate.errors import DataError

if TYPE_CHECKING:
    from ablate.data.problems import Problems

LUMA = (0.299, 0.587, 0.114)
# PIL's fixed-point weights for 8-bit images: L = (19595 R + 38470 G + 7471 B + 2**15) >> 16.
LUMA_FIXED = (19595, 38470, 7471)

log = logging.getLogger("ablate.data")
_warned: set[str] = set()


def warn_once(message: str) -> None:
    """Log ``message`` as one warning line, once per process."""
    if message not in _warned:
        _warned.add(message)
        log.warning("warning: %s", message)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 1) grey of an (H, W, 3) image, in its dtype: uint8 exactly as PIL's "L" mode,
    other dtypes by the same weights in float (rounded back for integers)."""
    if rgb.dtype == np.uint8:
        r, g, b = (rgb[:, :, i].astype(np.uint32) for i in range(3))
        wr, wg, wb = LUMA_FIXED
        grey = (wr * r + wg * g + wb * b + (1 << 15)) >> 16
        return grey.astype(np.uint8)[:, :, None]
    grey = rgb.astype(np.float64) @ np.asarray(LUMA)
    if rgb.dtype.kind in "iu":
        limit = np.iinfo(rgb.dtype).max
        grey = np.clip(np.rint(grey), 0, limit)
    return grey.astype(rgb.dtype)[:, :, None]


def colour_bands(images: Sequence[tuple[str, str, Decoded]], channels: int | None,
                 keep_alpha: bool, problems: Problems) -> int:
    """How many colour bands every image gets: from ``channels`` if set, else the count most
    images share (alpha not counted). ``images``: (sample name, file, image); each image
    whose count differs from the others' is a problem naming the setting that fixes it."""
    if channels is not None:
        return channels - int(keep_alpha)
    counts = Counter(image.colour_bands for _, _, image in images)
    common = max(counts, key=lambda c: counts[c])  # ties: the first image's count
    example = next(name for name, _, image in images if image.colour_bands == common)
    for name, source, image in images:
        if image.colour_bands == common:
            continue
        found = {common, image.colour_bands}
        if found == {1, 3}:
            extra = 1 if keep_alpha else 0
            fix = (f"set data.channels: {3 + extra} (grey repeated to RGB) or "
                   f"data.channels: {1 + extra} (RGB to grey by luminance)")
        else:
            fix = ("convert them to one format (data.channels converts only grey <-> RGB "
                   "and drops alpha)")
        problems.add(
            f"{source}: images have different channel counts: {name} has "
            f"{image.colour_bands}, {example} has {common} (like {counts[common]} of the "
            f"{len(images)} images; alpha not counted); {fix}",
            "images with another channel count", source)
    return common


def convert(source: str, image: Decoded, colour: int, keep_alpha: bool) -> np.ndarray:
    """``image``'s pixels with ``colour`` colour bands, then its alpha band if ``keep_alpha``
    (the array itself when nothing changes); ``source`` names the file in errors."""
    pixels = image.pixels
    bands = pixels[:, :, : image.colour_bands] if image.alpha else pixels
    if image.colour_bands == colour:
        pass
    elif (image.colour_bands, colour) == (1, 3):
        bands = np.repeat(bands, 3, axis=2)
    elif (image.colour_bands, colour) == (3, 1):
        bands = luminance(bands)
    else:
        raise DataError(
            f"{source}: a {image.colour_bands}-band image cannot become {colour} colour band(s) "
            f"(data.channels); only grey <-> RGB is converted; convert the file or change "
            "data.channels"
        )
    if keep_alpha:
        if image.alpha:
            alpha = pixels[:, :, -1:]
        else:
            alpha = np.full((*pixels.shape[:2], 1), unit_scale(pixels.dtype), pixels.dtype)
        out = np.concatenate([bands, alpha], axis=2)
    elif bands is pixels:
        return pixels
    else:
        out = np.ascontiguousarray(bands)
    out.flags.writeable = False
    return out
