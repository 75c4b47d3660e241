"""A configuration that kills its worker every time is given up after max_worker_deaths.

The model of one component kills its own process at its first training step (as the
system's out-of-memory killer would); every ``study run`` after a death finds the trial
stale and queues it again, until it was retried ``max_worker_deaths`` times: then the trial
is failed with that reason and the study ends.
"""

from __future__ import annotations

import signal

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from tests import processes
from tests.study.test_kill_anywhere import kill_spec

pytestmark = pytest.mark.slow  # starts processes


def test_a_configuration_that_kills_its_worker_is_given_up(tmp_path, store):
    spec = kill_spec()
    spec["max_worker_deaths"] = 1
    spec["design"] = {"kind": "one_at_a_time", "components": [
        {"name": "deadly", "set": {"model.custom": "tests.custom_models:DiesInTraining"}}]}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    log = tmp_path / "out.log"
    argv = ["study", "run", path, "--store", store, "--quiet"]
    codes = [processes.run(argv, log, timeout=120, ABLATE_HEARTBEAT="1") for _ in range(3)]
    # the first attempt and its one retry kill their workers; the third start gives it up
    assert codes == [-signal.SIGKILL, -signal.SIGKILL, 0], log.read_text()
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{store / 'optuna.db'}")
    deadly = [t for t in study.trials if t.params.get("config") == "deadly"]
    assert [t.state for t in deadly] == [TrialState.FAIL, TrialState.FAIL]
    assert "worker died 2 times" in deadly[-1].user_attrs["fail_reason"]
    assert "max_worker_deaths: 1" in deadly[-1].user_attrs["fail_reason"]
    baseline = [t for t in study.trials if t.params.get("config") == "baseline"]
    assert [t.state for t in baseline] == [TrialState.COMPLETE]
    assert not [t for t in study.trials if t.state in (TrialState.WAITING, TrialState.RUNNING)]
