"""``ablate check``: the whole data set of a configuration read once, every problem listed,
and a one-line summary of what was found; nothing is written anywhere."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ablate.data.load import RawSplits, finish, image_cap, read_splits, to_samples
from ablate.data.problems import Problems
from ablate.naming import SPLITS
from ablate.spec import DataSpec, RunConfig

SIZES_SHOWN = 3  # image sizes named in the summary (the most frequent)


@dataclass
class DataCheck:
    """What checking one data configuration found."""

    problems: Problems
    pairs: dict[str, int] = field(default_factory=dict)  # split -> image/mask pairs
    pixels: np.ndarray | None = None  # (num_classes,) labelled pixels over every split
    ignored: int = 0  # pixels of ignore_index (void, no-data is applied later)
    sizes: Counter[tuple[int, int]] = field(default_factory=Counter)  # (H, W) -> images
    channels: Counter[str] = field(default_factory=Counter)  # "3", "4 (alpha)" -> images

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self, spec: DataSpec) -> str:
        """One line: pairs per split, classes with their pixel shares, image sizes and
        channel counts."""
        where = spec.root if spec.synthetic is None else "synthetic"
        splits = ", ".join(f"{s} {self.pairs[s]}" for s in SPLITS if s in self.pairs)
        parts = [f"{where}: {splits or 'no'} pairs"]
        total = 0 if self.pixels is None else int(self.pixels.sum()) + self.ignored
        if self.pixels is not None and total:
            shares = ", ".join(f"{name} {_percent(int(n), total)}"
                               for name, n in zip(spec.names, self.pixels.tolist(), strict=True))
            ignored = f", ignored {_percent(self.ignored, total)}" if self.ignored else ""
            parts.append(f"classes {shares}{ignored}")
        elif self.pairs:
            parts.append("classes unknown (no mask could be read)")
        if self.sizes:
            shown = ", ".join(f"{h}x{w} ({n})" for (h, w), n in
                              self.sizes.most_common(SIZES_SHOWN))
            shown = "(HxW) " + shown
            more = (f" and {len(self.sizes) - SIZES_SHOWN} more sizes"
                    if len(self.sizes) > SIZES_SHOWN else "")
            parts.append(f"images {shown}{more}")
        if self.channels:
            parts.append("channels " + ", ".join(f"{c} ({n})"
                                                 for c, n in self.channels.most_common()))
        return "; ".join(parts)


def check_data(config: RunConfig) -> DataCheck:
    """Read every file of ``config``'s data set (``max_images`` does not cap the reading)
    and collect every problem, including the loaders' (batch size, image sizes)."""
    from ablate.data.dataset import make_loaders

    spec = config.data
    problems = Problems(echo=False)
    raw = problems.attempt(lambda: read_splits(spec, problems, cap=False))
    if raw is None:
        return DataCheck(problems)
    found = _describe(raw, spec, problems)
    samples = to_samples(raw.samples, spec, problems)
    if problems:
        return found
    capped = {split: items[: image_cap(spec, split)] for split, items in samples.items()}
    data = problems.attempt(lambda: finish(capped, raw.pairs, spec))
    if data is not None:
        problems.attempt(lambda: make_loaders(data, config, config.seed))
    return found


def _describe(raw: RawSplits, spec: DataSpec, problems: Problems) -> DataCheck:
    check = DataCheck(problems)
    check.pairs = {split: len(raw.pairs.get(split, {})) or len(items)
                   for split, items in raw.samples.items()}
    counts = np.zeros(spec.num_classes, dtype=np.int64)
    for items in raw.samples.values():
        for sample in items:
            found = np.bincount(sample.mask.ravel(), minlength=spec.num_classes)
            counts += found[: spec.num_classes]
            if spec.ignore_index is not None and 0 <= spec.ignore_index < found.size:
                if spec.ignore_index >= spec.num_classes:
                    check.ignored += int(found[spec.ignore_index])
            height, width = sample.image.pixels.shape[:2]
            check.sizes[(int(height), int(width))] += 1
            bands = str(sample.image.colour_bands) + (" + alpha" if sample.image.alpha else "")
            check.channels[bands] += 1
    if spec.ignore_index is not None and 0 <= spec.ignore_index < spec.num_classes:
        check.ignored = int(counts[spec.ignore_index])  # a void class inside the range
        counts[spec.ignore_index] = 0
    check.pixels = counts
    return check


def _percent(count: int, total: int) -> str:
    if not total:
        return "-"
    share = 100.0 * count / total
    return f"{share:.1f}%" if share >= 0.1 or count == 0 else "<0.1%"
