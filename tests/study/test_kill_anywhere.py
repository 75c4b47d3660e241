"""Kill anywhere: SIGKILL at every named window of a study's life, then resume.

Each window of ``ablate.testing.faults.WINDOWS`` is hit deterministically (``ABLATE_FAULT``
makes the process kill itself there); then ``ablate study run`` with the same spec resumes, and the
stores must hold every configuration x seed complete exactly once in Optuna, in MLflow and in
the report, nothing RUNNING, one parent run with its spec. Commands run in processes forked
from a preloaded server (tests/processes.py), so the whole file takes about a minute.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import yaml

from ablate.testing.faults import WINDOWS
from tests import processes
from tests.audit import audit
from tests.conftest import spec_dict

pytestmark = pytest.mark.slow  # trains, or starts processes or servers

KILLED = -signal.SIGKILL
FAST = {"ABLATE_HEARTBEAT": "1"}  # a dead trial is stale after 3 s


def kill_spec() -> dict:
    spec = spec_dict(
        data={"synthetic": {"num_images": 8, "channels": 3, "size": 16, "seed": 1}},
        eval={"gallery": 0, "latency_repeats": 0},
        design={"kind": "one_at_a_time", "components": ["augment.hflip"]},
    )
    del spec["search"]
    spec["model"] = {"custom": "tests.custom_models:TinyUNet", "width": 4}
    return spec


@pytest.fixture
def case(tmp_path: Path, store: Path) -> tuple[Path, Path, Path]:
    """(spec file, store, log file) of a fresh two-configuration study."""
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(kill_spec()))
    return path, store, tmp_path / "out.log"


def _run(case: tuple[Path, Path, Path], fault: str | None = None) -> int:
    path, store, log = case
    env = dict(FAST, ABLATE_FAULT=fault) if fault else FAST
    return processes.run(["study", "run", path, "--store", store, "--quiet"], log,
                         timeout=120, **env)


def _check(case: tuple[Path, Path, Path]) -> None:
    result = audit(case[1], "tiny")
    assert result.ok, (result, case[2].read_text())
    assert result.entries == 2


@pytest.mark.parametrize("window", [w for w in WINDOWS if w != "after_stale_fail"])
def test_kill_at_window_then_resume(case, window):
    assert _run(case, window) == KILLED, f"window {window} not reached:\n{case[2].read_text()}"
    assert _run(case) == 0, case[2].read_text()
    _check(case)


def test_kill_while_failing_a_dead_trial(case):
    # A dead worker's trial is failed as stale by the next worker, which dies before queuing
    # it again: the third start-up queues it.
    assert _run(case, "mid_log") == KILLED
    assert _run(case, "after_stale_fail") == KILLED, case[2].read_text()
    assert _run(case) == 0, case[2].read_text()
    _check(case)


def test_every_window_has_exactly_one_fault_point():
    # Each window named in ablate.testing.faults is one fault_point("...") call in the code, and
    # every fault_point call names a window (so the parametrized test above covers it).
    import re

    from tests.conftest import REPO

    calls = [name for path in (REPO / "ablate").rglob("*.py")
             for name in re.findall(r'fault_point\("(\w+)"\)', path.read_text())]
    assert sorted(calls) == sorted(WINDOWS)
