"""Loss terms smp lacks or gets wrong at an edge: BCE with a negative-class weight, a
two-sided binary Jaccard, Tversky with a finite gradient at 0."""

from __future__ import annotations

import segmentation_models_pytorch.losses as smp_losses
import torch
import torch.nn.functional as F
from torch import nn


class WeightedBCE(nn.Module):
    """Binary cross-entropy with a weight for each class, averaged over non-ignored pixels.

    Per pixel: ``-[pos_weight * y * log s(x) + neg_weight * (1 - y) * log(1 - s(x))]``.
    """

    pos_ratio: torch.Tensor  # a buffer: moves with the module

    def __init__(
        self, pos_weight: float = 1.0, neg_weight: float = 1.0, ignore_index: int | None = None
    ) -> None:
        super().__init__()
        if pos_weight <= 0 or neg_weight <= 0:
            raise ValueError("bce pos_weight and neg_weight must be positive")
        self.neg_weight = float(neg_weight)
        self.ignore_index = ignore_index
        # torch weights the positive term by pos_weight and the whole pixel by weight, so
        # weight = neg_weight, pos_weight = pos / neg gives the formula above.
        self.register_buffer("pos_ratio", torch.tensor([pos_weight / neg_weight]))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        x = logits.reshape(target.shape)
        if self.ignore_index is None:
            valid = torch.ones_like(target, dtype=torch.bool)
        else:
            valid = target != self.ignore_index
        y = torch.where(valid, target, torch.zeros_like(target)).to(x.dtype)
        summed = F.binary_cross_entropy_with_logits(
            x, y, weight=valid.to(x.dtype) * self.neg_weight, pos_weight=self.pos_ratio,
            reduction="sum",
        )
        return summed / valid.sum().clamp_min(1)


class BinaryJaccard(nn.Module):
    """``pos_weight * soft-Jaccard loss(foreground) + neg_weight * soft-Jaccard loss(background)``.

    The background side is the foreground loss applied to the complement: probabilities
    ``1 - s(x) = s(-x)`` against targets ``1 - y``. As in smp, a side with no target pixels in
    the batch contributes 0.
    """

    def __init__(
        self, pos_weight: float = 1.0, neg_weight: float = 0.0, ignore_index: int | None = None
    ) -> None:
        super().__init__()
        if pos_weight < 0 or neg_weight < 0 or pos_weight + neg_weight == 0:
            raise ValueError("jaccard pos_weight and neg_weight must be >= 0, not both 0")
        self.pos_weight = float(pos_weight)
        self.neg_weight = float(neg_weight)
        self.ignore_index = ignore_index
        self.jaccard = smp_losses.JaccardLoss("binary", from_logits=True, ignore_index=ignore_index)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = logits.new_zeros(())
        if self.pos_weight > 0:
            loss = loss + self.pos_weight * self.jaccard(logits, target)
        if self.neg_weight > 0:
            complement = 1 - target
            if self.ignore_index is not None:
                # Ignored pixels keep their ignore_index so that smp still drops them.
                complement = torch.where(target == self.ignore_index, target, complement)
            loss = loss + self.neg_weight * self.jaccard(-logits, complement)
        return loss


class TverskyLoss(smp_losses.TverskyLoss):
    """smp's Tversky loss, ``mean(1 - tversky) ** gamma``, with a finite gradient at 0.

    smp zeroes the loss of classes without target pixels; with ``gamma < 1`` a batch whose mean
    is then exactly 0 (e.g. a binary batch without foreground) makes ``0 ** gamma`` back-propagate
    ``inf * 0 = NaN``. Here such a batch gives 0 with a zero gradient.
    """

    def aggregate_loss(self, loss: torch.Tensor) -> torch.Tensor:
        if self.class_weights is not None:
            weights = self.class_weights.to(loss.device)
            if self.classes is not None:
                weights = weights[self.classes]
            base = (loss * weights).sum() / weights.sum()
        else:
            base = loss.mean()
        positive = base > 0
        # Double where: the pow never sees 0, so its backward stays finite.
        safe = torch.where(positive, base, torch.ones_like(base))
        return torch.where(positive, safe**self.gamma, torch.zeros_like(base))
