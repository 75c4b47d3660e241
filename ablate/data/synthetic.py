"""A synthetic data set: textured shapes on noise, generated deterministically from a seed."""

from __future__ import annotations

import numpy as np

from ablate.data.sample import Sample
from ablate.spec import SyntheticSpec

SHAPES = ("circle", "rectangle", "triangle", "ellipse")


def synthetic_samples(spec: SyntheticSpec, task: str, num_classes: int) -> list[Sample]:
    """``spec.num_images`` samples ``synth_000``...; binary: shape vs background, multiclass:
    each class its own shape, brightness and stripe texture so that it can be learnt."""
    num_classes = 2 if task == "binary" else num_classes
    return [_sample(spec, index, task, num_classes) for index in range(spec.num_images)]


def _sample(spec: SyntheticSpec, index: int, task: str, num_classes: int) -> Sample:
    # One generator per image: adding images leaves the earlier ones unchanged.
    rng = np.random.default_rng([spec.seed, index])
    size, channels = spec.size, spec.channels
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    tilt = rng.uniform(-0.1, 0.1, size=2)
    image = 0.25 + tilt[0] * (xx / size - 0.5) + tilt[1] * (yy / size - 0.5)
    image = np.repeat(image[:, :, None], channels, axis=2)
    mask = np.zeros((size, size), dtype=np.uint8)
    for number in range(int(rng.integers(1, 5))):
        if task == "binary":
            cls, kind = 1, SHAPES[int(rng.integers(len(SHAPES)))]
        else:
            # The first shape cycles through the classes so every class occurs in the data set.
            first = 1 + index % (num_classes - 1)
            cls = first if number == 0 else int(rng.integers(1, num_classes))
            kind = SHAPES[(cls - 1) % len(SHAPES)]
        inside = _shape(kind, rng, xx, yy, size)
        image[inside] = _appearance(cls, num_classes, channels, xx, yy)[inside]
        mask[inside] = cls
    image += rng.normal(0.0, 0.06, size=image.shape).astype(np.float32)
    pixels = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return Sample(name=f"synth_{index:03d}", image=pixels, mask=mask)


def _appearance(
    cls: int, num_classes: int, channels: int, xx: np.ndarray, yy: np.ndarray
) -> np.ndarray:
    """(H, W, C) intensities of class ``cls``: a class-specific level, tint and stripes."""
    level = 0.5 + 0.4 * cls / max(num_classes - 1, 1)
    period = 3.0 + 2.0 * cls
    angle = np.pi * cls / max(num_classes, 2)
    stripes = 0.1 * np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period)
    tint = np.array([1.0 - 0.25 * ((cls + c) % 3 == 0) for c in range(channels)], np.float32)
    return (level + stripes)[:, :, None] * tint


def _shape(
    kind: str, rng: np.random.Generator, xx: np.ndarray, yy: np.ndarray, size: int
) -> np.ndarray:
    """Boolean (H, W) region of one randomly placed shape."""
    radius = rng.uniform(0.1, 0.25) * size
    cx, cy = rng.uniform(radius, size - radius, size=2)
    dx, dy = xx - cx, yy - cy
    if kind == "circle":
        return dx**2 + dy**2 <= radius**2
    if kind == "rectangle":
        half_w, half_h = radius * rng.uniform(0.5, 1.0, size=2)
        return (np.abs(dx) <= half_w) & (np.abs(dy) <= half_h)
    theta = rng.uniform(0, 2 * np.pi)
    if kind == "ellipse":
        a, b = radius, radius * rng.uniform(0.35, 0.6)
        u = (dx * np.cos(theta) + dy * np.sin(theta)) / a
        v = (-dx * np.sin(theta) + dy * np.cos(theta)) / b
        return u**2 + v**2 <= 1.0
    angles = theta + np.arange(3) * 2 * np.pi / 3
    corners = list(zip(cx + radius * np.cos(angles), cy + radius * np.sin(angles), strict=True))
    sides = [
        (xx - x0) * (y1 - y0) - (yy - y0) * (x1 - x0)
        for (x0, y0), (x1, y1) in zip(corners, corners[1:] + corners[:1], strict=True)
    ]
    return ((sides[0] >= 0) & (sides[1] >= 0) & (sides[2] >= 0)) | (
        (sides[0] <= 0) & (sides[1] <= 0) & (sides[2] <= 0)
    )
