"""Synthetic stand-in data sets written as files, for trying a workflow without the real data.

Two kinds, each written as ``out_dir/images/*`` + ``out_dir/masks/*.png`` so that the folder
pipeline (decoding, pairing, mask_map, nodata, group split) is exercised end to end:

- ``plants``: RGB 8-bit field images, soil with crop rows and rare weeds; masks with *raw*
  label values (0 soil, 1 crop leaf, 2 crop stem, 3 weed leaf, 4 weed stem) that
  ``mask_map: {1: 1, 2: 1, 3: 2, 4: 2}`` turns into 3 classes (soil, crop, weed).
- ``satellite``: 16-bit 4-band (R, G, B, NIR) GeoTIFF-like tiles with no-data (0) edge
  strips, thin roads and rivers as the positive class (binary masks 0/1), and a site prefix
  in every file name (``siteA_000``) for a group-aware split.

Everything is drawn from ``numpy.random.default_rng([seed, ...])`` with one generator per
image, so the same arguments give byte-identical files. ``make_standin(kind, out_dir,
**kwargs)`` is the entry point; it returns (and writes to ``out_dir/standin.json``) a
description with the label values and a suggested ``data:`` section.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import tifffile
from PIL import Image

KINDS = ("plants", "satellite")

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
        shape = _ellipse(size, *rng.uniform(0, size, 2), *rng.uniform(1.5, 4.0, 2),
                         rng.uniform(0, np.pi))
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

SATELLITE_FILES = re.compile(r"site[A-Z]_\d+\.(tif|png)")
SCALE = 10000.0  # reflectance 1.0 is stored as 10000 (as e.g. Sentinel-2 L2A)
# Reflectance (R, G, B, NIR) of the land covers; roads are flat grey, water is dark in NIR.
COVERS = np.array(
    [
        [0.05, 0.09, 0.04, 0.40],  # crops
        [0.20, 0.16, 0.11, 0.26],  # bare soil
        [0.07, 0.10, 0.05, 0.30],  # grassland
        [0.03, 0.05, 0.03, 0.27],  # forest
    ],
    np.float32,
)
ROAD = np.array([0.21, 0.21, 0.21, 0.20], np.float32)
WATER = np.array([0.04, 0.06, 0.08, 0.015], np.float32)


def write_satellite(
    out_dir: Path | str,
    num_images: int = 32,
    size: int = 128,
    seed: int = 0,
    sites: int = 5,
    overwrite: bool = False,
) -> dict[str, Any]:
    """4-band 16-bit tiles ``images/siteX_NNN.tif`` ((H, W, 4) uint16: R, G, B, NIR
    reflectance x 10000) with 0/1 masks ``masks/siteX_NNN.png`` (1: road or river).

    Tile ``i`` belongs to site ``i % sites`` (sites A, B, ...; each has its own land-cover mix
    and illumination). About a third of the tiles have a no-data strip (0 in every band, mask
    0) along one edge; one tile in five per site has no road or river at all. Positive pixels
    are about 2-3 % of all pixels. Returns the description (also in ``out_dir/standin.json``).
    """
    if num_images < 1 or size < 32 or not 1 <= sites <= 26:
        raise ValueError("write_satellite needs num_images >= 1, size >= 32 and 1..26 sites")
    out_dir = Path(out_dir)
    images_dir, masks_dir = out_dir / "images", out_dir / "masks"
    for folder in (images_dir, masks_dir):
        _clean_dir(folder, SATELLITE_FILES, overwrite)
    looks = [_site_look(np.random.default_rng([seed, 1_000_000, s])) for s in range(sites)]
    positive = valid = nodata_pixels = 0
    nodata_tiles = empty_tiles = 0
    for index in range(num_images):
        site, number = index % sites, index // sites
        rng = np.random.default_rng([seed, index])
        image, mask, empty = _satellite_tile(rng, size, looks[site], structures=number % 5 != 4)
        name = f"site{chr(ord('A') + site)}_{number:03d}"
        tifffile.imwrite(images_dir / f"{name}.tif", image, photometric="minisblack",
                         planarconfig="contig", compression="zlib")
        _write_png(masks_dir / f"{name}.png", mask)
        positive += int(mask.sum())
        nodata_pixels += int(empty.sum())
        valid += int((~empty).sum())
        nodata_tiles += bool(empty.any())
        empty_tiles += not mask.any()
    total = num_images * size * size
    return _describe(out_dir, {
        "kind": "satellite",
        "images": num_images,
        "size": size,
        "seed": seed,
        "sites": [f"site{chr(ord('A') + s)}" for s in range(sites)],
        "bands": ["red", "green", "blue", "nir"],
        "labels": {"0": "background (and no-data)", "1": "road or river"},
        "positive_ratio": positive / total,
        "positive_ratio_valid": positive / max(valid, 1),
        "nodata_fraction": nodata_pixels / total,
        "nodata_tiles": nodata_tiles,
        "empty_tiles": empty_tiles,
        "data": {
            "task": "binary",
            "root": str(out_dir),
            "images": "images",
            "masks": "masks",
            "nodata": 0,
            "ignore_index": 255,
            "group_pattern": r"^(site[A-Z])_",
            "split_ratios": {"train": 0.6, "val": 0.2, "test": 0.2},
        },
    })


def _site_look(rng: np.random.Generator) -> dict[str, Any]:
    weights = rng.dirichlet(np.full(len(COVERS), 1.5))
    return {"weights": weights, "gain": rng.uniform(0.85, 1.15), "haze": rng.uniform(0, 0.03)}


def _satellite_tile(
    rng: np.random.Generator, size: int, look: dict[str, Any], structures: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    # Land cover: Voronoi parcels, each one cover type with its own brightness and texture.
    parcels = int(rng.integers(6, 14))
    centres = rng.uniform(0, size, (parcels, 2)).astype(np.float32)
    distance = (yy[None] - centres[:, 0, None, None]) ** 2 + (
        xx[None] - centres[:, 1, None, None]
    ) ** 2
    parcel = np.argmin(distance, axis=0)
    kinds = rng.choice(len(COVERS), size=parcels, p=look["weights"])
    levels = rng.uniform(0.85, 1.15, parcels).astype(np.float32)
    image = COVERS[kinds][parcel] * levels[parcel][:, :, None]
    image *= 1.0 + 0.08 * _smooth_noise(rng, size, 8, 1) + 0.04 * _smooth_noise(rng, size, 2, 1)

    mask = np.zeros((size, size), np.uint8)
    if structures:
        for _ in range(1 if rng.random() < 0.75 else 2):
            water = rng.random() < 0.4
            across = _line_distance(rng, xx, yy, size, meander=water)
            width = rng.uniform(2.0, 3.2) if not water else rng.uniform(2.2, 3.6)
            half = width / 2
            cover = np.clip(half + 0.5 - across, 0.0, 1.0)  # anti-aliased edge in the image
            colour = (WATER if water else ROAD) * rng.uniform(0.9, 1.1)
            image = image * (1 - cover[:, :, None]) + colour[None, None, :] * cover[:, :, None]
            mask[across <= half] = 1
    image = image * look["gain"]
    image[:, :, 2] += look["haze"]
    image += rng.normal(0.0, 0.004, image.shape).astype(np.float32)
    pixels = np.clip(image * SCALE + 0.5, 1, 65535).astype(np.uint16)  # 0 is no-data only

    empty = np.zeros((size, size), bool)
    if rng.random() < 0.35:  # a slanted no-data strip along one edge (a swath border)
        side = int(rng.integers(4))
        depth = rng.uniform(0.1, 0.3) * size
        slope = rng.uniform(-0.2, 0.2)
        along, into = (xx, yy) if side < 2 else (yy, xx)
        edge = depth + slope * (along - size / 2)
        empty = into < edge if side % 2 == 0 else into > size - 1 - edge
        pixels[empty] = 0
        mask[empty] = 0
    return pixels, mask, empty


def _line_distance(
    rng: np.random.Generator, xx: np.ndarray, yy: np.ndarray, size: int, meander: bool
) -> np.ndarray:
    """Distance (pixels) of every pixel to a random line (or meandering curve) across the tile."""
    theta = rng.uniform(0, np.pi)
    cx, cy = rng.uniform(0.25 * size, 0.75 * size, 2)
    u = (xx - cx) * np.cos(theta) + (yy - cy) * np.sin(theta)  # along the line
    v = -(xx - cx) * np.sin(theta) + (yy - cy) * np.cos(theta)  # across it
    if not meander:
        return np.abs(v)
    amplitude = rng.uniform(0.04, 0.1) * size
    period = rng.uniform(0.6, 1.2) * size
    phase = rng.uniform(0, 2 * np.pi)
    k = 2 * np.pi / period
    offset = amplitude * np.sin(k * u + phase)
    slope = amplitude * k * np.cos(k * u + phase)
    return np.abs(v - offset) / np.sqrt(1.0 + slope * slope)


# ------------------------------------------------------------------------------- entry point

WRITERS: dict[str, Callable[..., dict[str, Any]]] = {
    "plants": write_plants,
    "satellite": write_satellite,
}


def make_standin(kind: str, out_dir: Path | str, **kwargs: Any) -> dict[str, Any]:
    """Write the stand-in data set ``kind`` ("plants" or "satellite") into ``out_dir``.

    ``kwargs`` go to ``write_plants``/``write_satellite`` (``num_images``, ``size``, ``seed``,
    ``overwrite``; satellite also ``sites``). Returns the description dict (``data`` holds a
    suggested ``data:`` spec section with ``root`` set to ``out_dir``).
    Raises ValueError for an unknown kind or bad sizes, FileExistsError for a non-empty folder.
    """
    if kind not in WRITERS:
        raise ValueError(f"unknown stand-in '{kind}'; choose one of {', '.join(KINDS)}")
    return WRITERS[kind](out_dir, **kwargs)
