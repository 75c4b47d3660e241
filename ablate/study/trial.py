"""One trial from ask to tell: its heartbeat, the objective, and a tell that never reports
what is not stored or what another worker now owns."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from ablate.errors import StoreLost, TakenOver
from ablate.stores import Stores, StoreWatch
from ablate.study.fence import TrialFence
from ablate.study.objective import TrialFailed, TrialObjective
from ablate.study.storage import Heartbeat


@dataclass(frozen=True)
class Watches:
    """The stores' files a worker writes to: ``all`` of them, and the Optuna ``storage``
    alone (which may still work when the MLflow store is gone)."""

    all: StoreWatch
    storage: StoreWatch

    @classmethod
    def of(cls, stores: Stores) -> Watches:
        return cls(StoreWatch(stores.storage, stores.tracking_uri), StoreWatch(stores.storage))


def run_trial(study: optuna.Study, storage: optuna.storages.RDBStorage,
              objective: TrialObjective, watches: Watches) -> FrozenTrial | None:
    """Ask for a trial, train it and tell Optuna how it ended; returns it as told, or None
    when another worker took it over meanwhile (this worker then wrote nothing more for it).

    Ctrl-C / SIGTERM and a store that stopped working are raised on after the trial is told
    FAIL (when the Optuna storage still works), so that the caller can queue it again."""
    with warnings.catch_warnings():  # ablate beats the heartbeat itself (Heartbeat below)
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed")
        trial = study.ask()
    trial_id = storage.get_trial_id_from_study_id_trial_number(
        storage.get_study_id_from_name(study.study_name), trial.number)
    fence = TrialFence(storage, trial_id, watches.all)
    values: float | tuple[float, ...] | None = None
    with Heartbeat(storage, trial_id):
        try:
            values = objective(trial, fence)
            state = TrialState.COMPLETE
        except optuna.TrialPruned:
            state = TrialState.PRUNED
        except TrialFailed:
            state = TrialState.FAIL
        except TakenOver:
            objective.taken_over()
            return None
        except (KeyboardInterrupt, StoreLost):
            _tell_stopped(study, trial, watches.storage)
            raise
    if not _tell(study, trial, state, values, watches.all):
        objective.taken_over()
        return None
    objective.finished()
    return storage.get_trial(trial_id)


def _tell(study: optuna.Study, trial: optuna.Trial, state: TrialState,
          values: float | tuple[float, ...] | None, watch: StoreWatch) -> bool:
    """Tell ``state``; False when the trial is no longer RUNNING (taken over: Optuna checks it
    in the transaction that writes the state). Nothing is told COMPLETE while a store is gone
    (StoreLost)."""
    watch.check()
    try:
        study.tell(trial, values if state == TrialState.COMPLETE else None, state=state)
    except UpdateFinishedTrialError:
        return False
    except ValueError as err:
        if "Cannot tell a" in str(err):  # read as finished before the write
            return False
        raise
    return True


def _tell_stopped(study: optuna.Study, trial: optuna.Trial, watch: StoreWatch) -> None:
    """A stopped trial told FAIL (no reason: the caller queues it again), if it is still this
    worker's and the Optuna storage still works."""
    try:
        watch.check()
        study.tell(trial, state=TrialState.FAIL)
    except (StoreLost, UpdateFinishedTrialError, ValueError):
        pass
