"""``load_data``: from a DataSpec to decoded, checked, split samples with train statistics."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ablate.data import splits as split_modes
from ablate.data.fingerprint import SplitFingerprint, folder_fingerprints, synthetic_fingerprints
from ablate.data.formats import colour_bands, convert, warn_once
from ablate.data.io import Decoded, read_image, read_mask
from ablate.data.masks import to_labels
from ablate.data.pairing import Pair
from ablate.data.prepare import drop_empty, prepare
from ablate.data.sample import DataSplits, Sample
from ablate.data.stats import channel_stats, split_class_pixels
from ablate.data.synthetic import synthetic_samples
from ablate.errors import DataError
from ablate.spec import DataSpec


@dataclass(frozen=True)
class Raw:
    """A decoded sample before its image is brought to the common channel count."""

    name: str
    image: Decoded
    mask: np.ndarray
    source: str  # the image file (or the sample name), for messages


def load_data(spec: DataSpec) -> DataSplits:
    """Load, check and split the data set of ``spec``; bad input raises DataError.

    At load time (on the cached decoded arrays): masks become class ids (``mask_channel``,
    ``mask_threshold`` or ``mask_map``), images get one channel count (``channels``,
    ``keep_alpha``), no-data pixels (``nodata``) get ``ignore_index``, images and masks are
    upscaled (``upscale``), and with ``drop_empty`` all-background samples leave every split
    (after the split is made, so the assignment of the other samples does not change).
    """
    num_classes = spec.num_classes
    raw, pairs = _raw_splits(spec, num_classes)
    splits = _to_samples(raw, spec)
    train = splits["train"]
    channels = int(train[0].image.shape[2])
    derived = spec.derived.names
    if derived and channels < 3:
        raise DataError(
            f"data.derived: {', '.join(derived)} need the R, G, B bands (the first three "
            f"channels) but the images have {channels} channel(s); turn them off for this data"
        )
    dropped: dict[str, list[str]] = {}
    if spec.drop_empty:
        splits, dropped = drop_empty(splits, num_classes, spec.ignore_index)
        train = splits["train"]
    if spec.normalize == "none":
        mean, std = [0.0] * channels, [1.0] * channels
    else:
        mean, std = channel_stats(train, channels, spec.nodata)
    pixels = split_class_pixels(splits, num_classes, spec.ignore_index)
    return DataSplits(
        splits=splits,
        in_channels=channels + len(derived),
        # Derived channels are already min-max normalised to [0, 1] per image.
        mean=mean + [0.0] * len(derived),
        std=std + [1.0] * len(derived),
        split_pixels=pixels,
        derived=derived,
        class_names=spec.names,
        task=spec.task,
        dropped=dropped,
        fingerprints=_fingerprints(spec, splits, pairs, pixels),
    )


def _raw_splits(
    spec: DataSpec, num_classes: int
) -> tuple[dict[str, list[Raw]], dict[str, dict[str, Pair]]]:
    """Decoded images and class-id masks per split, capped by ``max_images``, and the file
    pairs they came from (none for synthetic data)."""
    if spec.synthetic is not None:
        samples = synthetic_samples(spec.synthetic, spec.task, num_classes)
        splits = split_modes.carve(samples, lambda s: s.name, spec)
        return {
            split: [Raw(s.name, Decoded(s.image), s.mask, s.name)
                    for s in items[: _cap(spec, split)]]
            for split, items in splits.items()
        }, {}
    # Capped before decoding: a smoke run reads only the images it uses.
    used = {split: items[: _cap(spec, split)] for split, items in _pairs(spec).items()}
    pairs = {split: {p.name: p for p in items} for split, items in used.items()}
    return {split: _load_pairs(items, spec) for split, items in used.items()}, pairs


def _to_samples(raw: dict[str, list[Raw]], spec: DataSpec) -> dict[str, list[Sample]]:
    """Every image with the common channel count, then no-data and upscaling applied."""
    images = [(r.name, r.image) for items in raw.values() for r in items]
    colour = colour_bands(images, spec.channels, spec.keep_alpha)
    if spec.keep_alpha:
        without = sum(not image.alpha for _, image in images)
        opaque = f"; {without} image(s) have none and get an opaque one" if without else ""
        warn_once(
            f"data.keep_alpha: the alpha band is model input channel {colour + 1} of "
            f"{colour + 1}{opaque}"
        )
    return {
        split: [
            prepare(Sample(name=r.name, image=convert(r.source, r.image, colour, spec.keep_alpha),
                           mask=r.mask), spec.nodata, spec.ignore_index, spec.upscale,
                    spec.resize)
            for r in items
        ]
        for split, items in raw.items()
    }


def _fingerprints(
    spec: DataSpec, splits: dict[str, list[Sample]], pairs: dict[str, dict[str, Pair]],
    pixels: dict[str, np.ndarray],
) -> dict[str, SplitFingerprint]:
    """Per split, the digest of the data the samples came from (:mod:`ablate.data.fingerprint`)."""
    if spec.synthetic is not None:
        return synthetic_fingerprints(spec.synthetic.model_dump(mode="json"), splits, pixels,
                                      spec.names)
    return folder_fingerprints(Path(spec.root or "."), splits, pairs, pixels, spec.names)


def _cap(spec: DataSpec, split: str) -> int | None:
    """``data.max_images`` for ``split`` (None: all)."""
    return {str(k): v for k, v in (spec.max_images or {}).items()}.get(split)


def _pairs(spec: DataSpec) -> dict[str, list[Pair]]:
    """Image/mask file pairs per split (README "Splits")."""
    if spec.root is None:
        raise DataError("data.root: not set; give the folder of the data set")
    root = Path(spec.root)
    if not root.is_dir():
        raise DataError(f"data.root: directory {root} not found; check data.root")
    return split_modes.folder_splits(root, spec)


def _load_pairs(pairs: Sequence[Pair], spec: DataSpec) -> list[Raw]:
    # Decoding (PIL, tifffile, zlib) releases the GIL, so threads overlap well.
    workers = min(8, os.cpu_count() or 1, len(pairs))
    if workers <= 1:
        return [_load_pair(pair, spec) for pair in pairs]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda pair: _load_pair(pair, spec), pairs))


def _load_pair(pair: Pair, spec: DataSpec) -> Raw:
    image = read_image(pair.image)
    stored = read_mask(pair.mask, spec.mask_channel)
    if stored.shape != image.pixels.shape[:2]:
        raise DataError(
            f"{pair.mask}: mask is {stored.shape[0]}x{stored.shape[1]} (HxW) but its image "
            f"{pair.image.name} is {image.pixels.shape[0]}x{image.pixels.shape[1]}; masks must "
            "match their image"
        )
    mask = to_labels(stored, spec.mask_map, spec.num_classes, spec.ignore_index, pair.mask,
                     spec.mask_threshold)
    return Raw(pair.name, image, mask, str(pair.image))
