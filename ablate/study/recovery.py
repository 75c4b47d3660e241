"""Recovering from dead workers: stale trials are failed, re-queued, and their runs closed."""

from __future__ import annotations

import warnings

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from ablate.stores import Stores
from ablate.study.storage import RUN_ID_ATTR
from ablate.tracking import Tracker, close_dead_run, running_trial_runs

with warnings.catch_warnings():  # experimental since Optuna 2.8, and the supported way
    warnings.simplefilter("ignore", ExperimentalWarning)
    _retry = RetryHeartbeatStaleTrialCallback(max_retry=None)


class StaleTrialHandler:
    """Optuna's failed-trial callback for heartbeat-stale trials (a worker was killed).

    The trial's configuration is queued again (same params and attributes), and its MLflow
    run is closed as KILLED with reason "worker died".
    """

    def __init__(self, stores: Stores):
        self.stores = stores

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        _retry(study, trial)
        run_id = trial.user_attrs.get(RUN_ID_ATTR)
        if run_id:
            close_dead_run(Tracker(self.stores), run_id)


def requeue(study: optuna.Study, number: int) -> None:
    """Queue trial ``number``'s configuration again (after an interrupt)."""
    trial = study.get_trials(deepcopy=False)[number]
    if trial.state == TrialState.FAIL:
        _retry(study, trial)


def sweep_runs(study: optuna.Study, tracker: Tracker, experiment_id: str) -> int:
    """Close MLflow trial runs left RUNNING whose Optuna trial is no longer running.

    Covers a worker killed between creating its run and recording the run id in Optuna.
    Returns the number of runs closed.
    """
    trials = study.get_trials(deepcopy=False)
    closed = 0
    for run_id, number in running_trial_runs(tracker, experiment_id):
        if number is None or number >= len(trials):
            continue
        if trials[number].state != TrialState.RUNNING:
            closed += close_dead_run(tracker, run_id)
    return closed
