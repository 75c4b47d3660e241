"""Test-set sampling uncertainty of single trained models, from their per-image counts.

For the runs of the per-split tables (the best configuration and the baseline, each through
its representative repeat): the test IoU (binary) or mIoU with a bootstrap interval over the
test images, and the paired image-level comparison of the first two on the images both were
scored on (:mod:`ablate.inference.images`). Only those runs' ``image_counts.npz`` are read.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ablate.inference.images import compare_images, image_interval
from ablate.reporting.detail import Chosen
from ablate.reporting.runs import StudyRuns
from ablate.reporting.sections import NA, Section, Table, interval, num, signed
from ablate.tracking import names as keys
from ablate.training.result import ImageCounts

SPLIT = "test"


def _counts(study: StudyRuns, run: pd.Series) -> ImageCounts | None:
    uri = run.get("artifact_uri")
    if study.artifacts is None or not isinstance(uri, str):
        return None
    data = study.artifacts.data(str(run["run_id"]), uri, keys.IMAGE_COUNTS_ARTIFACT)
    if data is None:
        return None
    counts = ImageCounts.from_npz(data)
    return counts if SPLIT in counts.counts else None


def image_sections(study: StudyRuns, chosen: list[Chosen]) -> list[Section]:
    """The heading with the per-run intervals, and the paired comparison of the first two
    (nothing when none of the runs has per-image counts)."""
    score = "IoU" if study.task == "binary" else "mIoU"
    read = [(item, _counts(study, item.run)) for item in chosen[:2]]
    loaded = [(item, counts) for item, counts in read if counts is not None]
    head = Section("Test-set sampling uncertainty", [
        f"How much one trained model's test {score} depends on which images the test split "
        f"holds: the {score} from counts summed over the test images, with a BCa bootstrap "
        "interval over images (images resampled with replacement, counts re-summed, the "
        f"score recomputed; never a mean of per-image {score}). This is test-set sampling "
        "uncertainty for one trained model (the representative repeat), not the "
        "seed-to-seed variation of training, which the ablation table covers."
    ])
    if not loaded:  # runs from before per-image counts were tracked
        return []
    rows = []
    for item, counts in loaded:
        result = image_interval(counts.counts[SPLIT], np.array(counts.scored))
        rows.append({"role": item.role, "run": item.title, "images": result.n,
                     f"test {score}": result.estimate, "ci_low": result.low,
                     "ci_high": result.high, "method": result.method})
    data = pd.DataFrame(rows)
    view = data[["role", "run", "images"]].copy()
    view[f"test {score}"] = [num(v) for v in data[f"test {score}"]]
    view["95% CI (images)"] = [interval(lo, hi) for lo, hi in zip(data["ci_low"],
                                                                   data["ci_high"], strict=True)]
    head.table = Table("images", data, view)
    if len(loaded) < 2:
        return [head]
    return [head, _paired(loaded[0], loaded[1], score)]


def _paired(a: tuple[Chosen, ImageCounts], b: tuple[Chosen, ImageCounts],
            score: str) -> Section:
    (item_a, counts_a), (item_b, counts_b) = a, b
    names_b = {name: i for i, name in enumerate(counts_b.names[SPLIT])}
    shared = [(i, names_b[name]) for i, name in enumerate(counts_a.names[SPLIT])
              if name in names_b]
    section = Section(f"Image-level comparison: {item_a.role} vs {item_b.role}", [
        f"`{item_a.role}` minus `{item_b.role}` in test {score} on the same test images "
        "(paired): a BCa bootstrap interval resampling the images for both models at once, and "
        "a permutation p-value swapping each image's counts between the two models. Like the "
        "table above it concerns the test images drawn, for these two trained runs, not seed "
        "variance."
    ], level=3, empty="_the two runs share no test image_")
    if not shared:
        section.table = Table("image_comparison", pd.DataFrame())
        return section
    index_a, index_b = (np.array(ix) for ix in zip(*shared, strict=True))
    result = compare_images(counts_a.counts[SPLIT][index_a], counts_b.counts[SPLIT][index_b],
                            np.array(counts_a.scored))
    data = pd.DataFrame([{
        "a": item_a.role, "b": item_b.role, "images": result.n,
        f"a test {score}": result.score_a, f"b test {score}": result.score_b,
        "delta": result.delta, "ci_low": result.low, "ci_high": result.high, "p": result.p,
        "method": result.method}])
    view = pd.DataFrame({
        "comparison": [f"{item_a.role} - {item_b.role}"], "images": [result.n],
        item_a.role: [num(result.score_a)], item_b.role: [num(result.score_b)],
        "diff": [signed(result.delta)], "95% CI (images)": [interval(result.low, result.high)],
        "p (images)": [NA if math.isnan(result.p) else f"{result.p:.3g}"]})
    section.table = Table("image_comparison", data, view)
    return section
