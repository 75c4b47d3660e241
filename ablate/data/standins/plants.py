"""The plants stand-in: soil with crop rows and rare weeds, raw labels to be remapped."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ablate.data.standins._draw import (
    _clean_dir,
    _describe,
    _ellipse,
    _paint,
    _smooth_noise,
    _write_png,
)

PLANT_LABELS = {0: "soil", 1: "crop leaf", 2: "crop stem", 3: "weed leaf", 4: "weed stem"}
PLANT_MASK_MAP = {1: 1, 2: 1, 3: 2, 4: 2}
PLANT_CLASSES = ["soil", "crop", "weed"]
SOIL = np.array([0.42, 0.31, 0.21], np.float32)
CROP_LEAF = np.array([0.24, 0.55, 0.14], np.float32)
CROP_STEM = np.array([0.62, 0.66, 0.30], np.float32)  # pale yellow-green centre
WEED_LEAF = np.array([0.10, 0.36, 0.30], np.float32)  # dark blue-green, narrow blades
WEED_STEM = np.array([0.58, 0.20, 0.24], np.float32)  # reddish centre
PLANT_FILES = re.compile(r"plant_\d+\.png")


def write_plants(
    out_dir: Path | str,
    num_images: int = 40,
    size: int = 128,
    seed: int = 0,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Field images with crop rows and rare weeds: ``images/plant_NNN.png`` (RGB 8-bit) and
    ``masks/plant_NNN.png`` (8-bit raw labels 0 soil, 1/2 crop leaf/stem, 3/4 weed leaf/stem).

    Weeds cover about 1-3 % of the pixels. Returns the description (also written to
    ``out_dir/standin.json``): label values, ``mask_map`` for 3 classes, a suggested
    ``data:`` section and the pixel fractions per raw label.
    """
    if num_images < 1 or size < 32:
        raise ValueError("write_plants needs num_images >= 1 and size >= 32")
    out_dir = Path(out_dir)
    images_dir, masks_dir = out_dir / "images", out_dir / "masks"
    for folder in (images_dir, masks_dir):
        _clean_dir(folder, PLANT_FILES, overwrite)
    counts = np.zeros(len(PLANT_LABELS), np.int64)
    for index in range(num_images):
        image, mask = _plant_image(np.random.default_rng([seed, index]), size)
        counts += np.bincount(mask.ravel(), minlength=len(PLANT_LABELS))
        name = f"plant_{index:03d}.png"
        _write_png(images_dir / name, image)
        _write_png(masks_dir / name, mask)
    fractions = {PLANT_LABELS[v]: float(c / counts.sum()) for v, c in enumerate(counts)}
    return _describe(out_dir, {
        "kind": "plants",
        "images": num_images,
        "size": size,
        "seed": seed,
        "labels": {str(v): name for v, name in PLANT_LABELS.items()},
        "mask_map": {str(k): v for k, v in PLANT_MASK_MAP.items()},
        "class_names": PLANT_CLASSES,
        "fractions": fractions,
        "data": {
            "task": "multiclass",
            "num_classes": 3,
            "class_names": PLANT_CLASSES,
            "root": str(out_dir),
            "images": "images",
            "masks": "masks",
            "mask_map": dict(PLANT_MASK_MAP),
        },
    })


def _plant_image(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    # Soil: brown, lit differently per image, with coarse and fine texture and a few clods.
    gain = rng.uniform(0.85, 1.15)
    soil = SOIL * gain
    texture = (0.06 * _smooth_noise(rng, size, 24) + 0.05 * _smooth_noise(rng, size, 6)
               + 0.04 * _smooth_noise(rng, size, 2))
    image = soil[None, None, :] * (1.0 + texture)
    mask = np.zeros((size, size), np.uint8)
    for _ in range(int(rng.integers(4, 10))):  # clods: darker or lighter brown lumps
        cx, cy = rng.uniform(0, size, 2)
        a, b = rng.uniform(1.5, 4.0, 2)
        shape = _ellipse(size, cx, cy, a, b, rng.uniform(0, np.pi))
        if shape is not None:
            window, inside, _ = shape
            image[window][inside] *= rng.uniform(0.7, 1.25)

    # Weeds first (crops may cover them): narrow dark blue-green blades round a red centre,
    # anywhere in the field.
    for _ in range(int(rng.poisson(4.0))):
        cx, cy = rng.uniform(4, size - 4, 2)
        blades = int(rng.integers(4, 7))
        turn = rng.uniform(0, 2 * np.pi)
        for k in range(blades):
            angle = turn + 2 * np.pi * k / blades + rng.uniform(-0.3, 0.3)
            length = rng.uniform(4.0, 6.5)
            bx, by = cx + 0.9 * length * np.cos(angle), cy + 0.9 * length * np.sin(angle)
            _paint(image, mask, _ellipse(size, bx, by, length, rng.uniform(1.0, 1.6), angle),
                   WEED_LEAF, 3, rng, shade=0.1)
        _paint(image, mask, _ellipse(size, cx, cy, 1.8, 1.8, 0.0), WEED_STEM, 4, rng)

    # Crop rows: near-vertical, evenly spaced; rosettes of broad leaves with a pale centre.
    spacing = size / rng.uniform(2.6, 3.4)
    tilt = rng.uniform(-0.15, 0.15)
    offset = rng.uniform(0, spacing)
    step = rng.uniform(22, 28)
    x = offset - spacing
    while x < size + spacing:
        y = rng.uniform(0, step) - step
        while y < size + step:
            cx = x + tilt * (y - size / 2) + rng.normal(0, 1.5)
            cy = y + rng.normal(0, 2.0)
            if rng.random() < 0.9:  # a few gaps in the row
                _crop_plant(image, mask, rng, size, cx, cy)
            y += step
        x += spacing
    image += rng.normal(0.0, 0.015, image.shape).astype(np.float32)
    pixels = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return pixels, mask


def _crop_plant(
    image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, size: int, cx: float, cy: float
) -> None:
    leaves = int(rng.integers(5, 8))
    length = rng.uniform(5.5, 8.5)
    turn = rng.uniform(0, 2 * np.pi)
    colour = CROP_LEAF * rng.uniform(0.9, 1.1)
    for k in range(leaves):
        angle = turn + 2 * np.pi * k / leaves + rng.uniform(-0.2, 0.2)
        reach = length * rng.uniform(0.85, 1.1)
        lx, ly = cx + 0.95 * reach * np.cos(angle), cy + 0.95 * reach * np.sin(angle)
        _paint(image, mask, _ellipse(size, lx, ly, reach, reach * 0.45, angle), colour, 1, rng)
    _paint(image, mask, _ellipse(size, cx, cy, 0.3 * length, 0.3 * length, 0.0), CROP_STEM, 2,
           rng)


# -------------------------------------------------------------------------------- satellite
