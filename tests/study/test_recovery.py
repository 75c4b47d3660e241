"""Crash safety across processes: SIGKILL mid-trial and resume; several workers on one store."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from contextlib import closing
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from ablate.study.storage import RUN_ID_ATTR
from ablate.tracking import names as keys
from tests.conftest import REPO, spec_dict

pytestmark = pytest.mark.slow  # trains, or starts processes or servers


def _ablate(*args: object, env_extra: dict | None = None) -> subprocess.Popen:
    # A 1 s heartbeat makes a killed worker's trial stale within 3 s.
    env = {**os.environ, "ABLATE_HEARTBEAT": "1", **(env_extra or {})}
    for var in ("ABLATE_STORAGE", "MLFLOW_TRACKING_URI", "ABLATE_STORE"):
        env.pop(var, None)
    return subprocess.Popen(
        [sys.executable, "-m", "ablate.cli", *map(str, args)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _study(store: Path, name: str = "tiny") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{store / 'optuna.db'}")


def _trial_runs(store: Path, name: str = "tiny") -> list:
    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(name).experiment_id
    return client.search_runs([experiment], f"tags.`{keys.TAG_ROLE}` = 'trial'")


def _running_trial_numbers(store: Path, with_run: bool = False) -> list[int]:
    """Numbers of RUNNING trials (``with_run``: only those whose MLflow run exists), read
    without writing to the store.

    ``optuna.load_study`` creates missing tables, which races with the runner creating them on
    a fresh store; a read-only SQLite connection cannot interfere.
    """
    db = store / "optuna.db"
    if not db.exists():
        return []
    query = "SELECT number FROM trials t WHERE state = 'RUNNING'"
    if with_run:
        query += (" AND EXISTS (SELECT 1 FROM trial_user_attributes a"
                  f" WHERE a.trial_id = t.trial_id AND a.key = '{RUN_ID_ATTR}')")
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
            rows = conn.execute(query).fetchall()
    except sqlite3.OperationalError:  # tables not created yet, or a write in progress
        return []
    return [number for (number,) in rows]


def _wait_for_running_trial(proc: subprocess.Popen, store: Path, after: int,
                            with_run: bool = False, timeout: float = 300) -> None:
    """Block until some trial numbered >= ``after`` is RUNNING; fail if the runner exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(number >= after for number in _running_trial_numbers(store, with_run)):
            return
        if proc.poll() is not None:
            output = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"runner exited ({proc.returncode}) before trial {after} "
                                 f"started:\n{output}")
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"no trial numbered >= {after} started within {timeout} s")


def _kill_during_trial(path: Path, store: Path, after: int, delay: float,
                       with_run: bool = False) -> None:
    """Start a runner, SIGKILL it ``delay`` s into a trial numbered >= ``after`` (counted from
    when its MLflow run exists, with ``with_run``)."""
    proc = _ablate("study", "run", path, "--store", store, "--quiet")
    _wait_for_running_trial(proc, store, after, with_run)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _resume(store: Path) -> None:
    final = _ablate("study", "run", "tiny", "--store", store, "--quiet")
    output, _ = final.communicate(timeout=300)
    assert final.returncode == 0, output


def test_sigkill_mid_trial_then_resume_runs_each_configuration_once(write_spec, store):
    spec = spec_dict(
        optim={"epochs": 3},
        design={"kind": "cumulative", "components": ["augment.hflip", "augment.vflip",
                                                     "augment.rot90"]},
    )
    del spec["search"]
    path = write_spec(spec)
    # Kill at different points: early in the first trial (its run may not exist yet), then
    # mid-way through a later one (its run open for 0.5 s).
    _kill_during_trial(path, store, 0, 0.3)
    _kill_during_trial(path, store, 1, 0.5, with_run=True)
    _resume(store)

    trials = _study(store).get_trials(deepcopy=False)
    states = Counter(t.state for t in trials)
    assert states[TrialState.RUNNING] == 0 and states[TrialState.WAITING] == 0
    complete = Counter(t.params["config"] for t in trials if t.state == TrialState.COMPLETE)
    assert complete == {"baseline": 1, "+hflip": 1, "+hflip+vflip": 1,
                        "+hflip+vflip+rot90": 1}
    assert states[TrialState.FAIL] >= 2  # the killed attempts, re-run as new trials

    runs = _trial_runs(store)
    assert not [r for r in runs if r.info.status == "RUNNING"]
    done = Counter(r.data.tags[keys.TAG_CONFIG] for r in runs
                   if r.data.tags[keys.TAG_STATE] == "COMPLETE")
    assert done == complete
    killed = [r for r in runs if r.info.status == "KILLED"]
    # Every killed attempt that had opened its MLflow run has it closed as KILLED (a kill in
    # the first 0.3 s may come before the run exists); the mid-trial kill always has one.
    opened = {t.user_attrs["mlflow_run_id"] for t in trials
              if t.state == TrialState.FAIL and "mlflow_run_id" in t.user_attrs}
    assert opened and opened <= {r.info.run_id for r in killed}
    assert all(r.data.tags[keys.TAG_REASON] == "worker died" for r in killed)


def test_search_resumes_to_its_budget_after_sigkill(write_spec, store):
    path = write_spec(spec_dict(trials=3, optim={"epochs": 2}))
    _kill_during_trial(path, store, 1, 0.5)
    _resume(store)
    trials = _study(store).get_trials(deepcopy=False)
    states = Counter(t.state for t in trials)
    assert states[TrialState.COMPLETE] == 3 and states[TrialState.RUNNING] == 0
    # the killed trial's sampled values were run again, not lost
    killed = [t for t in trials if t.state == TrialState.FAIL]
    retried = [t for t in trials if t.state == TrialState.COMPLETE
               and t.user_attrs.get("origin_trial") in {k.number for k in killed}]
    assert retried and retried[0].params == killed[0].params


def test_four_workers_share_eight_trials_on_the_default_store(write_spec, store):
    path = write_spec(spec_dict(trials=8, optim={"epochs": 1},
                                data={"synthetic": {"num_images": 8, "channels": 3, "size": 32,
                                                    "seed": 1}}))
    # Nobody is killed here: the default heartbeat, so that 4 workers on 2 cores never miss one
    # for 3 s and fail each other's live trials as stale.
    proc = _ablate("study", "run", path, "--store", store, "--workers", "4",
                   env_extra={"ABLATE_HEARTBEAT": "10"})
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, output
    assert "locked" not in output.lower()
    assert len({f"[w{i}]" for i in range(4) if f"[w{i}]" in output}) >= 2  # work was shared
    trials = _study(store).get_trials(deepcopy=False)
    reasons = {t.number: t.user_attrs for t in trials if t.state != TrialState.COMPLETE}
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 8, (reasons, output)
    runs = _trial_runs(store)
    assert len(runs) == 8
    assert sorted(int(r.data.tags[keys.TAG_TRIAL]) for r in runs) == list(range(8))


_OPEN_FRESH_STORE = """
import sys, time
from pathlib import Path
from ablate.stores import resolve_stores
from ablate.study.storage import open_storage
from ablate.tracking import Tracker

store, ready, me, count = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
stores = resolve_stores(store)
(ready / me).touch()
while len(list(ready.iterdir())) < count:  # start together, once every process has imported
    time.sleep(0.01)
open_storage(stores, write=True)
Tracker(stores).experiment_id("tiny")
"""


def test_processes_opening_a_fresh_store_together_do_not_collide(empty_store, tmp_path):
    store = empty_store
    # Optuna and MLflow create their tables on first open; without the first-open lock two
    # processes starting at once on a fresh store fail with "table ... already exists".
    ready = tmp_path / "ready"
    ready.mkdir()
    procs = [
        subprocess.Popen([sys.executable, "-c", _OPEN_FRESH_STORE, str(store), str(ready),
                          str(i), "3"],
                         cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for i in range(3)
    ]
    outputs = [proc.communicate(timeout=300)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], "\n".join(outputs)
    assert _study_count(store) == 0 and len(_experiments(store)) >= 1


def _study_count(store: Path) -> int:
    return len(optuna.get_all_study_names(f"sqlite:///{store / 'optuna.db'}"))


def _experiments(store: Path) -> list:
    return MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}").search_experiments()
