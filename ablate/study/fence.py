"""A trial's fence: a worker writes for a trial only while the trial is still its own.

A worker frozen past the grace period (a suspended job, a paused VM, heavy swapping) is taken
for dead: its trial is failed and queued again, and another worker runs it. The fencing token
is the trial itself: Optuna never revives a failed trial (the configuration comes back as a
new trial), so the trial is this worker's exactly while it is RUNNING. Optuna checks that in
the transaction of each of its own writes (``UpdateFinishedTrialError``); MLflow has no
transactions, so its writes and the resume checkpoints are checked immediately before, and a
run that ended COMPLETE just before its trial was taken over is closed again as KILLED when
the tell finds the trial gone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from ablate.errors import TakenOver
from ablate.stores import StoreWatch
from ablate.study import rdb


class TrialFence:
    """The checks before a worker writes for trial ``trial_id`` (a run's ``WriteFence``)."""

    def __init__(self, storage: optuna.storages.RDBStorage, trial_id: int, watch: StoreWatch):
        self.storage = storage
        self.trial_id = trial_id
        self.watch = watch

    def check(self, owned: bool = True) -> None:
        """StoreLost when a store is gone; with ``owned``, TakenOver when the trial is no
        longer RUNNING (another worker took it over)."""
        self.watch.check()
        if owned and rdb.trial_state(self.storage, self.trial_id) != TrialState.RUNNING:
            raise TakenOver(f"trial id {self.trial_id} was taken over by another worker")


@contextlib.contextmanager
def optuna_writes() -> Iterator[None]:
    """Optuna's refusal to update a finished trial, as TakenOver: the trial this worker is
    still writing for was failed as stale and queued again."""
    try:
        yield
    except UpdateFinishedTrialError as err:
        raise TakenOver(str(err)) from None
