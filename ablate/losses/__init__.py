"""Training losses: a weighted sum of named terms, built from a :class:`~ablate.spec.LossSpec`.

Terms come from ``segmentation_models_pytorch.losses`` where smp has them; :mod:`.terms` only
adds what smp lacks (BCE with a negative-class weight, a two-sided binary Jaccard) and works
around its edge cases. Logits are (B, 1, H, W) for a binary task and (B, C, H, W) for a
multiclass one; targets are int64 (B, H, W); pixels whose target is ``ignore_index`` take no
part in any term. :data:`~.registry.TERMS` names every term.
"""

from __future__ import annotations

import numpy as np

from ablate.losses.composite import CompositeLoss
from ablate.losses.registry import TERMS, TermContext, register
from ablate.losses.weights import class_weights
from ablate.spec import LossSpec

__all__ = ["TERMS", "CompositeLoss", "TermContext", "build_loss", "class_weights", "register"]


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
    allowed = tuple(name for name, term in TERMS.items() if task in term.tasks)
    for name in weights:
        if name not in allowed:
            raise ValueError(f"loss term '{name}' is not for a {task} task; use one of {allowed}")
    weights = {name: float(w) for name, w in weights.items() if w > 0}
    if not weights:
        raise ValueError("every loss weight is 0; give at least one term a weight")
    # An ignore_index inside the class range is a void class: the region losses should not
    # average in its channel, which never has target pixels (smp would count it as 0).
    classes = None
    if task == "multiclass" and ignore_index is not None and 0 <= ignore_index < num_classes:
        classes = [c for c in range(num_classes) if c != ignore_index]
    context = TermContext(spec, task, num_classes, ignore_index, classes, class_pixels)
    terms = {str(name): TERMS[name].build(context) for name in weights}
    return CompositeLoss(terms, {str(k): w for k, w in weights.items()}, task, num_classes,
                         ignore_index)
