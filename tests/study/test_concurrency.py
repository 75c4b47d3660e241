"""Start anywhere, stop any time: workers started at once on a fresh store, and signals.

- ``ablate study run SPEC`` started by three processes at the same instant on a fresh store:
  one study, one parent run, every configuration once, and the work shared;
- SIGTERM to the launcher of ``--workers 2``: every worker stops, their trials are queued
  again, nothing is left RUNNING, exit code 130; a resume finishes the study;
- two Ctrl-C in a row: the clean-up after the first is not cut short (no RUNNING run).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest
import yaml

from ablate.study.storage import RUN_ID_ATTR
from tests import processes
from tests.audit import audit
from tests.study.test_kill_anywhere import kill_spec

pytestmark = pytest.mark.slow  # trains, or starts processes or servers

INTERRUPTED = 130


def _spec(tmp_path: Path, components: list[str]) -> Path:
    spec = kill_spec()
    spec["design"]["components"] = components
    spec["optim"]["epochs"] = 2
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _running_with_run(store: Path) -> int:
    """RUNNING trials whose MLflow run exists, read without writing to the store."""
    db = store / "optuna.db"
    if not db.exists():
        return 0
    query = ("SELECT count(*) FROM trials t WHERE state = 'RUNNING' AND EXISTS (SELECT 1 FROM "
             f"trial_user_attributes a WHERE a.trial_id = t.trial_id AND a.key = '{RUN_ID_ATTR}')")
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
            return int(conn.execute(query).fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def _wait_until(predicate, proc, timeout: float = 300) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        assert proc.is_alive(), f"exited early with {proc.exitcode}"
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_three_runs_of_one_spec_at_once_make_one_study(tmp_path, empty_store):
    path = _spec(tmp_path, ["augment.hflip", "augment.vflip", "augment.rot90"])
    logs = [tmp_path / f"w{i}.log" for i in range(3)]
    procs = [processes.start(["study", "run", path, "--store", empty_store, "--quiet"], log,
                             ABLATE_WORKER=f"w{i}", ABLATE_HEARTBEAT="10")
             for i, log in enumerate(logs)]
    for proc in procs:
        proc.join(600)
    outputs = [log.read_text() for log in logs]
    assert [p.exitcode for p in procs] == [0, 0, 0], "\n".join(outputs)
    result = audit(empty_store, "tiny")
    assert result.ok and result.entries == 4 and result.dead_attempts == 0, result
    worked = [i for i, text in enumerate(outputs) if f"[w{i}] trial" in text]
    assert len(worked) >= 2, outputs  # the trials were shared, not run by one process


def test_join_a_study_from_the_same_spec_refuse_another(tmp_path, store):
    path = _spec(tmp_path, ["augment.hflip"])
    log = tmp_path / "out.log"
    assert processes.run(["study", "create", path, "--store", store], log) == 0
    assert processes.run(["study", "run", path, "--store", store, "--quiet"], log) == 0
    assert audit(store, "tiny").ok
    changed = yaml.safe_load(path.read_text())
    changed["optim"]["lr"] = 0.02
    changed["eval"]["gallery"] = 2
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(changed))
    assert processes.run(["study", "run", other, "--store", store], log) == 2
    line = log.read_text().strip().splitlines()[-1]
    assert line.startswith("error: ") and "eval.gallery, optim.lr differ" in line, line


def test_sigterm_to_the_workers_launcher_stops_every_worker(tmp_path, store):
    path = _spec(tmp_path, ["augment.hflip", "augment.vflip", "augment.rot90"])
    log = tmp_path / "out.log"
    args = ["study", "run", path, "--store", store, "--quiet"]
    launcher = processes.start([*args, "--workers", "2"], log, ABLATE_HEARTBEAT="10")
    _wait_until(lambda: _running_with_run(store) >= 1, launcher)
    launcher.terminate()  # SIGTERM to the launcher only
    launcher.join(120)
    assert launcher.exitcode == INTERRUPTED, log.read_text()
    # every worker stopped: none of their trials is still RUNNING; each is queued again
    result = audit(store, "tiny")
    assert not [r for r in result.running if "RUNNING" in r], (result, log.read_text())
    assert result.dead_attempts >= 1 and not result.duplicated
    assert processes.run(args, log, ABLATE_HEARTBEAT="10") == 0, log.read_text()
    assert audit(store, "tiny").ok


def test_second_ctrl_c_leaves_no_running_run(tmp_path, store):
    path = _spec(tmp_path, ["augment.hflip"])
    log = tmp_path / "out.log"
    args = ["study", "run", path, "--store", store, "--quiet"]
    proc = processes.start(args, log, ABLATE_HEARTBEAT="10")
    _wait_until(lambda: _running_with_run(store) >= 1, proc)
    os.kill(proc.pid, signal.SIGINT)
    time.sleep(0.02)
    if proc.is_alive():
        os.kill(proc.pid, signal.SIGINT)
    proc.join(120)
    assert proc.exitcode == INTERRUPTED, log.read_text()
    assert "interrupted: the current trial is queued again" in log.read_text()
    result = audit(store, "tiny")
    assert not [r for r in result.running if "RUNNING" in r], result
    assert result.dead_attempts == 1
    assert processes.run(args, log, ABLATE_HEARTBEAT="10") == 0, log.read_text()
    assert audit(store, "tiny").ok
