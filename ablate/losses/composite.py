"""The training loss: a weighted sum of named terms."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn


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
