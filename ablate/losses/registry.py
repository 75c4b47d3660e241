"""Every loss term by the name a spec gives it (``loss.weights.<name>``).

Adding a term: one :func:`register`-ed builder here (plus the name in the spec's
``LossTerm`` vocabulary) and its test. A builder gets the :class:`TermContext` of the run and
returns a module ``term(logits, target) -> scalar``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import segmentation_models_pytorch.losses as smp_losses
from torch import nn

from ablate.losses.terms import BinaryJaccard, TverskyLoss, WeightedBCE
from ablate.losses.weights import ce_weights
from ablate.spec import LossSpec

BOTH = ("binary", "multiclass")


@dataclass(frozen=True)
class TermContext:
    """What a term may depend on: its options in the spec and the run's task."""

    spec: LossSpec
    task: str  # binary | multiclass (also smp's mode name)
    num_classes: int
    ignore_index: int | None
    # Multiclass classes the region losses average over (a void class in range left out).
    classes: list[int] | None
    class_pixels: np.ndarray | None  # per-class pixel counts of the train split


@dataclass(frozen=True)
class Term:
    """A registered loss term: the tasks it applies to and how to build it."""

    tasks: tuple[str, ...]
    build: Callable[[TermContext], nn.Module]


TERMS: dict[str, Term] = {}


def register(name: str, tasks: tuple[str, ...] = BOTH) -> Callable:
    """Decorator: register ``build`` as the loss term ``name`` for ``tasks``."""

    def add(build: Callable[[TermContext], nn.Module]) -> Callable[[TermContext], nn.Module]:
        TERMS[name] = Term(tasks, build)
        return build

    return add


@register("ce", ("multiclass",))
def _ce(c: TermContext) -> nn.Module:
    return nn.CrossEntropyLoss(weight=ce_weights(c.spec, c.num_classes, c.class_pixels),
                               ignore_index=-100 if c.ignore_index is None else c.ignore_index)


@register("bce", ("binary",))
def _bce(c: TermContext) -> nn.Module:
    return WeightedBCE(c.spec.bce.pos_weight, c.spec.bce.neg_weight, c.ignore_index)


@register("dice")
def _dice(c: TermContext) -> nn.Module:
    return smp_losses.DiceLoss(c.task, classes=c.classes, from_logits=True,
                               ignore_index=c.ignore_index)


@register("jaccard")
def _jaccard(c: TermContext) -> nn.Module:
    if c.task == "binary":
        return BinaryJaccard(c.spec.jaccard.pos_weight, c.spec.jaccard.neg_weight,
                             c.ignore_index)
    return smp_losses.JaccardLoss(c.task, classes=c.classes, from_logits=True,
                                  ignore_index=c.ignore_index)


@register("focal")
def _focal(c: TermContext) -> nn.Module:
    # smp's multiclass focal is a one-vs-rest sigmoid focal loss averaged over classes.
    return smp_losses.FocalLoss(c.task, alpha=c.spec.focal.alpha, gamma=c.spec.focal.gamma,
                                ignore_index=c.ignore_index)


@register("lovasz")
def _lovasz(c: TermContext) -> nn.Module:
    return smp_losses.LovaszLoss(c.task, ignore_index=c.ignore_index, from_logits=True)


@register("tversky")
def _tversky(c: TermContext) -> nn.Module:
    t = c.spec.tversky
    return TverskyLoss(c.task, classes=c.classes, from_logits=True, ignore_index=c.ignore_index,
                       alpha=t.alpha, beta=t.beta, gamma=t.gamma)
