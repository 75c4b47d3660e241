"""``ablate ui``: a real server on a copy of the example store, stopped by a signal.

Each test starts the real command in its own process, waits for the address it prints, asks
the MLflow REST API something, then signals ``ablate ui`` the way a terminal or a process
manager would, and checks that every process it started is gone and nothing was printed as a
traceback. The waits are hang guards, not speed checks (``benchmarks/ui.py`` measures speed).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow  # trains, or starts processes or servers

EXAMPLE = REPO / "mlruns.example"
HANG_GUARD = 120.0  # seconds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def descendants(pid: int) -> set[int]:
    """``pid`` and every process below it, from ``ps`` (zombies excluded)."""
    rows = subprocess.run(["ps", "-eo", "pid=,ppid=,stat="], capture_output=True, text=True,
                          check=True).stdout.split("\n")
    children: dict[int, list[int]] = {}
    for row in rows:
        if row.strip():
            child, parent, stat = row.split()[:3]
            if not stat.startswith("Z"):
                children.setdefault(int(parent), []).append(int(child))
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        found.add(current)
        todo += children.get(current, [])
    return found


def alive(pids: set[int]) -> set[int]:
    """The processes of ``pids`` that still run (zombies count as gone)."""
    out = subprocess.run(["ps", "-o", "pid=,stat=", "-p", ",".join(map(str, pids))],
                         capture_output=True, text=True).stdout
    return {int(r.split()[0]) for r in out.splitlines() if r.strip() and "Z" not in r.split()[1]}


def post(url: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(url + "/ajax-api/2.0/mlflow" + path,
                                     data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


class UiProcess:
    """``ablate ui`` in a child process; its stdout lines arrive on a queue."""

    def __init__(self, store: Path, port: int):
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        for var in ("ABLATE_STORE", "MLFLOW_TRACKING_URI", "ABLATE_STORAGE"):
            env.pop(var, None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ablate.cli", "ui", "--store", str(store), "--port", str(port)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def address(self) -> str:
        """The page ``ablate ui`` prints once the server answers."""
        deadline = time.monotonic() + HANG_GUARD
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                if self.process.poll() is not None:
                    pytest.fail(f"ablate ui exited early: {self.process.stderr.read()}")
                continue
            if line.startswith("open "):
                return line.removeprefix("open ")
        pytest.fail("ablate ui printed no address")

    def stop(self, sig: signal.Signals) -> tuple[int, str]:
        self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=HANG_GUARD)
        except subprocess.TimeoutExpired:
            self.process.kill()
            pytest.fail(f"ablate ui did not stop on {sig.name}")
        return code, self.process.stderr.read()


@pytest.fixture
def example_store(tmp_path: Path) -> Path:
    """A copy of the committed example store (its artifacts are ``mlflow-artifacts:`` URIs)."""
    folder = tmp_path / "example"
    shutil.copytree(EXAMPLE, folder)
    return folder


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_ui_serves_and_stops_with_everything_it_started(example_store: Path, sig: signal.Signals):
    port = free_port()
    ui = UiProcess(example_store, port)
    address = ui.address()
    server = f"http://127.0.0.1:{port}"
    experiments = post(server, "/experiments/search", {"max_results": 100})["experiments"]
    study = next(e for e in experiments if e["name"] == "quickstart")
    runs_page = f"{server}/#/experiments/{study['experiment_id']}/runs"
    # a store written before ablate saved its view of the runs opens on the plain runs page
    saved = {t["key"] for t in study.get("tags", [])} & {"mlflow.sharedViewState.ablate"}
    query = "?viewStateShareKey=ablate&" if saved else "?"
    assert address == runs_page + query + "workflowType=machine_learning"
    assert b"<html" in get(server + "/").lower()

    runs = post(server, "/runs/search", {
        "experiment_ids": [study["experiment_id"]],
        "filter": "tags.`ablate.role` = 'trial'", "max_results": 1,
    })["runs"]
    run_id = runs[0]["info"]["run_id"]
    listed = json.loads(get(f"{server}/ajax-api/2.0/mlflow/artifacts/list?run_id={run_id}"))
    assert "config.yaml" in {f["path"] for f in listed["files"]}
    assert b"model" in get(f"{server}/get-artifact?path=config.yaml&run_uuid={run_id}")

    remote = subprocess.run(  # a tracking server serves its own UI: only its address is printed
        [sys.executable, "-m", "ablate.cli", "ui", "--tracking-uri", server],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert remote.returncode == 0 and remote.stdout.strip().endswith(address), remote.stderr

    started = descendants(ui.process.pid)
    commands = subprocess.run(["ps", "-o", "args=", "-p", ",".join(map(str, started))],
                              capture_output=True, text=True).stdout
    assert len(started) == 3, commands  # ablate ui, mlflow server, its one uvicorn worker
    assert "huey" not in commands and "job" not in commands

    code, stderr = ui.stop(sig)
    assert code == 0
    assert "Traceback" not in stderr, stderr
    deadline = time.monotonic() + HANG_GUARD
    while alive(started) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(started)
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0  # nothing listens any more


def test_ui_on_a_missing_store_is_one_line(cli, tmp_path: Path):
    result = cli("ui", "--store", tmp_path / "nothing", "--port", free_port())
    assert result.exit_code == 2
    assert result.output.startswith("error: no MLflow store at")
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "nothing").exists()


def test_ui_on_a_busy_port_is_one_line(cli, store: Path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = cli("ui", "--store", store, "--port", busy.getsockname()[1])
    assert result.exit_code == 2
    assert "--port" in result.output and result.output.startswith("error: cannot serve on")
    assert len(result.output.strip().splitlines()) == 1


def test_ui_on_a_tracking_server_that_does_not_answer_is_one_line(cli):
    result = cli("ui", "--tracking-uri", f"http://127.0.0.1:{free_port()}")
    assert result.exit_code == 2
    assert result.output.startswith("error: MLflow tracking server http://127.0.0.1:")
    assert len(result.output.strip().splitlines()) == 1
