"""Recovering from dead workers: stale trials are failed, re-queued, and their runs closed.

A trial is dead when its worker stopped without telling Optuna: its heartbeat went silent
(Optuna's check), or it never sent one (killed between turning RUNNING and the first beat:
Optuna's check skips those, so they are failed here once they are older than the grace
period). A dead trial is recorded FAIL without a reason; its configuration is queued again
exactly once (same params, attributes, design entry and seed) and every MLflow run of it is
closed as KILLED. A configuration whose worker died ``max_worker_deaths`` times in a row (the
system's out-of-memory killer, say) is not queued again: its last trial gets that reason.
Each step can be interrupted: :func:`recover` on the next start-up finishes whatever a dead
worker left half done. Callers hold the study's BudgetLock.
"""

from __future__ import annotations

import copy
import warnings
from datetime import datetime

import optuna
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from ablate.stores import Stores
from ablate.study import rdb
from ablate.study.storage import DEATHS_ATTR, REASON_ATTR, RETRIED_ATTR, RUN_ID_ATTR
from ablate.testing.faults import fault_point
from ablate.tracking import Tracker, close_dead_run, close_trial_runs, running_trial_runs

# system attrs, as Optuna's RetryHeartbeatStaleTrialCallback writes them: the numbers of the
# attempts a retry replaces, and the one it retries
RETRY_HISTORY = "retry_history"
FAILED_TRIAL = "failed_trial"
WORKER_DIED = "worker died"
TAKEN_OVER = "its trial died or was taken over by another worker"


def retry(study: optuna.Study, trial: FrozenTrial, died: bool) -> None:
    """Queue ``trial``'s configuration again as a new WAITING trial (same params, attributes,
    design entry and seed), as Optuna's stale-trial retry does; ``died``: its worker died
    (counted towards ``max_worker_deaths``), rather than being stopped or interrupted."""
    system_attrs = {FAILED_TRIAL: trial.number, RETRY_HISTORY: [], **trial.system_attrs}
    system_attrs[RETRY_HISTORY] = [*system_attrs[RETRY_HISTORY], trial.number]
    # the new attempt starts without the old one's run and failure
    attrs = {k: v for k, v in trial.user_attrs.items()
             if k not in (REASON_ATTR, RUN_ID_ATTR, RETRIED_ATTR)}
    attrs[DEATHS_ATTR] = int(trial.user_attrs.get(DEATHS_ATTR, 0)) + 1 if died else 0
    study.add_trial(optuna.trial.create_trial(
        state=TrialState.WAITING, params=trial.params, distributions=trial.distributions,
        user_attrs=attrs, system_attrs=system_attrs))


def retried(trials: list[FrozenTrial]) -> set[int]:
    """Numbers of the trials that were queued again already."""
    return {n for t in trials for n in t.system_attrs.get(RETRY_HISTORY, [])}


class StaleTrialHandler:
    """Optuna's callback for a trial failed as stale: its configuration is queued again (or,
    after ``max_worker_deaths`` deaths in a row, given up with that reason) and its MLflow
    runs are closed as KILLED."""

    def __init__(self, stores: Stores, study_name: str, max_worker_deaths: int):
        self.stores = stores
        self.study_name = study_name
        self.max_worker_deaths = max_worker_deaths
        self.storage: optuna.storages.RDBStorage | None = None  # set once opened with it

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        fault_point("after_stale_fail")
        assert self.storage is not None
        reason = requeue_dead(study, self.storage, trial, self.max_worker_deaths)
        close_runs(Tracker(self.stores), self.study_name, trial, reason)


def requeue_dead(study: optuna.Study, storage: optuna.storages.RDBStorage, trial: FrozenTrial,
                 max_worker_deaths: int) -> str:
    """Queue a dead trial's configuration again, or give it up once it was retried
    ``max_worker_deaths`` times after its worker died (the reason is recorded on the trial);
    returns the reason its runs are closed with."""
    deaths = int(trial.user_attrs.get(DEATHS_ATTR, 0)) + 1
    if deaths <= max_worker_deaths:
        retry(study, trial, died=True)
        return WORKER_DIED
    reason = (f"its worker died {deaths} times in a row, retried {deaths - 1} times "
              f"(max_worker_deaths: {max_worker_deaths}): given up")
    trial_id = storage.get_trial_id_from_study_id_trial_number(
        storage.get_study_id_from_name(study.study_name), trial.number)
    rdb.set_finished_user_attr(storage, trial_id, REASON_ATTR, reason)
    return reason


def close_runs(tracker: Tracker, study_name: str, trial: FrozenTrial,
               reason: str = WORKER_DIED) -> None:
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


def requeue_lost(study: optuna.Study, storage: optuna.storages.RDBStorage, tracker: Tracker,
                 max_worker_deaths: int) -> list[int]:
    """Queue again each dead trial that was never queued again (its worker or the worker
    that failed it was killed in between), and close its runs; returns their numbers."""
    trials = study.get_trials(deepcopy=False)
    done = retried(trials)
    lost = [copy.deepcopy(t) for t in trials if is_dead(t) and t.number not in done]
    for trial in lost:
        reason = requeue_dead(study, storage, trial, max_worker_deaths)
        close_runs(tracker, study.study_name, trial, reason)
    return [t.number for t in lost]


def requeue(study: optuna.Study, number: int) -> bool:
    """Queue trial ``number``'s configuration again after it was stopped (an interrupt, a
    store that failed), unless it already was; returns whether it was queued."""
    trials = study.get_trials(deepcopy=True)
    trial = trials[number]
    if not is_dead(trial) or number in retried(trials):
        return False
    retry(study, trial, died=False)
    return True


def sweep_runs(study: optuna.Study, tracker: Tracker, experiment_id: str) -> int:
    """Close MLflow trial runs left RUNNING whose Optuna trial is no longer running, and
    runs that ended COMPLETE for a trial that died or was taken over (never a result).

    Covers a worker killed between creating its run and recording the run id in Optuna, and
    one killed between ending its run and closing it again when it found its trial taken
    over. Returns the number of runs closed.
    """
    trials = study.get_trials(deepcopy=False)
    closed = 0
    for run_id, number in running_trial_runs(tracker, experiment_id):
        if number is None or number >= len(trials):
            continue
        if trials[number].state != TrialState.RUNNING:
            closed += close_dead_run(tracker, run_id)
    for trial in trials:  # rare: a worker killed while closing a run it found taken over
        if is_dead(trial):
            closed += close_trial_runs(tracker, experiment_id, trial.number, TAKEN_OVER)
    return closed
