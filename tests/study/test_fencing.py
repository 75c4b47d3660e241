"""A worker taken for dead never writes again, and a store that vanishes stops its workers.

A worker is frozen (SIGSTOP at a named point, as a suspended job or a paused machine would
be) past the grace period in each phase of a trial; another worker takes the trial over and
finishes the study; then the frozen one wakes (SIGCONT). The stores must hold exactly one
COMPLETE run per configuration and seed, no COMPLETE run whose trial is not COMPLETE, and
the woken worker must end without a traceback, its own run closed KILLED ("taken over by
another worker"). Real Optuna and MLflow stores on SQLite, workers in separate processes.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from ablate.tracking import names as keys
from tests import processes
from tests.audit import audit
from tests.study.test_kill_anywhere import kill_spec

pytestmark = pytest.mark.slow  # starts processes

FAST = {"ABLATE_HEARTBEAT": "1"}  # a silent trial is stale after 3 s


def _spec(epochs: int = 2) -> dict:
    spec = kill_spec()
    spec["optim"] = {"epochs": epochs}
    return spec


def _stopped(pid: int, timeout: float = 120) -> None:
    """Wait until process ``pid`` is stopped (SIGSTOP) or fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat") as handle:
            if handle.read().rsplit(")", 1)[1].split()[0] in ("T", "t"):
                return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} did not reach its freeze point in {timeout} s")


def _runs(store: Path) -> list:
    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny").experiment_id
    return client.search_runs([experiment], f"tags.`{keys.TAG_ROLE}` = 'trial'")


@pytest.mark.parametrize("phase", [
    "mid_log:1:stop",  # early training: after the first of two epochs
    "mid_log:2:stop",  # the last epoch
    "before_evaluation:1:stop",  # the final evaluation
    "mid_artifact:1:stop",  # logging the final numbers and artifacts
    "after_run_end:1:stop",  # just before the tell (its run already ended COMPLETE)
])
def test_a_worker_frozen_past_the_grace_period_never_writes_again(tmp_path, store, phase):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(_spec()))
    frozen_log, other_log = tmp_path / "frozen.log", tmp_path / "other.log"
    argv = ["study", "run", path, "--store", store, "--quiet"]
    frozen = processes.start(argv, frozen_log, **FAST, ABLATE_FAULT=phase)
    try:
        _stopped(frozen.pid)
        time.sleep(4)  # past the grace period (3 heartbeats of 1 s)
        assert processes.run(argv, other_log, timeout=300, **FAST) == 0, other_log.read_text()
    finally:
        os.kill(frozen.pid, signal.SIGCONT)
    frozen.join(300)
    output = frozen_log.read_text()
    assert frozen.exitcode == 0, output
    assert "Traceback" not in output, output
    assert "taken over by another worker" in output, output

    result = audit(store, "tiny")
    assert result.ok, (result, output, other_log.read_text())
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{store / 'optuna.db'}")
    complete_trials = {t.number for t in study.trials if t.state == TrialState.COMPLETE}
    runs = _runs(store)
    complete_runs = [r for r in runs if r.data.tags.get(keys.TAG_STATE) == "COMPLETE"
                     and r.info.status == "FINISHED"]
    assert len(complete_runs) == 2  # one per configuration x seed
    assert {int(r.data.tags[keys.TAG_TRIAL]) for r in complete_runs} <= complete_trials
    taken = [r for r in runs if r.data.tags.get(keys.TAG_REASON) == "taken over by another worker"]
    assert len(taken) == 1 and taken[0].info.status == "KILLED"


def _break_store_under_a_worker(tmp_path: Path, store: Path, damage: Callable[[], None],
                                needle: str) -> list[TrialState]:
    """Freeze a worker after its first epoch, ``damage`` the store, wake the worker: it must
    stop with one error line naming the cause (``needle``), exit code 1, no traceback, and
    tell nothing COMPLETE; returns the trials' states."""
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(_spec()))
    log = tmp_path / "out.log"
    worker = processes.start(["study", "run", path, "--store", store, "--quiet"], log, **FAST,
                             ABLATE_FAULT="mid_log:1:stop")
    _stopped(worker.pid)
    damage()
    os.kill(worker.pid, signal.SIGCONT)
    worker.join(120)
    output = log.read_text()
    assert worker.exitcode == 1, output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and needle in errors[0], output
    assert "Traceback" not in output, output
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{store / 'optuna.db'}")
    states = [t.state for t in study.trials]
    assert TrialState.COMPLETE not in states  # nothing told COMPLETE that is not stored
    return states


def test_a_deleted_tracking_store_stops_the_worker_and_queues_its_trial(tmp_path, store):
    states = _break_store_under_a_worker(
        tmp_path, store, (store / "mlflow.db").unlink, "mlflow.db was deleted")
    # the Optuna storage still works: the trial is queued again for later
    assert states.count(TrialState.FAIL) == 1 and TrialState.WAITING in states


def test_an_artifact_folder_that_cannot_be_written_stops_the_worker(tmp_path, store):
    folder = store / "artifacts" / "tiny"

    def replace_with_a_file() -> None:  # where the run's artifacts would go
        folder.rename(store / "artifacts" / "moved-away")
        folder.write_text("not a folder")

    _break_store_under_a_worker(tmp_path, store, replace_with_a_file, "cannot be written")
