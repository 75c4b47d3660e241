"""Which data a run saw: per split, a digest of its files and a profile (counts, class balance).

- Folder data: SHA-256 over the split's samples in split order, each as its image and mask
  paths relative to ``data.root`` and the SHA-256 of each file's bytes (hashed once per
  process, when the decode cache reads the file: :func:`ablate.data.io.file_digest`). A changed
  pixel, a renamed, added or removed file, or another split assignment changes the digest;
  moving the whole folder does not.
- Synthetic data: SHA-256 over the synthetic spec and the split's sample names.

How the files are read afterwards (``mask_map``, ``size``, ``upscale``, ...) belongs to the run's
configuration, not to the digest: two runs with equal digests read the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ablate.data.io import file_digest
from ablate.data.pairing import Pair
from ablate.data.sample import Sample

DIGEST_LENGTH = 32  # hex characters (128 bits); MLflow keeps dataset digests of <= 36


@dataclass(frozen=True)
class SplitFingerprint:
    """The data one split of a run consisted of."""

    split: str
    name: str  # "<data set>/<split>", e.g. "membrane/train"
    digest: str
    source: str  # the data folder (absolute), or "synthetic"
    images: int
    pixels: int  # labelled pixels at the loaded resolution (ignored pixels excluded)
    # class -> share of the labelled pixels (None when the split has none)
    class_balance: dict[str, float | None] = field(default_factory=dict)
    files: int = 0  # files hashed (images and masks)

    def profile(self) -> dict[str, Any]:
        """Counts and class balance, as MLflow shows a data set's profile."""
        return {"images": self.images, "pixels": self.pixels, "files": self.files,
                "class_balance": self.class_balance}


def folder_fingerprints(
    root: Path,
    splits: Mapping[str, Sequence[Sample]],
    pairs: Mapping[str, Mapping[str, Pair]],
    split_pixels: Mapping[str, np.ndarray],
    class_names: Sequence[str],
) -> dict[str, SplitFingerprint]:
    """Fingerprints of folder data: ``pairs[split][name]`` gives each sample's files."""
    out = {}
    for split, samples in splits.items():
        lines = []
        for sample in samples:
            pair = pairs[split][sample.name]
            for path in (pair.image, pair.mask):
                lines.append(f"{_relative(path, root)}\t{file_digest(path)}")
        out[split] = _fingerprint(split, root.name, str(root), lines, len(samples),
                                  split_pixels.get(split), class_names, files=len(lines))
    return out


def synthetic_fingerprints(
    synthetic: Mapping[str, Any],
    splits: Mapping[str, Sequence[Sample]],
    split_pixels: Mapping[str, np.ndarray],
    class_names: Sequence[str],
) -> dict[str, SplitFingerprint]:
    """Fingerprints of synthetic data: its spec (``synthetic``, as plain data) and the names
    of each split's samples."""
    head = json.dumps(dict(synthetic), sort_keys=True)
    return {split: _fingerprint(split, "synthetic", "synthetic",
                                [head, *(s.name for s in samples)], len(samples),
                                split_pixels.get(split), class_names)
            for split, samples in splits.items()}


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:  # a split list may name files outside the root
        return path.as_posix()


def _fingerprint(
    split: str, dataset: str, source: str, lines: list[str], images: int,
    pixels: np.ndarray | None, class_names: Sequence[str], files: int = 0,
) -> SplitFingerprint:
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()[:DIGEST_LENGTH]
    counts = np.asarray(pixels if pixels is not None else [], dtype=np.int64)
    total = int(counts.sum())
    balance = {name: (int(counts[i]) / total if total else None)
               for i, name in enumerate(class_names) if i < counts.size}
    return SplitFingerprint(split, f"{dataset}/{split}", digest, source, images, total,
                            balance, files)
