"""Every Optuna sampler by the name a spec gives it (``sampler.name``).

Adding one: a :func:`register`-ed builder here, its name in the spec's ``SamplerSpec.name``
vocabulary and its test. A builder gets the spec's sampler section, the search space and the
seed (the sampler's own, else the study's) and returns the sampler every worker uses.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.exceptions import ExperimentalWarning
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from ablate.spec import SamplerSpec, SearchParam
from ablate.study.search import grid

SamplerBuilder = Callable[[SamplerSpec, dict[str, SearchParam], int], BaseSampler]

SAMPLERS: dict[str, SamplerBuilder] = {}


def register(name: str) -> Callable[[SamplerBuilder], SamplerBuilder]:
    """Decorator: register ``build(spec, search, seed)`` as the sampler ``name``."""

    def add(build: SamplerBuilder) -> SamplerBuilder:
        SAMPLERS[name] = build
        return build

    return add


def build_sampler(spec: SamplerSpec, search: dict[str, SearchParam], seed: int) -> BaseSampler:
    """The sampler named in the spec (:data:`SAMPLERS`), seeded from the spec's sampler seed
    or else the study seed ``seed``."""
    return SAMPLERS[spec.name](spec, search, spec.seed if spec.seed is not None else seed)


def trial_seed(seed: int, number: int) -> int:
    """The sampler seed of trial ``number`` in a study seeded ``seed``."""
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


class TrialSeededSampler(BaseSampler):
    """A sampler made afresh for every trial, seeded from (study seed, trial number).

    Trial numbers are unique across every worker of a study, so parallel workers draw
    different values (one shared seed made each worker draw the same sequence), and a resumed
    worker does not replay the values of the first trials. A single worker's study is
    reproducible from its seed; a random search gives trial i the same values however many
    workers ran it (TPE's later proposals also depend on the results so far).
    """

    def __init__(self, make: Callable[[int], BaseSampler], seed: int):
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


@register("tpe")
def _tpe(spec: SamplerSpec, search: dict[str, SearchParam], seed: int) -> BaseSampler:
    """TPE, seeded per trial, with ``constant_liar``: trials running on other workers count
    as bad results, so their values are not proposed again."""

    def make(trial_seed: int) -> BaseSampler:
        with warnings.catch_warnings():  # constant_liar is experimental in Optuna 4
            warnings.simplefilter("ignore", ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=trial_seed, constant_liar=True,
                                              n_startup_trials=spec.n_startup_trials)

    return TrialSeededSampler(make, seed)


@register("random")
def _random(spec: SamplerSpec, search: dict[str, SearchParam], seed: int) -> BaseSampler:
    """Uniform random values, seeded per trial."""
    return TrialSeededSampler(lambda trial_seed: optuna.samplers.RandomSampler(seed=trial_seed),
                              seed)


@register("grid")
def _grid(spec: SamplerSpec, search: dict[str, SearchParam], seed: int) -> BaseSampler:
    """Every cell of the grid once. Seeded once: the seed shuffles the grid, and trial number
    i takes cell i of that order, which is already distinct across workers."""
    return _GridSampler(grid(search), seed=seed)
