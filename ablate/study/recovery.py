"""Recovering from dead workers: stale trials are failed, re-queued, and their runs closed.

A trial is dead when its worker stopped without telling Optuna: its heartbeat went silent
(Optuna's check), or it never sent one (killed between turning RUNNING and the first beat:
Optuna's check skips those, so they are failed here once they are older than the grace
period). A dead trial is recorded FAIL without a reason; its configuration is queued again
exactly once (same params, attributes, design entry and seed) and every MLflow run of it is
closed as KILLED. Each step can be interrupted: :func:`recover` on the next start-up finishes
whatever a dead worker left half done. Callers hold the study's BudgetLock.
"""

from __future__ import annotations

import copy
import warnings
from datetime import datetime

import optuna
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from ablate.stores import Stores
from ablate.study import rdb
from ablate.study.storage import REASON_ATTR, RUN_ID_ATTR
from ablate.testing.faults import fault_point
from ablate.tracking import Tracker, close_dead_run, close_trial_runs, running_trial_runs

with warnings.catch_warnings():  # experimental since Optuna 2.8, and the supported way
    warnings.simplefilter("ignore", ExperimentalWarning)
    _retry = RetryHeartbeatStaleTrialCallback(max_retry=None)

RETRY_HISTORY = "retry_history"  # system attr: numbers of the attempts a retry replaces


class StaleTrialHandler:
    """Optuna's callback for a trial failed as stale: its configuration is queued again and
    its MLflow runs are closed as KILLED with reason "worker died"."""

    def __init__(self, stores: Stores, study_name: str):
        self.stores = stores
        self.study_name = study_name

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        fault_point("after_stale_fail")
        _retry(study, trial)
        close_runs(Tracker(self.stores), self.study_name, trial)


def close_runs(tracker: Tracker, study_name: str, trial: FrozenTrial,
               reason: str = "worker died") -> None:
    """Close every run of a dead trial: the one whose id Optuna holds, and any other carrying
    the trial's number (created, but killed before its id was stored)."""
    run_id = trial.user_attrs.get(RUN_ID_ATTR)
    if run_id:
        close_dead_run(tracker, run_id, reason, finished=True)
    experiment = tracker.experiment_id(study_name, create=False)
    if experiment is not None:
        close_trial_runs(tracker, experiment, trial.number, reason)


def fail_stale_trials(study: optuna.Study, storage: optuna.storages.RDBStorage) -> None:
    """Fail the dead RUNNING trials (silent heartbeat, or none past the grace period) and
    run the storage's stale-trial callback on each."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    grace = storage.grace_period or 2 * (storage.heartbeat_interval or 0)
    # (named failed_trial_callback before Optuna 4.9)
    callback = (getattr(storage, "heartbeat_stale_trial_callback", None)
                or getattr(storage, "failed_trial_callback", None))
    now = datetime.now()
    study_id = storage.get_study_id_from_name(study.study_name)
    for trial_id, started in rdb.running_without_heartbeat(storage, study_id):
        if (now - started).total_seconds() <= grace:
            continue
        try:
            failed = storage.set_trial_state_values(trial_id, TrialState.FAIL)
        except UpdateFinishedTrialError:
            failed = False  # another worker failed it first
        if failed and callback is not None:
            callback(study, storage.get_trial(trial_id))


def is_dead(trial: FrozenTrial) -> bool:
    """A FAIL without a reason: the worker died or was interrupted (a real failure of the
    configuration always records its reason)."""
    return trial.state == TrialState.FAIL and REASON_ATTR not in trial.user_attrs


def requeue_lost(study: optuna.Study, tracker: Tracker) -> list[int]:
    """Queue again each dead trial that was never queued again (its worker or the worker
    that failed it was killed in between), and close its runs; returns their numbers."""
    trials = study.get_trials(deepcopy=False)
    retried = {n for t in trials for n in t.system_attrs.get(RETRY_HISTORY, [])}
    lost = [copy.deepcopy(t) for t in trials if is_dead(t) and t.number not in retried]
    for trial in lost:
        _retry(study, trial)
        close_runs(tracker, study.study_name, trial)
    return [t.number for t in lost]


def requeue(study: optuna.Study, number: int) -> None:
    """Queue trial ``number``'s configuration again (after an interrupt)."""
    trial = study.get_trials(deepcopy=True)[number]
    if is_dead(trial):
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
