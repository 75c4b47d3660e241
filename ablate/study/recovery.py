"""Recovering from dead workers: stale trials are failed, re-queued, and their runs closed."""

from __future__ import annotations

import warnings

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from ablate import tracking as keys
from ablate.stores import Stores
from ablate.study.storage import RUN_ID_ATTR
from ablate.tracking import RunLog, Tracker

WORKER_DIED = "worker died"

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


def close_dead_run(tracker: Tracker, run_id: str, reason: str = WORKER_DIED) -> None:
    """Mark a run whose worker is gone as KILLED (never left RUNNING)."""
    run = tracker.client.get_run(run_id)
    if run.info.status == "RUNNING":
        RunLog(tracker.client, run_id).end("FAIL", reason, killed=True)


def sweep_runs(study: optuna.Study, tracker: Tracker, experiment_id: str) -> int:
    """Close MLflow trial runs left RUNNING whose Optuna trial is no longer running.

    Covers a worker killed between creating its run and recording the run id in Optuna.
    Returns the number of runs closed.
    """
    trials = study.get_trials(deepcopy=False)
    running = tracker.client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{keys.TAG_ROLE}` = 'trial' and attributes.status = 'RUNNING'",
        max_results=10_000,
    )
    closed = 0
    for run in running:
        number = run.data.tags.get(keys.TAG_TRIAL)
        if number is None or not number.isdigit() or int(number) >= len(trials):
            continue
        if trials[int(number)].state != TrialState.RUNNING:
            close_dead_run(tracker, run.info.run_id)
            closed += 1
    return closed
