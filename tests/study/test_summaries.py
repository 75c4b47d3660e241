"""``study list``'s summaries: the SQL reader of Optuna's tables says what Optuna's API says."""

from __future__ import annotations

import math

import optuna
import pytest
import sqlalchemy
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from ablate.stores import Stores, resolve_stores
from ablate.study import summaries
from ablate.study.storage import CONFIG_PARAM, ORIGIN_ATTR, REPEAT_ATTR
from ablate.study.summaries import StudySummary, list_summaries

LR = {"optim.lr": FloatDistribution(1e-4, 1e-1, log=True)}
CONFIGS = {CONFIG_PARAM: CategoricalDistribution(["baseline", "no_aug", "focal"])}


def fill(storage: str) -> None:
    """Studies of every kind ``study list`` meets: a search, a fixed design with repeats (one
    repeat run twice), a minimised one with an infinite value, a multi-objective one, an
    empty one; complete, failed, running and waiting trials."""
    quiet = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = optuna.create_study(study_name="search", storage=storage, direction="maximize")
    for i, value in enumerate([0.41, 0.52, 0.47]):
        search.add_trial(create_trial(params={"optim.lr": 10.0 ** -(i + 1)}, distributions=LR,
                                      value=value, user_attrs={ORIGIN_ATTR: i}))
    search.add_trial(create_trial(state=TrialState.FAIL, params={}, distributions={}))
    search.enqueue_trial({"optim.lr": 0.01})
    fixed = optuna.create_study(study_name="fixed", storage=storage, direction="maximize")
    runs = [("baseline", 0, 0.60), ("no_aug", 0, 0.70), ("no_aug", 1, 0.40),
            ("focal", 0, 0.62), ("focal", 1, 0.61), ("no_aug", 1, 0.66)]  # last: a rerun
    for config, repeat, value in runs:
        fixed.add_trial(create_trial(params={CONFIG_PARAM: config}, distributions=CONFIGS,
                                     value=value, user_attrs={REPEAT_ATTR: repeat}))
    fixed.ask()  # a running trial
    low = optuna.create_study(study_name="low", storage=storage, direction="minimize")
    for value in (0.3, float("-inf"), 0.1):
        low.add_trial(create_trial(params={}, distributions={}, value=value))
    multi = optuna.create_study(study_name="multi", storage=storage,
                                directions=["maximize", "minimize"])
    multi.add_trial(create_trial(params={}, distributions={}, values=[0.5, 2.0]))
    optuna.create_study(study_name="empty", storage=storage)
    optuna.logging.set_verbosity(quiet)


def _by_name(found: list[StudySummary]) -> dict[str, StudySummary]:
    return {s.name: s for s in found}


def check_readers_agree(stores: Stores) -> None:
    fill(stores.storage)
    fast = list_summaries(stores)
    assert fast == summaries._read_api(stores)
    assert [s.name for s in fast] == ["search", "fixed", "low", "multi", "empty"]
    found = _by_name(fast)
    s = found["search"]
    assert (s.trials, s.complete, s.failed, s.waiting, s.running) == (5, 3, 1, 1, 0)
    assert s.best == 0.52
    f = found["fixed"]
    assert (f.trials, f.complete, f.running) == (7, 6, 1)
    # no_aug's repeat 1 counts once (its rerun, 0.66): mean 0.68 beats focal's 0.615
    assert f.best == pytest.approx((0.70 + 0.66) / 2)
    assert found["low"].best == -math.inf
    assert found["multi"].best is None and found["multi"].complete == 1
    assert found["empty"] == StudySummary("empty", 0, 0, 0, 0, 0, None, None)
    assert s.started is not None and f.started is not None and s.started <= f.started


def test_sql_reader_equals_optuna_api_on_sqlite(store):
    check_readers_agree(resolve_stores(store))


def test_an_unknown_schema_is_read_through_optuna(store, monkeypatch):
    stores = resolve_stores(store)
    fill(stores.storage)
    expected = summaries._read_api(stores)
    monkeypatch.setattr(summaries, "KNOWN_REVISIONS", frozenset({"v0.0.0"}))
    assert list_summaries(stores) == expected
    engine = sqlalchemy.create_engine(stores.storage)
    with engine.connect() as connection:  # the SQL reader declines it
        assert summaries._read_tables(connection) is None
    engine.dispose()


def test_the_installed_optuna_writes_a_known_schema(store):
    stores = resolve_stores(store)
    optuna.create_study(study_name="s", storage=stores.storage)
    engine = sqlalchemy.create_engine(stores.storage)
    with engine.connect() as connection:
        revisions = {r[0] for r in connection.execute(
            sqlalchemy.text("SELECT version_num FROM alembic_version"))}
    engine.dispose()
    # else every listing takes Optuna's slower path: add the revision once the reader is checked
    assert revisions <= summaries.KNOWN_REVISIONS


def test_a_missing_local_store_lists_nothing(tmp_path):
    assert list_summaries(resolve_stores(tmp_path / "none")) == []
    assert not (tmp_path / "none" / "optuna.db").exists()


def test_study_list_prints_one_aligned_line_per_study(cli, store):
    fill(resolve_stores(store).storage)
    lines = cli("study", "list", "--store", store).output.splitlines()
    assert lines[0].split() == ["study", "trials", "complete", "running", "waiting", "failed",
                                "best", "started"]
    # the first seven columns (started: a date and a time, or -)
    assert [line.split()[:7] for line in lines[1:]] == [
        ["search", "5", "3", "0", "1", "1", "0.5200"],
        ["fixed", "7", "6", "1", "0", "0", "0.6800"],
        ["low", "3", "3", "0", "0", "0", "-inf"],
        ["multi", "1", "1", "0", "0", "0", "-"],
        ["empty", "0", "0", "0", "0", "0", "-"],
    ]
    assert len({len(line) for line in lines}) == 1  # aligned
