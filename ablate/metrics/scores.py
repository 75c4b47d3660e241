"""Scores from confusion counts: every ratio the project reports, in one place (torch-free).

Used by :mod:`ablate.metrics.counts` (counts accumulated from tensors) and by the report
(counts read back from MLflow). A ratio with a zero denominator is NaN, so an absent class is
neither rewarded nor penalised.
"""

from __future__ import annotations

import math

import numpy as np

from ablate.naming import slug

TASKS = ("binary", "multiclass")


def ratio(num: float, den: float) -> float:
    """``num / den`` in float64, NaN for a zero denominator."""
    return float(num) / float(den) if den != 0 else math.nan


def iou(tp: float, fp: float, fn: float) -> float:
    """Intersection over union, TP / (TP + FP + FN)."""
    return ratio(tp, tp + fp + fn)


def f1(tp: float, fp: float, fn: float) -> float:
    """F1 (Dice), 2TP / (2TP + FP + FN)."""
    return ratio(2 * tp, 2 * tp + fp + fn)


def binary_scores(tp: float, fp: float, fn: float, tn: float) -> dict[str, float]:
    """The counts and every binary score of them (positive class 1)."""
    return {
        "tp": float(tp),
        "fp": float(fp),
        "fn": float(fn),
        "tn": float(tn),
        "iou": iou(tp, fp, fn),
        "f1": f1(tp, fp, fn),
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        "specificity": ratio(tn, tn + fp),
        "accuracy": ratio(tp + tn, tp + tn + fp + fn),
    }


def matrix_scores(
    matrix: np.ndarray, task: str, class_names: list[str], ignore_index: int | None = None
) -> dict[str, float]:
    """Scores of a (C, C) confusion matrix (rows = target, columns = prediction).

    Binary (C = 2, positive class 1): ``tp fp fn tn iou f1 precision recall specificity
    accuracy``. Multiclass: ``tp_<c> fp_<c> fn_<c> iou_<c> f1_<c>`` per class, ``miou`` and
    ``mf1`` (means over the classes present in target or prediction), pixel ``accuracy`` and
    ``tp fp fn tn`` summed over classes. An ``ignore_index`` inside the class range marks a
    void class: its per-class scores are NaN and it is left out of the means (as in
    torchmetrics).
    """
    m = np.asarray(matrix)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"a confusion matrix is square (C, C), got shape {m.shape}")
    # Counts stay exact as int64; ratios are taken in float64.
    m = m.astype(np.int64)
    if task == "binary":
        if m.shape != (2, 2):
            raise ValueError(f"a binary confusion matrix is 2x2, got {m.shape}")
        tn, fp, fn, tp = (int(v) for v in m.reshape(-1))
        return binary_scores(tp, fp, fn, tn)
    if task == "multiclass":
        return _multiclass(m, class_names, ignore_index)
    raise ValueError(f"task must be one of {TASKS}, got {task!r}")


def _multiclass(
    m: np.ndarray, class_names: list[str], ignore_index: int | None
) -> dict[str, float]:
    n = m.shape[0]
    if len(class_names) != n:
        raise ValueError(f"{len(class_names)} class names for a {n}x{n} confusion matrix")
    slugs = [slug(name) for name in class_names]
    if len(set(slugs)) != n:
        # Two names with one slug would silently overwrite each other's metrics.
        raise ValueError(f"class names {class_names} do not give distinct metric keys {slugs}")
    void = ignore_index if ignore_index is not None and 0 <= ignore_index < n else None
    tp = np.diag(m)
    fp = m.sum(axis=0) - tp
    fn = m.sum(axis=1) - tp
    total = int(m.sum())

    out: dict[str, float] = {}
    ious: list[float] = []
    f1s: list[float] = []
    for c, key in enumerate(slugs):
        t, p, f = int(tp[c]), int(fp[c]), int(fn[c])
        # Absent (t + p + f == 0) or void: NaN, and not part of the means.
        scored = c != void and t + p + f > 0
        class_iou = iou(t, p, f) if scored else math.nan
        class_f1 = f1(t, p, f) if scored else math.nan
        out |= {f"tp_{key}": float(t), f"fp_{key}": float(p), f"fn_{key}": float(f)}
        out |= {f"iou_{key}": class_iou, f"f1_{key}": class_f1}
        if scored:
            ious.append(class_iou)
            f1s.append(class_f1)
    out["miou"] = float(np.mean(ious)) if ious else math.nan
    out["mf1"] = float(np.mean(f1s)) if f1s else math.nan
    out["accuracy"] = ratio(int(tp.sum()), total)
    out["tp"] = float(tp.sum())
    out["fp"] = float(fp.sum())
    out["fn"] = float(fn.sum())
    out["tn"] = float((total - tp - fp - fn).sum())
    return out


def image_counts(matrices: np.ndarray, task: str) -> np.ndarray:
    """Per-image confusion matrices (N, C, C) -> (N, K, 4) int64 counts TP, FP, FN, TN of each
    class (K = C; binary: K = 1, the positive class alone)."""
    m = np.asarray(matrices, dtype=np.int64)
    tp = np.diagonal(m, axis1=1, axis2=2)
    fp = m.sum(axis=1) - tp  # predicted as the class, another target
    fn = m.sum(axis=2) - tp  # target of the class, predicted as another
    tn = m.sum(axis=(1, 2))[:, None] - tp - fp - fn
    counts = np.stack([tp, fp, fn, tn], axis=-1)
    return counts[:, 1:2, :] if task == "binary" else counts
