"""The few writes Optuna's public API cannot make atomic, done on its RDB tables directly.

Optuna creates a study, sets an attribute and enqueues a trial in separate transactions, one
trial at a time (8 s for 768 trials on SQLite), and it makes a trial RUNNING before its first
heartbeat. Here: a study with its spec and its whole queue in one transaction, a queue
appended in one transaction, and the RUNNING trials that have no heartbeat yet. Rows are
written exactly as ``optuna.create_study``, ``Study.set_user_attr`` and
``Study.enqueue_trial`` write them; ``tests/test_rdb.py`` compares both ways and fails if a
new Optuna version stores them differently. Nothing else in ablate imports Optuna's internals.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import optuna
import sqlalchemy
from optuna.storages import RDBStorage
from optuna.storages._rdb import models
from optuna.study import StudyDirection
from optuna.trial import TrialState

from ablate.testing.faults import fault_point

FIXED_PARAMS = "fixed_params"  # the system attribute Study.enqueue_trial stores params in


@dataclass(frozen=True)
class QueuedTrial:
    """A WAITING trial as ``Study.enqueue_trial(params, user_attrs=...)`` creates it."""

    params: dict[str, Any]
    user_attrs: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def _transaction(storage: RDBStorage) -> Iterator[Any]:
    session = storage.scoped_session()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def create_study(
    storage: RDBStorage,
    name: str,
    directions: Sequence[str],
    user_attrs: dict[str, Any],
    queue: Sequence[QueuedTrial],
    replace: bool = False,
    system_attrs: dict[str, Any] | None = None,
) -> int:
    """Create study ``name`` with its user (and system) attributes and queue in one
    transaction (replacing a study of that name when ``replace``); returns its id. A crash
    leaves no trace of it."""
    with _transaction(storage) as session:
        if replace:
            old = models.StudyModel.find_by_name(name, session)
            if old is not None:
                session.delete(old)
                session.flush()
        study = models.StudyModel(
            study_name=name,
            directions=[
                models.StudyDirectionModel(objective=i, direction=StudyDirection[d.upper()])
                for i, d in enumerate(directions)
            ],
        )
        study.user_attributes = [
            models.StudyUserAttributeModel(key=k, value_json=json.dumps(v))
            for k, v in user_attrs.items()
        ]
        study.system_attributes = [
            models.StudySystemAttributeModel(key=k, value_json=json.dumps(v))
            for k, v in (system_attrs or {}).items()
        ]
        session.add(study)
        try:
            session.flush()
        except sqlalchemy.exc.IntegrityError:
            raise optuna.exceptions.DuplicatedStudyError(name) from None
        fault_point("after_study_row")
        study_id = int(study.study_id)
        _add_trials(session, study_id, 0, queue)
    return study_id


def enqueue(storage: RDBStorage, study_id: int, queue: Sequence[QueuedTrial]) -> None:
    """Append ``queue`` to a study's trials in one transaction."""
    if not queue:
        return
    with _transaction(storage) as session:
        # A no-op write first: it takes SQLite's write lock and the study row's lock elsewhere,
        # so the trial count below stays true until commit (as Optuna's SELECT FOR UPDATE).
        session.execute(
            sqlalchemy.update(models.StudyModel)
            .where(models.StudyModel.study_id == study_id)
            .values(study_name=models.StudyModel.study_name)
        )
        count = session.scalar(
            sqlalchemy.select(sqlalchemy.func.count(models.TrialModel.trial_id)).where(
                models.TrialModel.study_id == study_id
            )
        )
        _add_trials(session, study_id, int(count or 0), queue)


def _add_trials(session: Any, study_id: int, first: int, queue: Sequence[QueuedTrial]) -> None:
    """Insert the queue as WAITING trials numbered from ``first`` (bulk inserts, in order)."""
    half = len(queue) // 2
    _insert(session, study_id, first, queue[:half])
    if half:
        fault_point("mid_queue")
    _insert(session, study_id, first + half, queue[half:])


def _insert(session: Any, study_id: int, first: int, part: Sequence[QueuedTrial]) -> None:
    if not part:
        return
    rows = [{"study_id": study_id, "number": first + i, "state": TrialState.WAITING}
            for i in range(len(part))]
    ids = session.execute(
        sqlalchemy.insert(models.TrialModel).returning(
            models.TrialModel.trial_id, sort_by_parameter_order=True
        ),
        rows,
    ).scalars().all()
    pairs = list(zip(ids, part, strict=True))
    user = [{"trial_id": trial_id, "key": k, "value_json": json.dumps(v)}
            for trial_id, item in pairs for k, v in item.user_attrs.items()]
    if user:
        session.execute(sqlalchemy.insert(models.TrialUserAttributeModel), user)
    session.execute(
        sqlalchemy.insert(models.TrialSystemAttributeModel),
        [{"trial_id": trial_id, "key": FIXED_PARAMS, "value_json": json.dumps(item.params)}
         for trial_id, item in pairs],
    )


def running_without_heartbeat(storage: RDBStorage, study_id: int) -> list[tuple[int, datetime]]:
    """``(trial id, start time)`` of the study's RUNNING trials that have no heartbeat yet
    (Optuna's stale-trial check skips them). Start times are naive local time, as
    ``FrozenTrial.datetime_start``."""
    with _transaction(storage) as session:
        beats = sqlalchemy.select(models.TrialHeartbeatModel.trial_id).where(
            models.TrialHeartbeatModel.trial_id == models.TrialModel.trial_id
        )
        trials = (
            session.query(models.TrialModel)
            .filter(models.TrialModel.study_id == study_id)
            .filter(models.TrialModel.state == TrialState.RUNNING)
            .filter(~beats.exists())
            .all()
        )
        return [(int(t.trial_id), t.datetime_start) for t in trials
                if t.datetime_start is not None]


def trial_state(storage: RDBStorage, trial_id: int) -> TrialState:
    """The state of one trial, read with one small query (a worker's fence asks it before
    every write)."""
    with _transaction(storage) as session:
        state = session.scalar(
            sqlalchemy.select(models.TrialModel.state).where(
                models.TrialModel.trial_id == trial_id))
    if state is None:
        raise KeyError(f"no trial with id {trial_id}")
    return TrialState(state) if not isinstance(state, TrialState) else state


def set_finished_user_attr(storage: RDBStorage, trial_id: int, key: str, value: Any) -> None:
    """Set a user attribute on a trial that has finished (Optuna's API refuses: a finished
    trial is not updatable), as ``Trial.set_user_attr`` stores it."""
    with _transaction(storage) as session:
        row = session.scalar(
            sqlalchemy.select(models.TrialUserAttributeModel).where(
                models.TrialUserAttributeModel.trial_id == trial_id,
                models.TrialUserAttributeModel.key == key))
        if row is None:
            session.add(models.TrialUserAttributeModel(trial_id=trial_id, key=key,
                                                       value_json=json.dumps(value)))
        else:
            row.value_json = json.dumps(value)
