"""The satellite stand-in: 16-bit 4-band tiles with no-data strips and thin structures."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from ablate.data.standins._draw import (
    _clean_dir,
    _describe,
    _smooth_noise,
    _write_png,
)

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
    counts = {"positive": positive, "valid": valid, "nodata_pixels": nodata_pixels,
              "nodata_tiles": nodata_tiles, "empty_tiles": empty_tiles}
    return _describe(out_dir, _satellite_info(out_dir, num_images, size, seed, sites, counts))


def _satellite_info(
    out_dir: Path, num_images: int, size: int, seed: int, sites: int, counts: dict[str, int]
) -> dict[str, Any]:
    total = num_images * size * size
    return {
        "kind": "satellite",
        "images": num_images,
        "size": size,
        "seed": seed,
        "sites": [f"site{chr(ord('A') + s)}" for s in range(sites)],
        "bands": ["red", "green", "blue", "nir"],
        "labels": {"0": "background (and no-data)", "1": "road or river"},
        "positive_ratio": counts["positive"] / total,
        "positive_ratio_valid": counts["positive"] / max(counts["valid"], 1),
        "nodata_fraction": counts["nodata_pixels"] / total,
        "nodata_tiles": counts["nodata_tiles"],
        "empty_tiles": counts["empty_tiles"],
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
    }


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
