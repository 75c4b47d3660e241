"""Segmentation metrics: one confusion matrix per split, and the numbers derived from it.

Every reported number is computed from counts accumulated over the *whole* split (never an
average of per-batch or per-image scores), so it does not depend on batch size or order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ablate.metrics.scores import TASKS, matrix_scores

__all__ = [
    "ConfusionMatrix",
    "ThresholdCounts",
    "compute_metrics",
    "count_pairs",
    "predict",
    "predict_scores",
    "threshold_codes",
]


def _check_ids(values: torch.Tensor, limit: int, ignore_index: int | None,
               ignored: torch.Tensor | None = None) -> None:
    """Raise ValueError for ids outside ``0..limit - 1`` (``ignore_index`` aside, and nothing
    where ``ignored``): an out-of-range id would land in another cell of the flattened matrix
    and corrupt the counts silently."""
    if values.numel() == 0:
        return
    low, high = torch.aminmax(values)  # one pass; the slow path below only on a failure
    if int(low) >= 0 and int(high) < limit:
        return
    bad = (values < 0) | (values >= limit)
    if ignore_index is not None:
        bad &= values != ignore_index
    if ignored is not None:
        bad &= ~ignored
    if bool(bad.any()):
        found = torch.unique(values[bad]).tolist()[:10]
        raise ValueError(
            f"class ids outside 0..{limit - 1} (and not ignore_index={ignore_index}): {found}"
        )


def count_pairs(target: torch.Tensor, codes: torch.Tensor, rows: int, columns: int,
                ignore_index: int | None = None, images: int = 0) -> torch.Tensor:
    """int64 counts of (target, code) pixel pairs: ``(rows, columns)``, or with ``images``
    the ``(images, rows, columns)`` counts of each image of an ``(images, H, W)`` batch, all
    from one bincount. Pixels whose target is ``ignore_index`` are not counted; any other
    target outside ``0..rows - 1`` or code outside ``0..columns - 1`` is a ValueError."""
    ignored = target == ignore_index if ignore_index is not None else None
    _check_ids(target, rows, ignore_index)
    _check_ids(codes, columns, None, ignored)
    cells = rows * columns
    bins = max(images, 1) * cells
    # int32 halves the memory traffic of the index arithmetic whenever the bins allow it
    dtype = torch.int32 if bins < 2**31 - 1 else torch.int64
    index = target.to(dtype) * columns + codes.to(dtype)
    if images:
        offsets = torch.arange(images, dtype=dtype, device=index.device) * cells
        index = index.reshape(images, -1) + offsets[:, None]
    index = index.reshape(-1)
    if ignored is not None:  # ignored pixels go to one extra bin, dropped after counting
        index = torch.where(ignored.reshape(-1), bins, index)
    counts = torch.bincount(index, minlength=bins + 1)[:bins]
    return counts.reshape(images, rows, columns) if images else counts.reshape(rows, columns)


class _PairCounts:
    """(rows, columns) counts of (target, code) pixel pairs accumulated over a whole split by
    :func:`count_pairs`, on the device (with ``device=None`` that of the first batch seen),
    and with ``per_image`` each image's own block (a batch is ``(B, H, W)``, a single
    ``(H, W)`` map is one image), in update order."""

    def __init__(self, rows: int, columns: int, ignore_index: int | None,
                 device: torch.device | str | None, per_image: bool) -> None:
        self.ignore_index = ignore_index
        self.per_image = per_image
        self._follow_input = device is None
        self._counts = torch.zeros((rows, columns), dtype=torch.int64, device=device)
        self._images: list[torch.Tensor] = []

    def _add(self, codes: torch.Tensor, target: torch.Tensor, name: str) -> None:
        """Count one batch of ``codes`` (called ``name`` in errors) against ``target``."""
        if codes.shape != target.shape:
            raise ValueError(
                f"{name} {tuple(codes.shape)} and target {tuple(target.shape)} differ in shape"
            )
        if self._follow_input:
            self._counts = self._counts.to(target.device)
            self._follow_input = False
        device = self._counts.device
        images = (codes.shape[0] if codes.ndim == 3 else 1) if self.per_image else 0
        rows, columns = self._counts.shape
        counts = count_pairs(target.to(device), codes.to(device), rows, columns,
                             self.ignore_index, images)
        if images:
            self._images.append(counts)
            counts = counts.sum(dim=0)
        self._counts += counts


class ConfusionMatrix(_PairCounts):
    """Confusion counts accumulated over a whole split, on the device, with int64 bincount.

    ``matrix[t, p]`` counts pixels whose target is class ``t`` and prediction class ``p``.
    Pixels whose target equals ``ignore_index`` are not counted; ``ignore_index`` may lie
    outside the class range (e.g. 255) or inside it (a "void" class id). With ``device=None``
    the counts live on the device of the first batch seen.

    With ``per_image`` the same bincount also keeps each image's own matrix (a batch is
    ``(B, H, W)``, a single ``(H, W)`` map is one image): :attr:`image_matrices`, in update
    order, sums to :attr:`matrix`.
    """

    def __init__(
        self,
        num_classes: int,
        ignore_index: int | None = None,
        device: torch.device | str | None = None,
        per_image: bool = False,
    ) -> None:
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        self.num_classes = int(num_classes)
        super().__init__(self.num_classes, self.num_classes, ignore_index, device, per_image)

    @classmethod
    def of(cls, matrix: torch.Tensor, images: Sequence[torch.Tensor] = (),
           ignore_index: int | None = None) -> ConfusionMatrix:
        """A matrix holding counts made elsewhere (e.g. :meth:`ThresholdCounts.at`):
        ``matrix`` (C, C) and, when given, the per-image ``(B, C, C)`` blocks."""
        out = cls(int(matrix.shape[0]), ignore_index, matrix.device, per_image=bool(images))
        out._counts = matrix.clone()
        out._images = list(images)
        return out

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add one batch: ``pred`` and ``target`` are integer class ids of the same shape."""
        if pred.is_floating_point() or target.is_floating_point():
            raise TypeError("pred and target must hold integer class ids (use predict())")
        self._add(pred, target, "pred")

    def reset(self) -> None:
        """Zero the counts (e.g. at the start of each evaluation)."""
        self._counts.zero_()
        self._images.clear()

    @property
    def matrix(self) -> torch.Tensor:
        """(C, C) int64 counts; rows are targets, columns predictions."""
        return self._counts

    @property
    def image_matrices(self) -> np.ndarray:
        """(N, C, C) int64: each image's counts in update order (``per_image`` only)."""
        if not self._images:
            return np.zeros((0, self.num_classes, self.num_classes), dtype=np.int64)
        return torch.cat(self._images).cpu().numpy()


def threshold_codes(scores: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """Codes of binary probabilities against ascending ``thresholds``: how many of them each
    probability exceeds, so that the label at ``thresholds[k]`` is ``code > k`` (``score >
    threshold``, as :func:`predict`; NaN exceeds none). uint8 up to 255 thresholds."""
    codes = torch.bucketize(scores, thresholds.to(scores.device, scores.dtype))
    codes = codes.masked_fill_(scores.isnan(), 0)
    return codes.to(torch.uint8) if len(thresholds) < 256 else codes


class ThresholdCounts(_PairCounts):
    """Binary confusion counts at each of ascending ``thresholds`` at once, accumulated from
    :func:`threshold_codes` with one bincount per batch (and per image with ``per_image``);
    :meth:`at` gives the :class:`ConfusionMatrix` of one threshold."""

    def __init__(self, thresholds: Sequence[float], ignore_index: int | None = None,
                 device: torch.device | str | None = None, per_image: bool = False) -> None:
        if list(thresholds) != sorted(set(thresholds)) or not thresholds:
            raise ValueError(f"thresholds must be ascending and distinct, got {thresholds}")
        self.thresholds = [float(t) for t in thresholds]
        super().__init__(2, len(self.thresholds) + 1, ignore_index, device, per_image)

    def update(self, codes: torch.Tensor, target: torch.Tensor) -> None:
        """Add one batch: ``codes`` from :func:`threshold_codes`, ``target`` class ids 0/1."""
        self._add(codes, target, "codes")

    @staticmethod
    def _binary(counts: torch.Tensor, k: int) -> torch.Tensor:
        """(..., 2, 2) confusion counts at threshold ``k`` of (..., 2, K + 1) code counts."""
        return torch.stack([counts[..., :k + 1].sum(-1), counts[..., k + 1:].sum(-1)], dim=-1)

    def at(self, threshold: float) -> ConfusionMatrix:
        """The confusion matrix (and per-image matrices) at one of the thresholds."""
        k = self.thresholds.index(float(threshold))
        images = [self._binary(block, k) for block in self._images]
        return ConfusionMatrix.of(self._binary(self._counts, k), images, self.ignore_index)
def predict(logits: torch.Tensor, task: str, threshold: float = 0.5) -> torch.Tensor:
    """Class ids (B, H, W) int64: ``sigmoid > threshold`` (binary) or argmax (multiclass)."""
    if logits.ndim != 4:
        raise ValueError(f"logits must be (B, C, H, W), got shape {tuple(logits.shape)}")
    if task == "binary":
        return (predict_scores(logits) > threshold).long()
    if task == "multiclass":
        return logits.argmax(dim=1)
    raise ValueError(f"task must be one of {TASKS}, got {task!r}")


def predict_scores(logits: torch.Tensor) -> torch.Tensor:
    """Binary (B, 1, H, W) logits as (B, H, W) float32 probabilities (``predict`` thresholds
    them)."""
    if logits.ndim != 4 or logits.shape[1] != 1:
        raise ValueError(f"binary logits must be (B, 1, H, W), got shape {tuple(logits.shape)}")
    # float32 so that fp16 (AMP) logits are thresholded the same way as fp32 ones.
    return logits[:, 0].float().sigmoid()


def compute_metrics(
    matrix: np.ndarray | torch.Tensor,
    task: str,
    class_names: list[str],
    ignore_index: int | None = None,
) -> dict[str, float]:
    """Metrics of a (C, C) confusion matrix (rows = target, columns = prediction), as
    :func:`ablate.metrics.scores.matrix_scores` defines them."""
    if isinstance(matrix, torch.Tensor):
        matrix = matrix.detach().cpu().numpy()
    return matrix_scores(np.asarray(matrix), task, class_names, ignore_index)
