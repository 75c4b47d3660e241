"""Every Optuna pruner by the name a spec gives it (``pruner.name``).

Adding one: a :func:`register`-ed builder here, its name in the spec's ``PrunerSpec.name``
vocabulary and its test. Pruning steps are epoch numbers, from 1 (what a trial reports after
each epoch).
"""

from __future__ import annotations

from collections.abc import Callable

import optuna
from optuna.pruners import BasePruner

from ablate.spec import PrunerSpec

PrunerBuilder = Callable[[PrunerSpec], BasePruner]

PRUNERS: dict[str, PrunerBuilder] = {}


def register(name: str) -> Callable[[PrunerBuilder], PrunerBuilder]:
    """Decorator: register ``build(spec)`` as the pruner ``name``."""

    def add(build: PrunerBuilder) -> PrunerBuilder:
        PRUNERS[name] = build
        return build

    return add


def build_pruner(spec: PrunerSpec) -> BasePruner:
    """The pruner named in the spec (:data:`PRUNERS`)."""
    return PRUNERS[spec.name](spec)


@register("none")
def _none(spec: PrunerSpec) -> BasePruner:
    return optuna.pruners.NopPruner()


@register("median")
def _median(spec: PrunerSpec) -> BasePruner:
    # the first n_warmup_steps epochs are never pruned: Optuna prunes from step
    # n_warmup_steps on, and epoch N is step N
    return optuna.pruners.MedianPruner(n_startup_trials=spec.n_startup_trials,
                                       n_warmup_steps=spec.n_warmup_steps + 1)


@register("hyperband")
def _hyperband(spec: PrunerSpec) -> BasePruner:
    return optuna.pruners.HyperbandPruner(min_resource=spec.min_resource,
                                          reduction_factor=spec.reduction_factor)
