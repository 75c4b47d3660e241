"""The sampler and pruner registries: every name the spec accepts builds what it says."""

from __future__ import annotations

import typing

import optuna
import pytest
from optuna.trial import TrialState

from ablate.spec import PrunerSpec, SamplerSpec, SearchParam
from ablate.study import pruners, samplers
from ablate.study.pruners import PRUNERS, build_pruner
from ablate.study.samplers import SAMPLERS, TrialSeededSampler, build_sampler, trial_seed

SEARCH = {"optim.lr": SearchParam(type="float", low=0.1, high=0.3, step=0.1),
          "augment.hflip": SearchParam(type="bool")}


def _names(model: type) -> set[str]:
    return set(typing.get_args(model.model_fields["name"].annotation))


def test_the_spec_accepts_exactly_the_registered_names():
    assert _names(SamplerSpec) == set(SAMPLERS)
    assert _names(PrunerSpec) == set(PRUNERS)


def test_random_and_tpe_are_seeded_per_trial_and_tpe_lies_constantly():
    random = build_sampler(SamplerSpec(name="random"), SEARCH, seed=3)
    tpe = build_sampler(SamplerSpec(name="tpe", n_startup_trials=7), SEARCH, seed=3)
    assert isinstance(random, TrialSeededSampler) and isinstance(tpe, TrialSeededSampler)
    inner = tpe._inner
    assert isinstance(inner, optuna.samplers.TPESampler)
    assert inner._constant_liar and inner._n_startup_trials == 7
    # the spec's own seed wins over the study's
    seeded = build_sampler(SamplerSpec(name="random", seed=11), SEARCH, seed=3)
    assert seeded._seed == 11 and random._seed == 3
    assert trial_seed(3, 0) != trial_seed(3, 1)


def test_the_grid_sampler_covers_the_grid_without_stopping_the_study():
    sampler = build_sampler(SamplerSpec(name="grid"), SEARCH, seed=0)
    assert isinstance(sampler, optuna.samplers.GridSampler)
    study = optuna.create_study(sampler=sampler)
    seen = []
    for _ in range(6):  # trials outside study.optimize, as the worker loop runs them
        trial = study.ask()
        seen.append((trial.suggest_float("optim.lr", 0.1, 0.3, step=0.1),
                     trial.suggest_categorical("augment.hflip", [False, True])))
        study.tell(trial, 0.0)  # Optuna's own grid sampler calls study.stop() here: an error
    assert len(set(seen)) == 6
    assert {lr for lr, _ in seen} == {0.1, 0.2, 0.3}  # the ends exactly, not 0.30000000000000004
    assert all(t.state == TrialState.COMPLETE for t in study.trials)


def test_the_median_pruner_never_prunes_the_warmup_epochs():
    median = build_pruner(PrunerSpec(name="median", n_startup_trials=3, n_warmup_steps=2))
    assert isinstance(median, optuna.pruners.MedianPruner)
    # epochs count from 1: warm-up 2 spares epochs 1 and 2, so Optuna's step threshold is 3
    assert median._n_startup_trials == 3 and median._n_warmup_steps == 3
    assert isinstance(build_pruner(PrunerSpec(name="none")), optuna.pruners.NopPruner)


def test_a_registered_sampler_and_pruner_are_used_by_name(monkeypatch):
    monkeypatch.setattr(samplers, "SAMPLERS", dict(SAMPLERS))
    monkeypatch.setattr(pruners, "PRUNERS", dict(PRUNERS))

    @samplers.register("plain")
    def _plain(spec: SamplerSpec, search: dict, seed: int) -> optuna.samplers.BaseSampler:
        return optuna.samplers.RandomSampler(seed=seed)  # not wrapped, unlike "random"

    @pruners.register("threshold")
    def _threshold(spec: PrunerSpec) -> optuna.pruners.BasePruner:
        return optuna.pruners.ThresholdPruner(lower=0.1)

    sampler_spec = SamplerSpec.model_construct(name="plain", seed=None, n_startup_trials=4)
    built = samplers.build_sampler(sampler_spec, SEARCH, seed=5)
    assert type(built) is optuna.samplers.RandomSampler
    pruner_spec = PrunerSpec.model_construct(name="threshold")
    assert isinstance(pruners.build_pruner(pruner_spec), optuna.pruners.ThresholdPruner)
    with pytest.raises(KeyError):
        pruners.build_pruner(PrunerSpec.model_construct(name="unknown"))
