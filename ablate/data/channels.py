"""Derived input channels (``data.derived``): pure numpy functions of an RGB image.

Every function takes a float (H, W, C) image whose first three bands are R, G and B (scaled to
[0, 1]; further bands such as NIR are ignored) and returns float32 arrays.
``derived_channels`` stacks the requested channels, each min-max normalised per image to
[0, 1] (a constant channel becomes 0), in the fixed order exg, exr, sobel.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ORDER = ("exg", "exr", "sobel")
# ITU-R BT.601 luma weights (as cv2's RGB2GRAY), for the grey image the Sobel filter sees.
GREY_WEIGHTS = (0.299, 0.587, 0.114)


def _bands(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if image.ndim != 3 or image.shape[2] < 3:
        raise ValueError(f"derived channels need an (H, W, C>=3) RGB image, got {image.shape}")
    rgb = image[:, :, :3].astype(np.float32, copy=False)
    return rgb[:, :, 0], rgb[:, :, 1], rgb[:, :, 2]


def excess_green(image: np.ndarray) -> np.ndarray:
    """ExG = 2G - R - B, (H, W) float32, not normalised."""
    r, g, b = _bands(image)
    return 2.0 * g - r - b


def excess_red(image: np.ndarray) -> np.ndarray:
    """ExR = 1.4R - G, (H, W) float32, not normalised."""
    r, g, _ = _bands(image)
    return np.float32(1.4) * r - g


def grey(image: np.ndarray) -> np.ndarray:
    """The grey image 0.299R + 0.587G + 0.114B, (H, W) float32."""
    r, g, b = _bands(image)
    wr, wg, wb = (np.float32(w) for w in GREY_WEIGHTS)
    return wr * r + wg * g + wb * b


def sobel_magnitude(image: np.ndarray) -> np.ndarray:
    """sqrt(Gx^2 + Gy^2) of the 3x3 Sobel derivatives of the grey image, (H, W) float32.

    Borders are mirrored without repeating the edge pixel (numpy ``reflect``, cv2's default
    BORDER_REFLECT_101); a 1-pixel-wide or -high image is edge-padded instead.
    """
    g = grey(image)
    p = np.pad(g, 1, mode="reflect") if min(g.shape) > 1 else np.pad(g, 1, mode="edge")
    # Gx = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]] (correlation); Gy is its transpose.
    left = p[:-2, :-2] + 2.0 * p[1:-1, :-2] + p[2:, :-2]
    right = p[:-2, 2:] + 2.0 * p[1:-1, 2:] + p[2:, 2:]
    top = p[:-2, :-2] + 2.0 * p[:-2, 1:-1] + p[:-2, 2:]
    bottom = p[2:, :-2] + 2.0 * p[2:, 1:-1] + p[2:, 2:]
    gx, gy = right - left, bottom - top
    return np.sqrt(gx * gx + gy * gy).astype(np.float32, copy=False)


def minmax(channel: np.ndarray) -> np.ndarray:
    """``channel`` scaled to [0, 1] by its own minimum and maximum; a constant one becomes 0."""
    channel = channel.astype(np.float32, copy=False)
    if channel.size == 0:
        return channel.copy()
    low, high = float(channel.min()), float(channel.max())
    if not high > low:  # constant (or NaN): no contrast to stretch
        return np.zeros_like(channel, dtype=np.float32)
    scaled = (channel - np.float32(low)) / np.float32(high - low)
    return np.clip(scaled, 0.0, 1.0, out=scaled)  # rounding must not step outside [0, 1]


FUNCTIONS = {"exg": excess_green, "exr": excess_red, "sobel": sobel_magnitude}


def derived_channels(image: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """(H, W, len(names)) float32: each named channel of ``image``, min-max normalised.

    ``names`` is taken in the canonical order exg, exr, sobel whatever order it is given in.
    """
    unknown = set(names) - set(ORDER)
    if unknown:
        raise ValueError(f"unknown derived channels {sorted(unknown)}; known: {list(ORDER)}")
    chosen = [name for name in ORDER if name in names]
    height, width = image.shape[:2]
    out = np.empty((height, width, len(chosen)), dtype=np.float32)
    for i, name in enumerate(chosen):
        out[:, :, i] = minmax(FUNCTIONS[name](image))
    return out


def append_derived(image: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """``image`` (float32, [0, 1]) with its derived channels appended after the bands."""
    if not names:
        return image
    extra = derived_channels(image, names)
    return np.concatenate([image.astype(np.float32, copy=False), extra], axis=2)
