"""ablate.study.rdb writes Optuna's tables directly: these tests fail if Optuna changes them.

Each compares what ``rdb`` writes with what Optuna's public API writes for the same study
(row by row, ids and times aside) and checks that Optuna reads and runs it as its own.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from ablate.study import rdb
from ablate.study.queue import Entry, as_queued, entry_of, queue_once

QUEUE = as_queued([Entry(label, repeat) for label in ("baseline", "+a", "+a+b")
                   for repeat in range(2)])
ATTRS = {"ablate_spec": {"name": "s", "nested": [1, 2.5, None, "x"]}}

# Columns that differ between two equal studies (surrogate keys, times).
_IDS = {"study_id", "trial_id", "study_direction_id", "study_user_attribute_id",
        "trial_user_attribute_id", "trial_system_attribute_id", "datetime_start",
        "datetime_complete", "param_id", "trial_value_id", "trial_heartbeat_id", "heartbeat"}


def _storage(path: Path) -> optuna.storages.RDBStorage:
    return optuna.storages.RDBStorage(f"sqlite:///{path}", heartbeat_interval=1,
                                      grace_period=3)


def _rows(path: Path) -> dict[str, list[tuple]]:
    """Every table's rows without ids and times, in a stable order."""
    out = {}
    with closing(sqlite3.connect(path)) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
                  if r[0] not in ("version_info", "alembic_version")]
        for table in tables:
            cursor = db.execute(f"SELECT * FROM {table}")  # noqa: S608 - table names from sqlite
            columns = [c[0] for c in cursor.description]
            keep = [i for i, c in enumerate(columns) if c not in _IDS]
            out[table] = sorted(tuple(row[i] for i in keep) for row in cursor.fetchall())
    return out


def _public(path: Path, queue: list[rdb.QueuedTrial]) -> optuna.Study:
    study = optuna.create_study(study_name="s", storage=_storage(path),
                                directions=["maximize", "minimize"])
    for key, value in ATTRS.items():
        study.set_user_attr(key, value)
    for item in queue:
        study.enqueue_trial(item.params, user_attrs=item.user_attrs)
    return study


def test_create_study_writes_what_the_public_api_writes(tmp_path):
    _public(tmp_path / "public.db", QUEUE)
    rdb.create_study(_storage(tmp_path / "rdb.db"), "s", ["maximize", "minimize"], ATTRS, QUEUE)
    assert _rows(tmp_path / "rdb.db") == _rows(tmp_path / "public.db")


def test_enqueue_appends_what_enqueue_trial_appends(tmp_path):
    study = _public(tmp_path / "public.db", QUEUE[:2])
    study.optimize(lambda t: (1.0, 2.0), n_trials=1)  # numbers go on after a finished trial
    for item in QUEUE[2:]:
        study.enqueue_trial(item.params, user_attrs=item.user_attrs)
    storage = _storage(tmp_path / "rdb.db")
    ours = _public(tmp_path / "rdb.db", QUEUE[:2])
    ours.optimize(lambda t: (1.0, 2.0), n_trials=1)
    rdb.enqueue(storage, storage.get_study_id_from_name("s"), QUEUE[2:])
    assert _rows(tmp_path / "rdb.db") == _rows(tmp_path / "public.db")
    trials = optuna.load_study(study_name="s", storage=storage).get_trials()
    assert [t.number for t in trials] == list(range(len(QUEUE)))


def test_optuna_runs_the_queued_trials_in_order(tmp_path):
    storage = _storage(tmp_path / "rdb.db")
    rdb.create_study(storage, "s", ["maximize"], ATTRS, QUEUE)
    study = optuna.load_study(study_name="s", storage=storage)
    assert study.user_attrs == ATTRS
    seen = []

    def objective(trial: optuna.Trial) -> float:
        seen.append((trial.suggest_categorical("config", ["baseline", "+a", "+a+b"]),
                     trial.user_attrs["repeat"]))
        return 0.5

    study.optimize(objective, n_trials=len(QUEUE))
    assert seen == [(q.params["config"], q.user_attrs["repeat"]) for q in QUEUE]
    assert all(t.state == TrialState.COMPLETE for t in study.trials)


def test_a_failed_transaction_leaves_no_study(tmp_path):
    storage = _storage(tmp_path / "rdb.db")
    bad = [*QUEUE, rdb.QueuedTrial({"config": object()})]  # not JSON: fails mid-queue
    with pytest.raises(TypeError):
        rdb.create_study(storage, "s", ["maximize"], ATTRS, bad)
    assert optuna.get_all_study_names(storage) == []
    assert _rows(tmp_path / "rdb.db")["trials"] == []


def test_queue_once_adds_only_what_no_trial_carries(tmp_path):
    storage = _storage(tmp_path / "rdb.db")
    rdb.create_study(storage, "s", ["maximize"], {}, QUEUE[:3])
    study = optuna.load_study(study_name="s", storage=storage)
    entries = [entry_of(t) for t in study.get_trials()]
    assert queue_once(study, storage, entries) == []
    wanted = [Entry("baseline", 0), Entry("+a+b", 1), Entry("+a+b", 2), Entry("+a+b", 2)]
    assert queue_once(study, storage, wanted) == [Entry("+a+b", 1), Entry("+a+b", 2)]
    assert queue_once(study, storage, wanted) == []
    assert sorted(map(entry_of, study.get_trials())) == sorted(
        [Entry("baseline", 0), Entry("baseline", 1), Entry("+a", 0), Entry("+a+b", 1),
         Entry("+a+b", 2)])


def test_running_without_heartbeat(tmp_path):
    storage = _storage(tmp_path / "rdb.db")
    rdb.create_study(storage, "s", ["maximize"], {}, QUEUE[:2])
    study = optuna.load_study(study_name="s", storage=storage)
    study_id = storage.get_study_id_from_name("s")
    first, second = study.get_trials()
    for trial in (first, second):  # as Study.ask pops a queued trial
        assert storage.set_trial_state_values(trial._trial_id, TrialState.RUNNING)
    storage.record_heartbeat(second._trial_id)
    found = rdb.running_without_heartbeat(storage, study_id)
    assert [trial_id for trial_id, _ in found] == [first._trial_id]
    assert found[0][1] == storage.get_trial(first._trial_id).datetime_start
