"""One line per study for ``study list``, read straight from Optuna's tables.

Opening an Optuna storage sets up its ORM and runs alembic's schema check: most of the time of a
listing. Listing needs six SELECTs, so the reader runs them on Optuna's schema as of the alembic
revisions in :data:`KNOWN_REVISIONS`; any other schema goes through Optuna's API, so an Optuna
upgrade can change the speed of a listing, never its content (the tests compare both readers).
Counts are per trial state; ``best`` is the mean objective of the best configuration by
:mod:`ablate.selection`. Neither pandas nor the ORM is imported here.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
import sqlalchemy
from optuna.trial import FrozenTrial, TrialState

from ablate import selection
from ablate.stores import Stores, local_sqlite_missing, read_only_url
from ablate.study.storage import (
    CONFIG_PARAM,
    ORIGIN_ATTR,
    REPEAT_ATTR,
    engine_kwargs,
    open_storage,
    storage_error,
)
from ablate.tracking.names import trial_label

# Optuna's RDB schema revisions (alembic) whose tables the SQL reader knows.
KNOWN_REVISIONS = frozenset({"v3.2.0.a"})


@dataclass(frozen=True)
class TrialRecord:
    """What the best rule reads of a complete trial."""

    number: int
    value: float | None
    config: str | None  # a fixed design's configuration label; None: a search trial
    origin: int  # the number of the configuration's first attempt
    repeat: int

    @classmethod
    def of(cls, trial: FrozenTrial) -> TrialRecord:
        config = trial.params.get(CONFIG_PARAM)
        return cls(trial.number, trial.value, None if config is None else str(config),
                   int(trial.user_attrs.get(ORIGIN_ATTR, trial.number)),
                   int(trial.user_attrs.get(REPEAT_ATTR, 0)))


def best_choice(records: Iterable[TrialRecord], maximize: bool
                ) -> tuple[selection.Choice, int] | None:
    """The best configuration among complete trials and the number of the trial representing
    it (a configuration's repeat counted once: its latest trial)."""
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for r in sorted(records, key=lambda r: r.number):
        config = r.config if r.config is not None else trial_label(r.origin)
        rows[(config, r.repeat)] = {"config": config, "objective": r.value, "order": r.origin,
                                    "repeat": r.repeat, "number": r.number}
    choice = selection.best(rows, maximize)
    if choice is None:
        return None
    return choice, int(rows[choice.row]["number"])  # type: ignore[index]  # row: a key of rows


@dataclass(frozen=True)
class StudySummary:
    """One study: trials by state, its best mean objective, when its first trial started."""

    name: str
    trials: int
    complete: int
    running: int
    waiting: int
    failed: int
    best: float | None
    started: datetime.datetime | None  # local time, as Optuna shows it

    @classmethod
    def of(cls, name: str, states: Sequence[str], best: float | None,
           started: datetime.datetime | None) -> StudySummary:
        return cls(name, len(states), states.count("COMPLETE"), states.count("RUNNING"),
                   states.count("WAITING"), states.count("FAIL"), best, started)


def list_summaries(stores: Stores) -> list[StudySummary]:
    """One summary per study in the storage, in creation order (none when a local SQLite file
    does not exist yet)."""
    if local_sqlite_missing(stores.storage):
        return []
    engine = sqlalchemy.create_engine(read_only_url(stores.storage),
                                      **engine_kwargs(stores.storage))
    try:
        try:
            connection = engine.connect()
        except Exception as err:  # noqa: BLE001 - driver errors differ per database
            raise storage_error(stores.storage, err) from None
        with connection:
            summaries = _read_tables(connection)
    finally:
        engine.dispose()
    return summaries if summaries is not None else _read_api(stores)


def _read_api(stores: Stores) -> list[StudySummary]:
    """The summaries through Optuna's storage API (any schema Optuna can open)."""
    storage = open_storage(stores)
    summaries = []
    for frozen in storage.get_all_studies():
        study_id = storage.get_study_id_from_name(frozen.study_name)
        trials = storage.get_all_trials(study_id, deepcopy=False)
        best = None
        if len(frozen.directions) == 1:
            chosen = best_choice((TrialRecord.of(t) for t in trials
                                  if t.state == TrialState.COMPLETE),
                                 frozen.direction == optuna.study.StudyDirection.MAXIMIZE)
            best = chosen[0].mean if chosen is not None else None
        started = min((t.datetime_start for t in trials if t.datetime_start), default=None)
        summaries.append(StudySummary.of(frozen.study_name, [t.state.name for t in trials],
                                         best, started))
    return summaries


def _query(connection: sqlalchemy.Connection, sql: str, **types: Any) -> list[Any]:
    clause = sqlalchemy.text(sql)
    if types:
        clause = clause.columns(*(sqlalchemy.column(k, t) for k, t in types.items()))  # type: ignore[assignment]
    return list(connection.execute(clause))


def _read_tables(connection: sqlalchemy.Connection) -> list[StudySummary] | None:
    """The summaries by SQL; None when the schema is not one :data:`KNOWN_REVISIONS` names."""
    try:
        revisions = {r[0] for r in _query(connection, "SELECT version_num FROM alembic_version")}
    except sqlalchemy.exc.DBAPIError:
        connection.rollback()  # PostgreSQL: a failed statement aborts the transaction
        return None
    if not revisions or not revisions <= KNOWN_REVISIONS:
        return None
    names = dict(_query(connection, "SELECT study_id, study_name FROM studies ORDER BY study_id"))
    directions: dict[int, list[str]] = {}
    for study, direction in _query(connection, "SELECT study_id, direction FROM "
                                   "study_directions ORDER BY study_id, objective"):
        directions.setdefault(study, []).append(str(direction))
    states: dict[int, list[str]] = {study: [] for study in names}
    started: dict[int, datetime.datetime] = {}
    for study, state, count in _query(connection, "SELECT study_id, state, COUNT(*) FROM trials "
                                      "GROUP BY study_id, state"):
        states[study] += [str(state)] * int(count)
    for study, start in _query(connection, "SELECT study_id, MIN(datetime_start) AS start "
                               "FROM trials GROUP BY study_id", study_id=sqlalchemy.Integer,
                               start=sqlalchemy.DateTime):
        if start is not None:  # stored as naive UTC; Optuna shows naive local time
            started[study] = start.replace(tzinfo=datetime.UTC).astimezone().replace(tzinfo=None)
    records = _complete_records(connection)
    summaries = []
    for study, name in names.items():
        best = None
        if len(directions.get(study, [])) == 1:
            chosen = best_choice(records.get(study, []), directions[study][0] == "MAXIMIZE")
            best = chosen[0].mean if chosen is not None else None
        summaries.append(StudySummary.of(name, states[study], best, started.get(study)))
    return summaries


_INFINITE = {"INF_POS": float("inf"), "INF_NEG": float("-inf")}


def _complete_records(connection: sqlalchemy.Connection) -> dict[int, list[TrialRecord]]:
    """Each study's complete trials with their first objective, label, origin and repeat."""
    complete = "JOIN trials t ON t.trial_id = x.trial_id WHERE t.state = 'COMPLETE'"
    attrs: dict[int, dict[str, Any]] = {}
    for trial, key, value in _query(
            connection, f"SELECT x.trial_id, x.key, x.value_json FROM trial_user_attributes x "
            f"{complete} AND x.key IN ('{ORIGIN_ATTR}', '{REPEAT_ATTR}')"):
        attrs.setdefault(trial, {})[key] = json.loads(value)
    configs = {}
    for trial, value, distribution in _query(
            connection, f"SELECT x.trial_id, x.param_value, x.distribution_json FROM "
            f"trial_params x {complete} AND x.param_name = '{CONFIG_PARAM}'"):
        choice = optuna.distributions.json_to_distribution(distribution).to_external_repr(value)
        configs[trial] = str(choice)
    records: dict[int, list[TrialRecord]] = {}
    for study, trial, number, value, kind in _query(
            connection, f"SELECT t.study_id, x.trial_id, t.number, x.value, x.value_type FROM "
            f"trial_values x {complete} AND x.objective = 0"):
        own = attrs.get(trial, {})
        records.setdefault(study, []).append(TrialRecord(
            int(number), _INFINITE.get(str(kind), value), configs.get(trial),
            int(own.get(ORIGIN_ATTR, number)), int(own.get(REPEAT_ATTR, 0))))
    return records
