"""The search space: spec distributions as Optuna suggestions, and the grid they span
(samplers: :mod:`ablate.study.samplers`, pruners: :mod:`ablate.study.pruners`)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import optuna

from ablate.spec import SearchParam

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
            low, high = p.range
            values[path] = trial.suggest_float(path, low, high, log=p.log, step=p.step)
        elif p.type == "int":
            low, high = p.range
            step = int(p.step) if p.step else 1
            values[path] = trial.suggest_int(path, int(low), int(high), step=step, log=p.log)
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
            low, high = p.range
            # the spec checked that the step divides the range; linspace keeps both ends
            # exact (arange's 0.1 + 2 * 0.1 lies above a high of 0.3: Optuna warns)
            values = np.linspace(low, high, round((high - low) / step) + 1)
            space[path] = [int(round(v)) if p.type == "int" else float(v) for v in values]
    return space


def grid_size(search: dict[str, SearchParam]) -> int:
    """Number of cells in the full grid."""
    return int(np.prod([len(v) for v in grid(search).values()])) if search else 1
