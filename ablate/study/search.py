"""The search space: spec distributions as Optuna suggestions, samplers and pruners."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.exceptions import ExperimentalWarning
from optuna.trial import FrozenTrial, TrialState

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
            values = np.arange(low, high + step / 2, step)
            space[path] = [int(v) if p.type == "int" else float(v) for v in values]
    return space


def grid_size(search: dict[str, SearchParam]) -> int:
    """Number of cells in the full grid."""
    return int(np.prod([len(v) for v in grid(search).values()])) if search else 1


def trial_seed(seed: int, number: int) -> int:
    """The sampler seed of trial ``number`` in a study seeded ``seed``."""
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


class TrialSeededSampler(optuna.samplers.BaseSampler):
    """A sampler made afresh for every trial, seeded from (study seed, trial number).

    Trial numbers are unique across every worker of a study, so parallel workers draw
    different values (one shared seed made each worker draw the same sequence), and a resumed
    worker does not replay the values of the first trials. A single worker's study is
    reproducible from its seed; a random search gives trial i the same values however many
    workers ran it (TPE's later proposals also depend on the results so far).
    """

    def __init__(self, make: Callable[[int], optuna.samplers.BaseSampler], seed: int):
        self._make = make
        self._seed = seed
        self._inner = make(seed)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._inner = self._make(trial_seed(self._seed, trial.number))
        self._inner.before_trial(study, trial)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._inner.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._inner.sample_relative(study, trial, search_space)

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._inner.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._inner.reseed_rng()


class _GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler, without its ``study.stop()`` once the grid is covered: the
    worker stops by the study's budget (at most the grid's size), and runs its trials outside
    ``study.optimize``, where ``stop`` is not allowed."""

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        return None


def build_sampler(spec: SamplerSpec, search: dict[str, SearchParam], seed: int) -> Any:
    """The Optuna sampler named in the spec, seeded from the spec's sampler seed or the study
    seed. Random and TPE are seeded per trial (:class:`TrialSeededSampler`); TPE runs with
    ``constant_liar``: trials running on other workers count as bad results, so they are not
    proposed again. The grid sampler is seeded once: its seed shuffles the grid, and trial
    number i takes cell i of that order, which is already distinct across workers."""
    seed = spec.seed if spec.seed is not None else seed
    if spec.name == "grid":
        return _GridSampler(grid(search), seed=seed)

    def make(trial_seed: int) -> optuna.samplers.BaseSampler:
        if spec.name == "random":
            return optuna.samplers.RandomSampler(seed=trial_seed)
        with warnings.catch_warnings():  # constant_liar is experimental in Optuna 4
            warnings.simplefilter("ignore", ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=trial_seed, constant_liar=True,
                                              n_startup_trials=spec.n_startup_trials)

    return TrialSeededSampler(make, seed)


def build_pruner(spec: PrunerSpec) -> optuna.pruners.BasePruner:
    """The Optuna pruner named in the spec; pruning steps are epoch numbers (1-based)."""
    if spec.name == "median":
        # the first n_warmup_steps epochs are never pruned: Optuna prunes from step
        # n_warmup_steps on, and epoch N is step N
        return optuna.pruners.MedianPruner(
            n_startup_trials=spec.n_startup_trials, n_warmup_steps=spec.n_warmup_steps + 1
        )
    if spec.name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=spec.min_resource, reduction_factor=spec.reduction_factor
        )
    return optuna.pruners.NopPruner()
