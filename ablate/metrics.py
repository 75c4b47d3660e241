"""Segmentation metrics: one confusion matrix per split, and the numbers derived from it.

Every reported number is computed from counts accumulated over the *whole* split (never an
average of per-batch or per-image scores), so it does not depend on batch size or order.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ablate.spec import slug

__all__ = ["ConfusionMatrix", "compute_metrics", "predict"]

TASKS = ("binary", "multiclass")


class ConfusionMatrix:
    """Confusion counts accumulated over a whole split, on the device, with int64 bincount.

    ``matrix[t, p]`` counts pixels whose target is class ``t`` and prediction class ``p``.
    Pixels whose target equals ``ignore_index`` are not counted; ``ignore_index`` may lie
    outside the class range (e.g. 255) or inside it (a "void" class id). With ``device=None``
    the counts live on the device of the first batch seen.
    """

    def __init__(
        self,
        num_classes: int,
        ignore_index: int | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self._follow_input = device is None
        self._matrix = torch.zeros(
            (self.num_classes, self.num_classes), dtype=torch.int64, device=device
        )

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add one batch: ``pred`` and ``target`` are integer class ids of the same shape."""
        if pred.shape != target.shape:
            raise ValueError(
                f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape"
            )
        if pred.is_floating_point() or target.is_floating_point():
            raise TypeError("pred and target must hold integer class ids (use predict())")
        if self._follow_input:
            self._matrix = self._matrix.to(target.device)
            self._follow_input = False
        device = self._matrix.device
        pred = pred.reshape(-1).to(device=device, dtype=torch.int64)
        target = target.reshape(-1).to(device=device, dtype=torch.int64)
        if self.ignore_index is not None:
            keep = target != self.ignore_index
            pred, target = pred[keep], target[keep]
        if target.numel() == 0:
            return
        n = self.num_classes
        # An out-of-range id would land in another cell of the flattened matrix and corrupt
        # the counts silently, so it is an error. (bincount synchronises anyway.)
        bad = (target < 0) | (target >= n) | (pred < 0) | (pred >= n)
        if bool(bad.any()):
            values = torch.unique(torch.cat([target[bad], pred[bad]])).tolist()[:10]
            raise ValueError(
                f"class ids outside 0..{n - 1} (and not ignore_index={self.ignore_index}): "
                f"{values}"
            )
        # bincount without weights counts in int64 and is deterministic on CUDA.
        counts = torch.bincount(target * n + pred, minlength=n * n)
        self._matrix += counts.reshape(n, n)

    def reset(self) -> None:
        """Zero the counts (e.g. at the start of each evaluation)."""
        self._matrix.zero_()

    @property
    def matrix(self) -> torch.Tensor:
        """(C, C) int64 counts; rows are targets, columns predictions."""
        return self._matrix


def predict(logits: torch.Tensor, task: str, threshold: float = 0.5) -> torch.Tensor:
    """Class ids (B, H, W) int64: ``sigmoid > threshold`` (binary) or argmax (multiclass)."""
    if logits.ndim != 4:
        raise ValueError(f"logits must be (B, C, H, W), got shape {tuple(logits.shape)}")
    if task == "binary":
        if logits.shape[1] != 1:
            raise ValueError(f"binary logits must have 1 channel, got {logits.shape[1]}")
        # float32 so that fp16 (AMP) logits are thresholded the same way as fp32 ones.
        return (logits[:, 0].float().sigmoid() > threshold).long()
    if task == "multiclass":
        return logits.argmax(dim=1)
    raise ValueError(f"task must be one of {TASKS}, got {task!r}")


def compute_metrics(
    matrix: np.ndarray | torch.Tensor,
    task: str,
    class_names: list[str],
    ignore_index: int | None = None,
) -> dict[str, float]:
    """Metrics of a (C, C) confusion matrix (rows = target, columns = prediction).

    Binary (C = 2, positive class 1): ``tp fp fn tn iou f1 precision recall specificity
    accuracy``. Multiclass: ``tp_<c> fp_<c> fn_<c> iou_<c> f1_<c>`` per class, ``miou`` and
    ``mf1`` (means over the classes present in target or prediction), pixel ``accuracy`` and
    ``tp fp fn tn`` summed over classes. A ratio with a zero denominator is NaN, so an absent
    class is neither rewarded nor penalised. An ``ignore_index`` inside the class range marks
    a void class: its per-class scores are NaN and it is left out of the means (as in
    torchmetrics).
    """
    if isinstance(matrix, torch.Tensor):
        matrix = matrix.detach().cpu().numpy()
    m = np.asarray(matrix)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"a confusion matrix is square (C, C), got shape {m.shape}")
    # Counts stay exact as int64; ratios are taken in float64.
    m = m.astype(np.int64)
    if task == "binary":
        if m.shape != (2, 2):
            raise ValueError(f"a binary confusion matrix is 2x2, got {m.shape}")
        return _binary(m)
    if task == "multiclass":
        return _multiclass(m, class_names, ignore_index)
    raise ValueError(f"task must be one of {TASKS}, got {task!r}")


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den != 0 else math.nan


def _binary(m: np.ndarray) -> dict[str, float]:
    tn, fp, fn, tp = (int(v) for v in m.reshape(-1))
    return {
        "tp": float(tp),
        "fp": float(fp),
        "fn": float(fn),
        "tn": float(tn),
        "iou": _ratio(tp, tp + fp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "specificity": _ratio(tn, tn + fp),
        "accuracy": _ratio(tp + tn, tp + tn + fp + fn),
    }


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
        iou = _ratio(t, t + p + f) if scored else math.nan
        f1 = _ratio(2 * t, 2 * t + p + f) if scored else math.nan
        out |= {f"tp_{key}": float(t), f"fp_{key}": float(p), f"fn_{key}": float(f)}
        out |= {f"iou_{key}": iou, f"f1_{key}": f1}
        if scored:
            ious.append(iou)
            f1s.append(f1)
    out["miou"] = float(np.mean(ious)) if ious else math.nan
    out["mf1"] = float(np.mean(f1s)) if f1s else math.nan
    out["accuracy"] = _ratio(int(tp.sum()), total)
    out["tp"] = float(tp.sum())
    out["fp"] = float(fp.sum())
    out["fn"] = float(fn.sum())
    out["tn"] = float((total - tp - fp - fn).sum())
    return out
