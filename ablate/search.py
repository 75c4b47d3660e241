"""The search space: spec distributions as Optuna suggestions, samplers and pruners."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import optuna

from ablate.spec import PrunerSpec, SamplerSpec, SearchParam

_PRIMITIVE = (str, int, float, bool, type(None))


def _encode(choice: Any) -> Any:
    # Optuna stores only primitives; lists (e.g. decoder_channels) travel as JSON text.
    return choice if isinstance(choice, _PRIMITIVE) else json.dumps(choice)


def _decode(param: SearchParam, value: Any) -> Any:
    for choice in param.choices or []:
        if _encode(choice) == value:
            return choice
    return value


def suggest(trial: optuna.Trial, search: dict[str, SearchParam]) -> dict[str, Any]:
    """Sample one value per searched path: ``{"optim.lr": 0.003, ...}``."""
    values: dict[str, Any] = {}
    for path, p in search.items():
        if p.type == "float":
            values[path] = trial.suggest_float(path, p.low, p.high, log=p.log, step=p.step)
        elif p.type == "int":
            step = int(p.step) if p.step else 1
            values[path] = trial.suggest_int(path, int(p.low), int(p.high), step=step, log=p.log)
        elif p.type == "bool":
            values[path] = trial.suggest_categorical(path, [False, True])
        else:
            encoded = trial.suggest_categorical(path, [_encode(c) for c in p.choices or []])
            values[path] = _decode(p, encoded)
    return values


def grid(search: dict[str, SearchParam]) -> dict[str, list[Any]]:
    """Every value of every searched path, for Optuna's grid sampler."""
    space: dict[str, list[Any]] = {}
    for path, p in search.items():
        if p.type == "bool":
            space[path] = [False, True]
        elif p.type == "categorical":
            space[path] = [_encode(c) for c in p.choices or []]
        else:
            step = p.step or 1
            values = np.arange(p.low, p.high + step / 2, step)
            space[path] = [int(v) if p.type == "int" else float(v) for v in values]
    return space


def grid_size(search: dict[str, SearchParam]) -> int:
    """Number of cells in the full grid."""
    return int(np.prod([len(v) for v in grid(search).values()])) if search else 1


def build_sampler(spec: SamplerSpec, search: dict[str, SearchParam], seed: int) -> Any:
    """The Optuna sampler named in the spec (seeded: the spec's sampler seed or study seed)."""
    seed = spec.seed if spec.seed is not None else seed
    if spec.name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if spec.name == "grid":
        return optuna.samplers.GridSampler(grid(search), seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=spec.n_startup_trials)


def build_pruner(spec: PrunerSpec) -> optuna.pruners.BasePruner:
    """The Optuna pruner named in the spec; pruning steps are epochs."""
    if spec.name == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=spec.n_startup_trials, n_warmup_steps=spec.n_warmup_steps
        )
    if spec.name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=spec.min_resource, reduction_factor=spec.reduction_factor
        )
    return optuna.pruners.NopPruner()
