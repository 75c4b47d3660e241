"""Optimisers and learning-rate schedules built from :class:`~ablate.spec.OptimSpec`."""

from __future__ import annotations

import torch
from torch import nn
from torch.optim import lr_scheduler

from ablate.spec import OptimSpec


def build_optimizer(spec: OptimSpec, model: nn.Module) -> torch.optim.Optimizer:
    """Adam, AdamW or SGD (with momentum) over the model's trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    if spec.optimizer == "adam":
        return torch.optim.Adam(params, lr=spec.lr, weight_decay=spec.weight_decay)
    if spec.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=spec.lr, weight_decay=spec.weight_decay)
    return torch.optim.SGD(
        params, lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay
    )


class EpochScheduler:
    """Steps the configured schedule once per epoch; linear warm-up first when asked.

    ``plateau`` reads the objective, so :meth:`step` takes it.
    """

    def __init__(self, spec: OptimSpec, optimizer: torch.optim.Optimizer, maximize: bool):
        self.spec = spec
        self.optimizer = optimizer
        self.warmup = spec.warmup_epochs
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        main_epochs = max(1, spec.epochs - self.warmup)
        self.plateau: lr_scheduler.ReduceLROnPlateau | None = None
        self.main: lr_scheduler.LRScheduler | None = None
        if spec.scheduler == "cosine":
            self.main = lr_scheduler.CosineAnnealingLR(optimizer, T_max=main_epochs)
        elif spec.scheduler == "step":
            self.main = lr_scheduler.StepLR(optimizer, step_size=spec.step_size, gamma=spec.gamma)
        elif spec.scheduler == "cosine_restarts":
            self.main = lr_scheduler.CosineAnnealingWarmRestarts(
                optimizer, T_0=spec.restart_epochs, T_mult=spec.restart_mult
            )
        elif spec.scheduler == "plateau":
            self.plateau = lr_scheduler.ReduceLROnPlateau(
                optimizer,
                mode="max" if maximize else "min",
                factor=spec.plateau_factor,
                patience=spec.plateau_patience,
            )
        self.epoch = 0
        if self.warmup:
            self._set_warmup_lr(0)

    def _set_warmup_lr(self, epoch: int) -> None:
        scale = (epoch + 1) / (self.warmup + 1)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = base * scale

    def step(self, objective: float | None = None) -> None:
        """Advance one epoch."""
        self.epoch += 1
        if self.epoch < self.warmup:
            self._set_warmup_lr(self.epoch)
            return
        if self.epoch == self.warmup and self.warmup:
            for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
                group["lr"] = base
            return
        if self.main is not None:
            self.main.step()
        elif self.plateau is not None and objective is not None and objective == objective:
            self.plateau.step(objective)

    @property
    def lr(self) -> float:
        """The learning rate of the first parameter group."""
        return float(self.optimizer.param_groups[0]["lr"])
