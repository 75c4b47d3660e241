"""Optimisers and learning-rate schedules built from :class:`~ablate.spec.OptimSpec`, each
registered by the name a spec gives it (:data:`OPTIMIZERS`, :data:`SCHEDULERS`)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.optim import lr_scheduler

from ablate.spec import OptimSpec


def parameter_groups(spec: OptimSpec, model: nn.Module) -> list[dict]:
    """One group, or encoder and the rest when the encoder has its own learning rate.

    Every parameter is included (frozen ones too), so that unfreezing needs no new optimiser.
    """
    encoder = getattr(model, "encoder", None)
    if spec.encoder_lr_mult == 1.0 or encoder is None:
        return [{"params": list(model.parameters()), "lr": spec.lr}]
    own = {id(p) for p in encoder.parameters()}
    return [
        {"params": list(encoder.parameters()), "lr": spec.lr * spec.encoder_lr_mult},
        {"params": [p for p in model.parameters() if id(p) not in own], "lr": spec.lr},
    ]


OptimizerFactory = Callable[[list[dict], OptimSpec], torch.optim.Optimizer]

# Optimisers by the name a spec gives (``optim.optimizer``).
OPTIMIZERS: dict[str, OptimizerFactory] = {
    "adam": lambda params, spec: torch.optim.Adam(
        params, lr=spec.lr, weight_decay=spec.weight_decay),
    "adamw": lambda params, spec: torch.optim.AdamW(
        params, lr=spec.lr, weight_decay=spec.weight_decay),
    "sgd": lambda params, spec: torch.optim.SGD(
        params, lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay),
}


def build_optimizer(spec: OptimSpec, model: nn.Module) -> torch.optim.Optimizer:
    """The optimiser named in the spec over the model's parameter groups."""
    return OPTIMIZERS[spec.optimizer](parameter_groups(spec, model), spec)


class EncoderFreezer:
    """Keeps the encoder frozen for the first epochs, then unfreezes it in stages.

    The encoder's child modules are split into ``unfreeze_stages`` groups; the deepest group
    thaws first, then one more every ``unfreeze_every`` epochs.
    """

    def __init__(self, spec: OptimSpec, model: nn.Module):
        self.spec = spec
        encoder = getattr(model, "encoder", None)
        self.stages: list[list[nn.Parameter]] = []
        if spec.freeze_encoder_epochs and encoder is not None:
            parts = [list(m.parameters()) for m in encoder.children()]
            parts = [p for p in parts if p]
            count = min(spec.unfreeze_stages, len(parts))
            size = -(-len(parts) // count)  # ceil
            groups = [parts[i : i + size] for i in range(0, len(parts), size)]
            self.stages = [[p for part in group for p in part] for group in groups]

    def apply(self, epoch: int) -> int:
        """Set requires_grad for ``epoch``; returns how many stages are still frozen."""
        if not self.stages:
            return 0
        thawed = 0
        if epoch >= self.spec.freeze_encoder_epochs:
            thawed = 1 + (epoch - self.spec.freeze_encoder_epochs) // self.spec.unfreeze_every
        frozen = max(0, len(self.stages) - thawed)
        for index, params in enumerate(self.stages):
            for p in params:
                p.requires_grad_(index >= frozen)
        return frozen


Schedule = lr_scheduler.LRScheduler | lr_scheduler.ReduceLROnPlateau | None
# (optimizer, spec, epochs after warm-up, maximize) -> the schedule stepped once per epoch.
ScheduleFactory = Callable[[torch.optim.Optimizer, OptimSpec, int, bool], Schedule]

# Learning-rate schedules by the name a spec gives (``optim.scheduler``).
SCHEDULERS: dict[str, ScheduleFactory] = {
    "none": lambda optimizer, spec, epochs, maximize: None,
    "cosine": lambda optimizer, spec, epochs, maximize: lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=epochs),
    "step": lambda optimizer, spec, epochs, maximize: lr_scheduler.StepLR(
        optimizer, step_size=spec.step_size, gamma=spec.gamma),
    "cosine_restarts": lambda optimizer, spec, epochs, maximize:
        lr_scheduler.CosineAnnealingWarmRestarts(
            optimizer, T_0=spec.restart_epochs, T_mult=spec.restart_mult),
    "plateau": lambda optimizer, spec, epochs, maximize: lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max" if maximize else "min", factor=spec.plateau_factor,
        patience=spec.plateau_patience),
}


class EpochScheduler:
    """Steps the configured schedule once per epoch; linear warm-up first when asked.

    ``plateau`` reads the objective, so :meth:`step` takes it.
    """

    def __init__(self, spec: OptimSpec, optimizer: torch.optim.Optimizer, maximize: bool):
        self.spec = spec
        self.optimizer = optimizer
        self.warmup = spec.warmup_epochs
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        main = SCHEDULERS[spec.scheduler](optimizer, spec, max(1, spec.epochs - self.warmup),
                                          maximize)
        # ReduceLROnPlateau reads the objective (and is an LRScheduler in recent torch).
        self.plateau = main if isinstance(main, lr_scheduler.ReduceLROnPlateau) else None
        self.main = main if self.plateau is None else None
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

    def state_dict(self) -> dict:
        """Where the schedule stands (the optimiser's state holds the learning rates)."""
        schedule = self.main or self.plateau
        return {"epoch": self.epoch,
                "schedule": schedule.state_dict() if schedule is not None else None}

    def load_state_dict(self, state: dict) -> None:
        """Continue from :meth:`state_dict` (load the optimiser's state first)."""
        self.epoch = state["epoch"]
        schedule = self.main or self.plateau
        if schedule is not None and state["schedule"] is not None:
            schedule.load_state_dict(state["schedule"])
