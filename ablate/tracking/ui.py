"""A lean MLflow UI over a store: one server worker, no background jobs, stopped as a whole.

``mlflow ui`` by default starts four uvicorn workers and a job runner with its huey consumers
(about 15 processes and 3 GiB); browsing runs needs none of that. The server is started as
``mlflow server --workers 1`` with job execution off, in its own process group, so that a
Ctrl-C, a SIGTERM or a closed terminal stops every process it started.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from ablate.errors import AblateError
from ablate.stores import Stores, check_database_file, local_sqlite_missing, redact, sqlite_path

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
START_TIMEOUT = 180.0  # seconds; a first start on two busy cores can take a minute
STOP_GRACE = 2.0  # seconds the server gets to exit on SIGTERM before it is killed
SEARCH_API = "/ajax-api/2.0/mlflow"
# MLflow 3.18 opens a saved view as a read-only preview that a reload drops, and opens
# experiments from its list on the GenAI pages until the sidebar is switched (docs/ui.md).
VIEW_TIP = ("in MLflow: 'Override saved view' (the banner) keeps this view through reloads; "
            "'Model training' (the sidebar) opens experiments on their runs; see docs/ui.md")


def server_command(stores: Stores, host: str, port: int) -> list[str]:
    """The ``mlflow server`` command line for ``stores`` (one worker)."""
    mlflow = shutil.which("mlflow", path=os.path.dirname(sys.executable)) or shutil.which("mlflow")
    if mlflow is None:
        raise AblateError("the mlflow command is not installed in this environment")
    command = [mlflow, "server", "--backend-store-uri", stores.tracking_uri,
               "--host", host, "--port", str(port), "--workers", "1"]
    if stores.artifact_root is not None:
        command += ["--artifacts-destination", str(stores.artifact_root)]
    return command


def server_env() -> dict[str, str]:
    """The environment of the server: no job runner (it serves GenAI jobs), no telemetry."""
    return {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            "MLFLOW_DISABLE_TELEMETRY": "true"}


def base_url(host: str, port: int) -> str:
    """The address a local browser uses for a server bound to ``host``."""
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def runs_url(server: str, experiment_id: str | None, view: bool = False) -> str:
    """The UI page of an experiment's runs (``view``: in ablate's saved view), or the home page.

    MLflow 3's UI opens an experiment on its GenAI pages unless the browser was switched to
    "Model training" before; ``workflowType=machine_learning`` in the address switches it.
    """
    from ablate.tracking.names import runs_page

    if experiment_id is None:
        return f"{server}/"
    return f"{server}/{runs_page(experiment_id, view)}"


def newest_study(server: str) -> tuple[str, str, bool] | None:
    """(experiment id, study name, whether it has ablate's saved view) of the most recently
    started ablate parent run, via REST."""
    from ablate.tracking.names import TAG_ROLE, TAG_STUDY, TAG_VIEW

    found = _post(server, "/experiments/search", {"max_results": 1000})
    experiments = {e["experiment_id"]: e for e in found.get("experiments", [])}
    ids = list(experiments)
    if not ids:
        return None
    runs = _post(server, "/runs/search", {
        "experiment_ids": ids,
        "filter": f"tags.`{TAG_ROLE}` = 'parent'",
        "order_by": ["attributes.start_time DESC"],
        "max_results": 1,
    }).get("runs", [])
    if not runs:
        return None
    tags = {t["key"]: t["value"] for t in runs[0]["data"].get("tags", [])}
    experiment = runs[0]["info"]["experiment_id"]
    saved = {t["key"] for t in experiments.get(experiment, {}).get("tags", [])}
    return experiment, tags.get(TAG_STUDY, ""), TAG_VIEW in saved


def _post(server: str, path: str, body: dict[str, object]) -> dict[str, list[dict]]:
    request = urllib.request.Request(
        server + SEARCH_API + path, data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"}, method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"{}")


def answers(server: str) -> bool:
    """True once the server answers HTTP on ``/health``."""
    try:
        with urllib.request.urlopen(server + "/health", timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


def check_port_free(host: str, port: int) -> None:
    """A one-line error when another program already listens on ``host:port``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as err:
            raise AblateError(
                f"cannot serve on {host}:{port} ({err.strerror}); another server may be running "
                "there: pick another port with --port"
            ) from None


class _Stop:
    """Turns the stop signals into a flag that the waiting loop checks."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = {sig: signal.signal(sig, self._handle) for sig in STOP_SIGNALS}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def serve(stores: Stores, host: str, port: int, echo: Callable[[str], None] = print) -> None:
    """Serve the MLflow UI over ``stores`` until Ctrl-C, SIGTERM or SIGHUP; then stop it."""
    if stores.tracking_uri.startswith(("http://", "https://")):
        server = stores.tracking_uri.rstrip("/")
        if not answers(server):
            raise AblateError(f"MLflow tracking server {redact(server)} does not answer; start it "
                              "or fix --tracking-uri / MLFLOW_TRACKING_URI")
        echo(f"that tracking server serves the UI itself: {_newest_url(server)}")
        return
    if local_sqlite_missing(stores.tracking_uri):
        raise AblateError(
            f"no MLflow store at {redact(stores.tracking_uri)}; run a study into it first "
            "(ablate study run SPEC --store FOLDER) or point --store at one"
        )
    path = sqlite_path(stores.tracking_uri)
    if path is not None:  # the server would add MLflow's tables to another application's file
        check_database_file(path, "mlflow", write=False)
    check_port_free(host, port)
    command = server_command(stores, host, port)
    log = Path(tempfile.gettempdir()) / f"ablate-ui-{port}.log"
    server = base_url(host, port)
    echo(f"starting the MLflow UI on {server} for {redact(stores.tracking_uri)} (log: {log})")
    stop = _Stop()
    try:
        process = start_server(command, log)
        try:
            _wait_and_watch(process, server, stop, log, echo)
        finally:
            stop_server(process)
    finally:
        stop.restore()


def _wait_and_watch(
    process: subprocess.Popen[bytes], server: str, stop: _Stop, log: Path,
    echo: Callable[[str], None],
) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not answers(server):
        if stop.requested:
            return
        if process.poll() is not None:
            raise AblateError(
                f"the MLflow server exited before it answered: {_tail(log)} (log: {log})"
            )
        if time.monotonic() > deadline:
            raise AblateError(
                f"the MLflow server did not answer in {START_TIMEOUT:.0f} s; see {log}"
            )
        time.sleep(0.2)
    url = _newest_url(server)
    echo(f"open {url}" + (f"\n{VIEW_TIP}" if "viewStateShareKey=" in url else "")
         + "\nCtrl-C stops it")
    while not stop.requested:
        if process.poll() is not None:
            raise AblateError(f"the MLflow server stopped: {_tail(log)} (log: {log})")
        time.sleep(0.1)


def _newest_url(server: str) -> str:
    """The newest study's runs page (in ablate's saved view when it has one); the home page
    when there is no study or the query fails."""
    try:
        found = newest_study(server)
    except (urllib.error.URLError, OSError, ValueError, KeyError):
        return runs_url(server, None)
    return runs_url(server, found[0], found[2]) if found else runs_url(server, None)


def start_server(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``command`` in a new session (its own process group), its output into ``log``."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            command, env=server_env(), stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent,
        )


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, SIGKILL what is left after ``STOP_GRACE``."""
    _signal_group(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    while time.monotonic() < deadline and _serving(process):
        time.sleep(0.05)
    # The mlflow command only waits for its uvicorn server; once that is gone, the command's
    # own interpreter shutdown (seconds of garbage collection) need not be waited for.
    _signal_group(process.pid, signal.SIGKILL)
    process.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _serving(process: subprocess.Popen[bytes]) -> bool:
    """True while a process of the group other than its leader (the mlflow command) lives."""
    if process.poll() is not None:
        return False
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == process.pid:
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == process.pid and fields[0] != "Z":
            return True
    return False


def _die_with_parent() -> None:
    """Linux: the server gets SIGTERM should ablate itself be killed (SIGKILL is not caught)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _tail(log: Path, lines: int = 3) -> str:
    try:
        text = [line.strip() for line in log.read_text(errors="replace").splitlines()]
    except OSError:
        return "no output"
    return " | ".join([line for line in text if line][-lines:]) or "no output"
