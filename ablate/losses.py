"""Training losses: a weighted sum of named terms, built from a :class:`LossSpec`.

Terms come from ``segmentation_models_pytorch.losses`` where smp has them; this module only adds
what smp lacks (BCE with a negative-class weight, a two-sided binary Jaccard) and works around
its edge cases (noted where they are handled). Logits are (B, 1, H, W) for a binary task and
(B, C, H, W) for a multiclass one; targets are int64 (B, H, W); pixels whose target is
``ignore_index`` take no part in any term.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import segmentation_models_pytorch.losses as smp_losses
import torch
import torch.nn.functional as F
from torch import nn

from ablate.spec import LossSpec

__all__ = ["CompositeLoss", "build_loss", "class_weights"]

BINARY_TERMS = ("bce", "dice", "jaccard", "focal", "lovasz", "tversky")
MULTICLASS_TERMS = ("ce", "dice", "jaccard", "focal", "lovasz", "tversky")


class CompositeLoss(nn.Module):
    """``total = sum(weight[t] * term[t](logits, target))`` over the named terms.

    ``forward`` returns the total and each term's unweighted, detached value by name. Terms are
    computed in float32 (AMP logits are upcast). A batch in which every pixel is ignored gives 0
    for every term (with zero gradients) instead of NaN.
    """

    def __init__(
        self,
        terms: Mapping[str, nn.Module],
        weights: Mapping[str, float],
        task: str,
        num_classes: int,
        ignore_index: int | None = None,
    ) -> None:
        super().__init__()
        if not terms:
            raise ValueError("a loss needs at least one term")
        if set(terms) != set(weights):
            raise ValueError(f"terms {sorted(terms)} and weights {sorted(weights)} differ")
        self.terms = nn.ModuleDict(dict(terms))
        self.weights = {name: float(weights[name]) for name in terms}
        self.task = task
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def forward(
        self, logits: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The weighted total, and ``{term: unweighted value (detached)}``."""
        channels = 1 if self.task == "binary" else self.num_classes
        if logits.ndim != 4 or logits.shape[1] != channels:
            raise ValueError(
                f"{self.task} logits must be (B, {channels}, H, W), got {tuple(logits.shape)}"
            )
        if target.shape != (logits.shape[0], *logits.shape[2:]):
            raise ValueError(
                f"target must be (B, H, W) = {(logits.shape[0], *logits.shape[2:])}, "
                f"got {tuple(target.shape)}"
            )
        logits = logits.float()  # sums over many pixels overflow in fp16
        target = target.long()
        # smp's focal and torch's CE return NaN, and smp's multiclass Lovasz an empty tensor,
        # when no pixel is left; such a batch contributes 0. Kept on the device: no sync.
        any_valid = None if self.ignore_index is None else (target != self.ignore_index).any()
        values: dict[str, torch.Tensor] = {}
        for name, term in self.terms.items():
            value = term(logits, target).reshape(-1).sum()
            if any_valid is not None:
                value = torch.where(any_valid, value, torch.zeros_like(value))
            values[name] = value
        total = sum((self.weights[n] * v for n, v in values.items()), logits.new_zeros(()))
        return total, {name: value.detach() for name, value in values.items()}

    def extra_repr(self) -> str:
        return f"weights={self.weights}, task={self.task!r}, ignore_index={self.ignore_index}"


class WeightedBCE(nn.Module):
    """Binary cross-entropy with a weight for each class, averaged over non-ignored pixels.

    Per pixel: ``-[pos_weight * y * log s(x) + neg_weight * (1 - y) * log(1 - s(x))]``.
    """

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


def class_weights(class_pixels: np.ndarray, kind: str) -> np.ndarray:
    """Per-class weights from pixel counts: ``w_c ∝ 1/f_c`` ("inverse") or ``1/sqrt(f_c)``
    ("inverse_sqrt"), ``f_c`` the class's pixel frequency, normalised to sum to the number of
    classes. A class with 0 pixels gets weight 0: it has no pixels for a weight to act on, and a
    made-up weight would only shift the normalisation of the others.
    """
    counts = np.asarray(class_pixels, dtype=np.float64)
    if counts.ndim != 1 or counts.size < 2:
        raise ValueError(f"class_pixels must be one count per class, got shape {counts.shape}")
    if not np.isfinite(counts).all() or (counts < 0).any():
        raise ValueError(f"class_pixels must be finite counts >= 0, got {counts.tolist()}")
    present = counts > 0
    if not present.any():
        raise ValueError("class_pixels are all 0: no pixels to compute class weights from")
    freq = counts[present] / counts.sum()
    if kind == "inverse":
        raw = 1.0 / freq
    elif kind == "inverse_sqrt":
        raw = 1.0 / np.sqrt(freq)
    else:
        raise ValueError(f"class weight kind must be 'inverse' or 'inverse_sqrt', got {kind!r}")
    weights = np.zeros_like(counts)
    weights[present] = raw
    return weights * (counts.size / weights.sum())


def build_loss(
    spec: LossSpec,
    task: str,
    num_classes: int,
    ignore_index: int | None,
    class_pixels: np.ndarray | None = None,
) -> CompositeLoss:
    """The :class:`CompositeLoss` of ``spec``: one term per positive weight in ``spec.weights``.

    An empty ``spec.weights`` means the default of a run config: bce (binary) or ce (multiclass).
    ``class_pixels`` (per-class pixel counts of the training split) is needed only for
    ``ce.class_weights: inverse | inverse_sqrt``.
    """
    if task not in ("binary", "multiclass"):
        raise ValueError(f"task must be 'binary' or 'multiclass', got {task!r}")
    if task == "binary":
        num_classes = 2
        if ignore_index in (0, 1):
            raise ValueError(f"ignore_index {ignore_index} is one of the two binary classes")
    weights = dict(spec.weights) or ({"bce": 1.0} if task == "binary" else {"ce": 1.0})
    allowed = BINARY_TERMS if task == "binary" else MULTICLASS_TERMS
    for name in weights:
        if name not in allowed:
            raise ValueError(f"loss term '{name}' is not for a {task} task; use one of {allowed}")
    weights = {name: float(w) for name, w in weights.items() if w > 0}
    if not weights:
        raise ValueError("every loss weight is 0; give at least one term a weight")

    mode = task  # smp's mode names match the task names
    # An ignore_index inside the class range is a void class: the region losses should not
    # average in its channel, which never has target pixels (smp would count it as 0).
    classes = None
    if task == "multiclass" and ignore_index is not None and 0 <= ignore_index < num_classes:
        classes = [c for c in range(num_classes) if c != ignore_index]

    terms: dict[str, nn.Module] = {}
    for name in weights:
        if name == "ce":
            ce_weight = _ce_weights(spec, num_classes, class_pixels)
            terms[name] = nn.CrossEntropyLoss(
                weight=ce_weight, ignore_index=-100 if ignore_index is None else ignore_index
            )
        elif name == "bce":
            terms[name] = WeightedBCE(spec.bce.pos_weight, spec.bce.neg_weight, ignore_index)
        elif name == "dice":
            terms[name] = smp_losses.DiceLoss(
                mode, classes=classes, from_logits=True, ignore_index=ignore_index
            )
        elif name == "jaccard":
            if task == "binary":
                terms[name] = BinaryJaccard(
                    spec.jaccard.pos_weight, spec.jaccard.neg_weight, ignore_index
                )
            else:
                terms[name] = smp_losses.JaccardLoss(
                    mode, classes=classes, from_logits=True, ignore_index=ignore_index
                )
        elif name == "focal":
            # smp's multiclass focal is a one-vs-rest sigmoid focal loss averaged over classes.
            terms[name] = smp_losses.FocalLoss(
                mode, alpha=spec.focal.alpha, gamma=spec.focal.gamma, ignore_index=ignore_index
            )
        elif name == "lovasz":
            terms[name] = smp_losses.LovaszLoss(mode, ignore_index=ignore_index, from_logits=True)
        elif name == "tversky":
            terms[name] = TverskyLoss(
                mode,
                classes=classes,
                from_logits=True,
                ignore_index=ignore_index,
                alpha=spec.tversky.alpha,
                beta=spec.tversky.beta,
                gamma=spec.tversky.gamma,
            )
    return CompositeLoss(terms, weights, task, num_classes, ignore_index)


def _ce_weights(
    spec: LossSpec, num_classes: int, class_pixels: np.ndarray | None
) -> torch.Tensor | None:
    setting = spec.ce.class_weights
    if setting is None:
        return None
    if isinstance(setting, str):
        if class_pixels is None:
            raise ValueError(
                f"ce.class_weights: {setting} needs the per-class pixel counts (class_pixels)"
            )
        values = class_weights(class_pixels, setting)
    else:
        values = np.asarray(setting, dtype=np.float64)
    if values.shape != (num_classes,):
        raise ValueError(f"ce.class_weights has {values.size} values for {num_classes} classes")
    if values.sum() <= 0:
        raise ValueError("ce.class_weights are all 0")
    return torch.as_tensor(values, dtype=torch.float32)
