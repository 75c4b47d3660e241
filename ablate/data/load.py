"""``load_data``: from a DataSpec to decoded, checked, split samples with train statistics.

The whole data set is read in one pass that goes on past bad files: every problem found
(:mod:`ablate.data.problems`) is raised at the end, together, as one DataError.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ablate.data import splits as split_modes
from ablate.data.fingerprint import SplitFingerprint, folder_fingerprints, synthetic_fingerprints
from ablate.data.formats import colour_bands, convert
from ablate.data.io import Decoded, read_colour_mask, read_image, read_mask
from ablate.data.masks import colour_labels, fit_mask, to_labels
from ablate.data.pairing import Pair
from ablate.data.prepare import drop_empty, prepare
from ablate.data.problems import Problems
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
    mask: np.ndarray  # class ids
    source: str  # the image file (or the sample name), for messages


@dataclass
class RawSplits:
    """The decoded samples of each split (those that could be read) and the file pairs of a
    folder data set (all of them, read or not; none for synthetic data)."""

    samples: dict[str, list[Raw]]
    pairs: dict[str, dict[str, Pair]]


def load_data(spec: DataSpec) -> DataSplits:
    """Load, check and split the data set of ``spec``; bad input raises one DataError that
    lists every problem found (one line each).

    At load time (on the cached decoded arrays): masks become class ids (``mask_channel``,
    ``mask_threshold``, ``mask_map`` or ``mask_colors``; ``mask_fit``), images get one channel
    count (``channels``, ``keep_alpha``), no-data pixels (``nodata``) get ``ignore_index``,
    images and masks are upscaled (``upscale``), and with ``drop_empty`` all-background samples
    leave every split (after the split is made, so the assignment of the other samples does
    not change).
    """
    problems = Problems()
    raw = problems.attempt(lambda: read_splits(spec, problems))
    splits = to_samples(raw.samples, spec, problems) if raw is not None else {}
    problems.raise_if_any()
    assert raw is not None  # a failed read is a problem, raised above
    return finish(splits, raw.pairs, spec)


def finish(splits: dict[str, list[Sample]], pairs: dict[str, dict[str, Pair]],
           spec: DataSpec) -> DataSplits:
    """The loaded data set: derived channels checked, empty samples dropped, statistics."""
    num_classes = spec.num_classes
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


def read_splits(spec: DataSpec, problems: Problems, cap: bool = True) -> RawSplits:
    """Decoded images and class-id masks per split (capped by ``max_images`` when ``cap``);
    a file that cannot be used is a problem and its sample is left out. Raises DataError
    when there is no data set to read (no root, a missing folder, no pairs, an empty split)."""
    if spec.synthetic is not None:
        samples = synthetic_samples(spec.synthetic, spec.task, spec.num_classes)
        splits = split_modes.carve(samples, lambda s: s.name, spec, problems)
        return RawSplits({
            split: [Raw(s.name, Decoded(s.image), s.mask, s.name)
                    for s in items[: image_cap(spec, split) if cap else None]]
            for split, items in splits.items()
        }, {})
    # Capped before decoding: a smoke run reads only the images it uses.
    used = {split: items[: image_cap(spec, split) if cap else None]
            for split, items in _pairs(spec, problems).items()}
    pairs = {split: {p.name: p for p in items} for split, items in used.items()}
    return RawSplits({split: _load_pairs(items, spec, problems)
                      for split, items in used.items()}, pairs)


def to_samples(raw: dict[str, list[Raw]], spec: DataSpec,
               problems: Problems) -> dict[str, list[Sample]]:
    """Every image with the common channel count, then no-data and upscaling applied; an
    image that cannot get it is a problem (and left out)."""
    images = [(r.name, r.source, r.image) for items in raw.values() for r in items]
    if not images:
        return {split: [] for split in raw}
    colour = colour_bands(images, spec.channels, spec.keep_alpha, problems)
    if spec.keep_alpha:
        without = sum(not image.alpha for _, _, image in images)
        opaque = f"; {without} image(s) have none and get an opaque one" if without else ""
        problems.warn(
            f"data.keep_alpha: the alpha band is model input channel {colour + 1} of "
            f"{colour + 1}{opaque}"
        )
    out: dict[str, list[Sample]] = {}
    for split, items in raw.items():
        out[split] = []
        for r in items:
            if spec.channels is None and r.image.colour_bands != colour:
                continue  # already a problem (another channel count)
            try:
                pixels = convert(r.source, r.image, colour, spec.keep_alpha)
            except DataError as err:
                problems.add_error(err, "images that cannot get data.channels", r.source)
                continue
            out[split].append(prepare(Sample(name=r.name, image=pixels, mask=r.mask),
                                      spec.nodata, spec.ignore_index, spec.upscale, spec.resize))
    return out


def _fingerprints(
    spec: DataSpec, splits: dict[str, list[Sample]], pairs: dict[str, dict[str, Pair]],
    pixels: dict[str, np.ndarray],
) -> dict[str, SplitFingerprint]:
    """Per split, the digest of the data the samples came from (:mod:`ablate.data.fingerprint`)."""
    if spec.synthetic is not None:
        return synthetic_fingerprints(spec.synthetic.model_dump(mode="json"), splits, pixels,
                                      spec.names)
    return folder_fingerprints(Path(spec.root or "."), splits, pairs, pixels, spec.names)


def image_cap(spec: DataSpec, split: str) -> int | None:
    """``data.max_images`` for ``split`` (None: all)."""
    return {str(k): v for k, v in (spec.max_images or {}).items()}.get(split)


def _pairs(spec: DataSpec, problems: Problems) -> dict[str, list[Pair]]:
    """Image/mask file pairs per split (docs/data.md "Splits")."""
    if spec.root is None:
        raise DataError("data.root: not set; give the folder of the data set")
    root = Path(spec.root)
    if not root.is_dir():
        raise DataError(f"data.root: directory {root} not found; check data.root")
    return split_modes.folder_splits(root, spec, problems)


def _load_pairs(pairs: Sequence[Pair], spec: DataSpec, problems: Problems) -> list[Raw]:
    """The pairs decoded (in order); each one's problems are added in order too."""
    # Decoding (PIL, tifffile, zlib) releases the GIL, so threads overlap well.
    workers = min(8, os.cpu_count() or 1, len(pairs))
    if workers <= 1:
        results = [_load_pair(pair, spec) for pair in pairs]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(lambda pair: _load_pair(pair, spec), pairs))
    out = []
    for raw, found in results:
        problems.extend(found)
        if raw is not None:
            out.append(raw)
    return out


def _load_pair(pair: Pair, spec: DataSpec) -> tuple[Raw | None, Problems]:
    """One pair decoded, its mask as class ids fitted to the image; every problem of the pair
    (the image, the mask, their sizes) is found, not only the first."""
    problems = Problems(echo=False)
    image = problems.attempt(lambda: read_image(pair.image), "unreadable images",
                             pair.image.name)
    colours = spec.colour_classes
    if colours:
        stored = problems.attempt(lambda: read_colour_mask(pair.mask), "unreadable masks",
                                  pair.mask.name)
    else:
        stored = problems.attempt(lambda: read_mask(pair.mask, spec.mask_channel),
                                  "unreadable masks", pair.mask.name)
    if stored is None:
        return None, problems
    if colours:
        labels = problems.attempt(lambda: colour_labels(
            stored, colours, spec.num_classes, spec.ignore_index, pair.mask), where=pair.mask.name)
    else:
        labels = problems.attempt(lambda: to_labels(
            stored, spec.mask_map, spec.num_classes, spec.ignore_index, pair.mask,
            spec.mask_threshold), where=pair.mask.name)
    if image is None:
        return None, problems
    size = image.pixels.shape[:2]
    if stored.shape != size:
        fitted = problems.attempt(lambda: fit_mask(
            stored if labels is None else labels, size, spec.mask_fit, spec.ignore_index,
            pair.mask, pair.image.name), where=pair.mask.name)
        if fitted is None or labels is None:
            return None, problems
        how = "cropped" if spec.mask_fit == "crop" else "resized"
        problems.warn(f"{pair.mask}: mask is {stored.shape[0]}x{stored.shape[1]} (HxW), its "
                      f"image {size[0]}x{size[1]}; {how} to the image's size (data.mask_fit: "
                      f"{spec.mask_fit})")
        labels = fitted
    if labels is None:
        return None, problems
    return Raw(pair.name, image, labels, str(pair.image)), problems
