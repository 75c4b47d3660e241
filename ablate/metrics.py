"""Segmentation metrics: one confusion matrix per split, and the numbers derived from it.

Every reported number is computed from counts accumulated over the *whole* split (never an
average of per-batch or per-image scores), so it does not depend on batch size or order.
"""

from __future__ import annotations

import numpy as np
import torch

from ablate.scores import TASKS, matrix_scores

__all__ = ["ConfusionMatrix", "compute_metrics", "predict", "predict_scores"]


class ConfusionMatrix:
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
        self.ignore_index = ignore_index
        self._follow_input = device is None
        self._matrix = torch.zeros(
            (self.num_classes, self.num_classes), dtype=torch.int64, device=device
        )
        self.per_image = per_image
        self._images: list[torch.Tensor] = []

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
        n = self.num_classes
        images = (pred.shape[0] if pred.ndim == 3 else 1) if self.per_image else 0
        pred = pred.reshape(-1).to(device=device, dtype=torch.int64)
        target = target.reshape(-1).to(device=device, dtype=torch.int64)
        image = (torch.arange(images, device=device).repeat_interleave(pred.numel() // images)
                 if images else None)
        if self.ignore_index is not None:
            keep = target != self.ignore_index
            pred, target = pred[keep], target[keep]
            image = image[keep] if image is not None else None
        if target.numel() == 0:
            if images:  # every image keeps its row, even one whose pixels are all ignored
                self._images.append(torch.zeros((images, n, n), dtype=torch.int64,
                                                device=device))
            return
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
        if image is None:
            counts = torch.bincount(target * n + pred, minlength=n * n)
            self._matrix += counts.reshape(n, n)
            return
        # One bincount for every image of the batch: image i's cells sit at offset i * n * n.
        per_image = torch.bincount((image * n + target) * n + pred, minlength=images * n * n)
        per_image = per_image.reshape(images, n, n)
        self._images.append(per_image)
        self._matrix += per_image.sum(dim=0)

    def reset(self) -> None:
        """Zero the counts (e.g. at the start of each evaluation)."""
        self._matrix.zero_()
        self._images.clear()

    @property
    def matrix(self) -> torch.Tensor:
        """(C, C) int64 counts; rows are targets, columns predictions."""
        return self._matrix

    @property
    def image_matrices(self) -> np.ndarray:
        """(N, C, C) int64: each image's counts in update order (``per_image`` only)."""
        if not self._images:
            return np.zeros((0, self.num_classes, self.num_classes), dtype=np.int64)
        return torch.cat(self._images).cpu().numpy()


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
    :func:`ablate.scores.matrix_scores` defines them."""
    if isinstance(matrix, torch.Tensor):
        matrix = matrix.detach().cpu().numpy()
    return matrix_scores(np.asarray(matrix), task, class_names, ignore_index)
