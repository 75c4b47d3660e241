"""``load_data``: from a DataSpec to decoded, checked, split samples with train statistics."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ablate.data import splits as split_modes
from ablate.data.fingerprint import SplitFingerprint, folder_fingerprints, synthetic_fingerprints
from ablate.data.io import read_image, read_mask
from ablate.data.masks import map_mask
from ablate.data.pairing import Pair, find_dir, pair_files
from ablate.data.prepare import drop_empty, prepare
from ablate.data.sample import DataSplits, Sample
from ablate.data.stats import channel_stats, split_class_pixels
from ablate.data.synthetic import synthetic_samples
from ablate.errors import DataError
from ablate.spec import DataSpec


def load_data(spec: DataSpec) -> DataSplits:
    """Load, check and split the data set of ``spec``; bad input raises DataError.

    At load time (on the cached decoded arrays): masks are mapped (``mask_map``), no-data pixels
    (``nodata``) get ``ignore_index``, images and masks are upscaled (``upscale``), and with
    ``drop_empty`` all-background samples leave every split (after the split is made, so the
    assignment of the other samples does not change).
    """
    num_classes = spec.num_classes
    pairs: dict[str, dict[str, Pair]] = {}
    if spec.synthetic is not None:
        samples = [
            _prepare(s, spec) for s in synthetic_samples(spec.synthetic, spec.task, num_classes)
        ]
        splits = split_modes.by_ratios(
            samples, lambda s: s.name, spec.split_ratios, spec.split_seed, spec.group_pattern
        )
        splits = {split: items[: _cap(spec, split)] for split, items in splits.items()}
    else:
        # Capped before decoding: a smoke run reads only the images it uses.
        used = {split: items[: _cap(spec, split)] for split, items in _pairs(spec).items()}
        pairs = {split: {p.name: p for p in items} for split, items in used.items()}
        splits = {split: _load_pairs(items, spec) for split, items in used.items()}
    _check_channels(splits)
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
    return (spec.max_images or {}).get(split)


def _pairs(spec: DataSpec) -> dict[str, list[Pair]]:
    """Image/mask file pairs per split, by whichever split mode the spec uses."""
    if spec.root is None:
        raise DataError("data.root: not set; give the folder of the data set")
    root = Path(spec.root)
    if not root.is_dir():
        raise DataError(f"data.root: directory {root} not found; check data.root")
    if spec.split_dirs is not None:
        return split_modes.by_dirs(root, spec.split_dirs)
    assert spec.images is not None and spec.masks is not None  # DataSpec validation ensures it
    images = find_dir(root, spec.images, "data.images")
    masks = find_dir(root, spec.masks, "data.masks")
    pairs = pair_files(images, masks, "data.images", "data.masks")
    if spec.split_lists is not None:
        return split_modes.by_lists(root, pairs, spec.split_lists)
    return split_modes.by_ratios(
        pairs, lambda p: p.image.name, spec.split_ratios, spec.split_seed, spec.group_pattern
    )


def _load_pairs(pairs: Sequence[Pair], spec: DataSpec) -> list[Sample]:
    # Decoding (PIL, tifffile, zlib) releases the GIL, so threads overlap well.
    workers = min(8, os.cpu_count() or 1, len(pairs))
    if workers <= 1:
        return [_load_pair(pair, spec) for pair in pairs]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda pair: _load_pair(pair, spec), pairs))


def _load_pair(pair: Pair, spec: DataSpec) -> Sample:
    image = read_image(pair.image)
    raw = read_mask(pair.mask)
    if raw.shape != image.shape[:2]:
        raise DataError(
            f"{pair.mask}: mask is {raw.shape[0]}x{raw.shape[1]} (HxW) but its image "
            f"{pair.image.name} is {image.shape[0]}x{image.shape[1]}; masks must match their image"
        )
    mask = map_mask(raw, spec.mask_map, spec.num_classes, spec.ignore_index, pair.mask)
    return _prepare(Sample(name=pair.name, image=image, mask=mask), spec)


def _prepare(sample: Sample, spec: DataSpec) -> Sample:
    return prepare(sample, spec.nodata, spec.ignore_index, spec.upscale)


def _check_channels(splits: dict[str, list[Sample]]) -> None:
    first = splits["train"][0]
    for samples in splits.values():
        for sample in samples:
            if sample.image.shape[2] != first.image.shape[2]:
                raise DataError(
                    f"images have different channel counts: {first.name} has "
                    f"{first.image.shape[2]}, {sample.name} has {sample.image.shape[2]}; "
                    "convert them to one format (e.g. all RGB or all grayscale)"
                )
