"""Optimisers and per-epoch learning-rate schedules: warm-up, cosine, step, plateau, restarts."""

from __future__ import annotations

import math
import typing

import pytest
import torch
from torch import nn

from ablate.spec import OptimSpec
from ablate.training.optim import OPTIMIZERS, SCHEDULERS, EpochScheduler, build_optimizer

# The schedules are stepped here without training steps in between.
pytestmark = pytest.mark.filterwarnings(r"ignore:Detected call of `lr_scheduler.step\(\)`")


def _lrs(spec: OptimSpec, objectives: list[float] | None = None) -> list[float]:
    """The learning rate used in each epoch of ``spec.epochs``."""
    optimizer = build_optimizer(spec, nn.Linear(2, 1))
    schedule = EpochScheduler(spec, optimizer, maximize=True)
    out = []
    for epoch in range(spec.epochs):
        out.append(schedule.lr)
        schedule.step(objectives[epoch] if objectives else None)
    return out


def test_registries_cover_the_spec_vocabulary():
    fields = OptimSpec.model_fields
    assert set(OPTIMIZERS) == set(typing.get_args(fields["optimizer"].annotation))
    assert set(SCHEDULERS) == set(typing.get_args(fields["scheduler"].annotation))


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd"])
def test_optimizers_take_lr_and_weight_decay(name):
    spec = OptimSpec(optimizer=name, lr=0.03, weight_decay=0.01, momentum=0.8)
    optimizer = build_optimizer(spec, nn.Linear(2, 1))
    group = optimizer.param_groups[0]
    assert group["lr"] == 0.03 and group["weight_decay"] == 0.01
    if name == "sgd":
        assert group["momentum"] == 0.8


def test_linear_warmup_then_constant():
    assert _lrs(OptimSpec(lr=0.3, epochs=5, warmup_epochs=2)) == pytest.approx(
        [0.1, 0.2, 0.3, 0.3, 0.3])


def test_cosine_after_warmup_reaches_zero_at_the_last_epoch():
    lrs = _lrs(OptimSpec(lr=1.0, epochs=6, warmup_epochs=2, scheduler="cosine"))
    # warm-up 1/3, 2/3; then cosine over the 4 remaining epochs from the full rate
    main = [0.5 * (1 + math.cos(math.pi * t / 4)) for t in range(4)]
    assert lrs == pytest.approx([1 / 3, 2 / 3, *main])


def test_step_decay():
    lrs = _lrs(OptimSpec(lr=1.0, epochs=5, scheduler="step", step_size=2, gamma=0.5))
    assert lrs == pytest.approx([1.0, 1.0, 0.5, 0.5, 0.25])


def test_cosine_restarts_return_to_the_full_rate():
    lrs = _lrs(OptimSpec(lr=1.0, epochs=6, scheduler="cosine_restarts", restart_epochs=2))
    assert lrs[0] == lrs[2] == lrs[4] == pytest.approx(1.0)
    assert lrs[1] == pytest.approx(0.5) and lrs[3] == pytest.approx(0.5)


def test_plateau_halves_after_patience_epochs_without_improvement():
    spec = OptimSpec(lr=1.0, epochs=6, scheduler="plateau", plateau_patience=1,
                     plateau_factor=0.5)
    # maximize: 0.5 is the best; two epochs without a better value exceed patience 1
    lrs = _lrs(spec, [0.5, 0.4, 0.4, 0.4, 0.4, 0.4])
    assert lrs == pytest.approx([1.0, 1.0, 1.0, 0.5, 0.5, 0.25])


def test_plateau_ignores_a_nan_objective():
    spec = OptimSpec(lr=1.0, epochs=4, scheduler="plateau", plateau_patience=0)
    assert _lrs(spec, [math.nan] * 4) == pytest.approx([1.0] * 4)


def test_encoder_learning_rate_group():
    model = nn.Sequential()
    model.encoder = nn.Linear(2, 2)
    model.head = nn.Linear(2, 1)
    optimizer = build_optimizer(OptimSpec(lr=0.1, encoder_lr_mult=0.1), model)
    encoder, rest = optimizer.param_groups
    assert encoder["lr"] == pytest.approx(0.01) and rest["lr"] == pytest.approx(0.1)
    assert {id(p) for p in encoder["params"]} == {id(p) for p in model.encoder.parameters()}
    assert torch.is_tensor(rest["params"][0])
