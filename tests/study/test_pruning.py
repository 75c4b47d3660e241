"""Early stopping, pruners and the grid sampler, through real trainings and a real study."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from ablate.data import load_data, make_loaders
from ablate.spec import PrunerSpec, SamplerSpec, SearchParam, load_spec
from ablate.study.pruners import build_pruner
from ablate.study.samplers import build_sampler
from ablate.study.search import grid_size
from ablate.tracking import names as keys
from ablate.training.engine import Engine
from ablate.training.fit import fit, improved
from tests.conftest import spec_dict
from tests.study.test_study import _runs


def test_improvement_needs_more_than_min_delta():
    assert improved(0.5, None, maximize=True, min_delta=0.1)
    assert not improved(0.55, 0.5, maximize=True, min_delta=0.1)
    assert improved(0.61, 0.5, maximize=True, min_delta=0.1)
    assert improved(0.39, 0.5, maximize=False, min_delta=0.1)
    assert not improved(float("nan"), None, maximize=True, min_delta=0.0)


@pytest.mark.slow
def test_early_stopping_stops_after_patience_epochs(write_spec):
    # An improvement of 0.5 IoU per epoch is out of reach: epoch 1 stays the best, and with
    # patience 2 the loop stops after epochs 2 and 3 did not improve (epochs count from 1).
    spec = load_spec(write_spec(spec_dict(optim={
        "epochs": 6, "early_stopping_patience": 2, "early_stopping_min_delta": 0.5})))
    config = spec.resolve({})
    data = load_data(config.data)
    engine = Engine(config, data, __import__("torch").device("cpu"))
    seen: list[int] = []
    result = fit(engine, make_loaders(data, config, config.seed),
                 on_epoch=lambda epoch, record: seen.append(epoch), progress=False)
    assert result.stopped_early and result.best_epoch == 1
    assert len(result.history) == 3 and seen == [1, 2, 3]
    assert result.best_state is not None


def test_pruners_are_built_as_specified():
    median = build_pruner(PrunerSpec(name="median", n_startup_trials=3, n_warmup_steps=2))
    assert isinstance(median, optuna.pruners.MedianPruner)
    # the first 2 epochs are never pruned: Optuna's steps are epoch numbers, from 1
    assert median._n_startup_trials == 3 and median._n_warmup_steps == 3
    hyperband = build_pruner(PrunerSpec(name="hyperband", min_resource=2, reduction_factor=4))
    assert isinstance(hyperband, optuna.pruners.HyperbandPruner)
    assert hyperband._min_resource == 2 and hyperband._reduction_factor == 4
    assert isinstance(build_pruner(PrunerSpec()), optuna.pruners.NopPruner)


@pytest.mark.slow
def test_median_pruner_prunes_a_worse_trial_and_tracks_it(cli, write_spec, store):
    # The baseline trains first; the "frozen" configuration barely moves, so its val IoU falls
    # below the baseline's at the same epoch and the median pruner (one start-up trial) stops
    # it (seeded: the same values every run).
    spec = spec_dict(
        optim={"epochs": 3, "lr": 0.001},
        pruner={"name": "median", "n_startup_trials": 1, "n_warmup_steps": 0},
        design={"kind": "one_at_a_time",
                "components": [{"name": "frozen", "set": {"optim.lr": 1e-9}}]},
    )
    del spec["search"]
    result = cli("study", "run", write_spec(spec), "--store", store, "--quiet")
    assert result.exit_code == 0, result.output
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{store / 'optuna.db'}")
    states = {t.params["config"]: t.state for t in study.trials}
    assert states == {"baseline": TrialState.COMPLETE, "frozen": TrialState.PRUNED}
    runs = {r.data.tags[keys.TAG_CONFIG]: r for r in _runs(store, "trial")}
    assert runs["frozen"].data.tags[keys.TAG_STATE] == "PRUNED"
    assert "pruned at epoch" in runs["frozen"].data.tags[keys.TAG_REASON]


@pytest.mark.slow
def test_grid_sampler_covers_every_cell_once(cli, write_spec, store):
    spec = spec_dict(
        trials=10,
        sampler={"name": "grid", "seed": 0},
        search={"optim.lr": {"type": "categorical", "choices": [0.001, 0.01]},
                "augment.hflip": {"type": "bool"}},
    )
    result = cli("study", "run", write_spec(spec), "--store", store, "--quiet")
    assert result.exit_code == 0, result.output
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{store / 'optuna.db'}")
    cells = [(t.params["optim.lr"], t.params["augment.hflip"]) for t in study.trials]
    # the budget is the grid's 4 cells, not the spec's 10 trials
    assert sorted(cells) == [(0.001, False), (0.001, True), (0.01, False), (0.01, True)]
    assert all(t.state == TrialState.COMPLETE for t in study.trials)


def test_grid_of_stepped_floats():
    search = {"optim.lr": SearchParam(type="float", low=0.1, high=0.3, step=0.1),
              "data.batch_size": SearchParam(type="int", low=2, high=6, step=2)}
    assert grid_size(search) == 9
    sampler = build_sampler(SamplerSpec(name="grid"), search, seed=0)
    assert isinstance(sampler, optuna.samplers.GridSampler)
