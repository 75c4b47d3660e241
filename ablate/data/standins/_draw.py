"""Drawing and file helpers shared by the stand-in generators."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

# --------------------------------------------------------------------------------- drawing


def _smooth_noise(rng: np.random.Generator, size: int, scale: int, channels: int = 1) -> np.ndarray:
    """(size, size, channels) float32 noise in about [-1, 1], smooth over ``scale`` pixels."""
    cells = max(2, size // scale + 2)
    coarse = rng.uniform(-1.0, 1.0, (cells, cells, channels)).astype(np.float32)
    big = cv2.resize(coarse, (size + 2 * scale, size + 2 * scale), interpolation=cv2.INTER_CUBIC)
    big = big.reshape(big.shape[0], big.shape[1], channels)
    return big[scale : scale + size, scale : scale + size]


def _ellipse(
    size: int, cx: float, cy: float, a: float, b: float, theta: float
) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray] | None:
    """The window around an ellipse (semi-axes ``a`` along ``theta``, ``b`` across) as
    (slices, inside mask, normalised radius in [0, 1] inside), or None if off the canvas."""
    reach = max(a, b) + 1
    y0, y1 = max(0, int(cy - reach)), min(size, int(cy + reach) + 2)
    x0, x1 = max(0, int(cx - reach)), min(size, int(cx + reach) + 2)
    if y0 >= y1 or x0 >= x1:
        return None
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dx, dy = xx - cx, yy - cy
    u = (dx * np.cos(theta) + dy * np.sin(theta)) / a
    v = (-dx * np.sin(theta) + dy * np.cos(theta)) / b
    radius = u * u + v * v
    return (slice(y0, y1), slice(x0, x1)), radius <= 1.0, radius


def _paint(
    image: np.ndarray,
    mask: np.ndarray,
    shape: tuple[tuple[slice, slice], np.ndarray, np.ndarray] | None,
    colour: np.ndarray,
    label: int,
    rng: np.random.Generator,
    shade: float = 0.25,
) -> None:
    """Fill ``shape`` in ``image`` with ``colour`` (lighter at its centre line, with grain)
    and write ``label`` into ``mask``."""
    if shape is None:
        return
    window, inside, radius = shape
    if not inside.any():
        return
    light = 1.0 + shade * (0.5 - radius[inside])  # brighter along the middle
    grain = rng.normal(0.0, 0.03, (int(inside.sum()), 3)).astype(np.float32)
    patch = image[window]
    patch[inside] = colour[None, :] * light[:, None] + grain
    mask[window][inside] = label


def _clean_dir(folder: Path, pattern: re.Pattern[str], overwrite: bool) -> None:
    """Create ``folder``; refuse a non-empty one unless ``overwrite`` (then delete only the
    files this generator writes, i.e. names matching ``pattern``)."""
    folder.mkdir(parents=True, exist_ok=True)
    ours = [p for p in folder.iterdir() if p.is_file() and pattern.fullmatch(p.name)]
    others = [p for p in folder.iterdir() if p not in ours and not p.name.startswith(".")]
    if (ours or others) and not overwrite:
        raise FileExistsError(
            f"{folder} is not empty; choose a new folder or pass overwrite=True (which deletes "
            "only the stand-in's own files there)"
        )
    if others:
        raise FileExistsError(
            f"{folder} holds files that are not from this stand-in (e.g. {others[0].name}); "
            "they would be paired with the stand-in's files: choose an empty folder"
        )
    for path in ours:
        path.unlink()


def _write_png(path: Path, array: np.ndarray) -> None:
    Image.fromarray(array).save(path, format="PNG", optimize=False, compress_level=6)


def _describe(out_dir: Path, info: dict[str, Any]) -> dict[str, Any]:
    (out_dir / "standin.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return info


# ----------------------------------------------------------------------------------- plants
