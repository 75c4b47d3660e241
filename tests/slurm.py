"""A real one-node Slurm cluster on 127.0.0.1 for tests: munged, slurmctld and slurmd.

Debian's ``slurm-wlm`` and ``munge`` (``scripts/system_packages.sh`` installs them). Everything
lives in one temporary folder: the configuration (``slurm.conf`` of about 25 lines), the
controller's state, the node's spool, the logs and a private munge socket, so nothing on the
machine is touched and a second cluster (or a system one) can run beside it. The daemons run
as root (munged as the ``munge`` user, which it insists on); :meth:`SlurmCluster.stop` ends
the three by the pids in their pid files and removes the folder. Clients (``sbatch``,
``squeue``, ``scontrol``, and ``srun`` inside jobs) find the cluster through ``SLURM_CONF``,
which jobs inherit from the environment they were submitted from.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.servers import free_port

DAEMONS = ("slurmctld", "slurmd", "munged")
CLIENTS = ("sbatch", "squeue", "scontrol", "scancel", "srun")
SBIN = (Path("/usr/sbin"), Path("/usr/bin"))
MUNGE_KEY = Path("/etc/munge/munge.key")
MUNGE_USER = "munge"


def _find(name: str) -> Path | None:
    found = shutil.which(name)
    if found:
        return Path(found)
    return next((d / name for d in SBIN if (d / name).is_file()), None)


def missing_parts() -> list[str]:
    """What a test cluster needs and this machine lacks (empty: it can start one)."""
    missing = [name for name in (*DAEMONS, *CLIENTS) if _find(name) is None]
    if not MUNGE_KEY.is_file():
        missing.append(str(MUNGE_KEY))
    with contextlib.suppress(KeyError):
        pwd.getpwnam(MUNGE_USER)
        return missing
    return [*missing, f"user {MUNGE_USER}"]


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return 4000


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


class SlurmCluster:
    """A throw-away Slurm cluster: one node (``localhost``, this machine's cores, half its
    memory), one partition ``debug``; ``env`` is what a client needs (``SLURM_CONF``)."""

    def __init__(self, kill_wait: int = 30) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="ablate-slurm-"))
        self.root.chmod(0o755)
        self.conf = self.root / "slurm.conf"
        self.log_dir = self.root / "log"
        self.munge_dir = self.root / "munge"
        self.socket = self.munge_dir / "munge.socket"
        self.ports = (free_port(), free_port())
        self.cores = _cores()
        self.kill_wait = kill_wait
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def config(self) -> str:
        """slurm.conf: no accounting, no cgroups (proctrack/linuxproc, task/none), CPUs
        allocated by core; requeued jobs may start again after 10 s (not 120)."""
        root = self.root
        return "\n".join([
            "ClusterName=ablatetest",
            "SlurmctldHost=localhost",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            # cred_expire: how long a requeued job waits before it may start again (120 s
            # by default)
            f"AuthInfo=socket={self.socket},cred_expire=10",
            # schedule every few seconds, not every minute: requeued jobs start promptly
            "SchedulerParameters=sched_interval=2,bf_interval=2",
            f"StateSaveLocation={root / 'state'}",
            f"SlurmdSpoolDir={root / 'spool'}",
            f"SlurmctldPidFile={root / 'slurmctld.pid'}",
            f"SlurmdPidFile={root / 'slurmd.pid'}",
            f"SlurmctldLogFile={self.log_dir / 'slurmctld.log'}",
            f"SlurmdLogFile={self.log_dir / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "MpiDefault=none",
            "ReturnToService=2",
            f"KillWait={self.kill_wait}",
            f"SlurmctldPort={self.ports[0]}",
            f"SlurmdPort={self.ports[1]}",
            f"NodeName=localhost CPUs={self.cores} RealMemory={_memory_mb() // 2} "
            "State=UNKNOWN",
            "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
            "",
        ])

    # ---------------------------------------------------------------------------- lifecycle
    def start(self, timeout: float = 60) -> SlurmCluster:
        for folder in ("state", "spool", "log"):
            (self.root / folder).mkdir()
        self.conf.write_text(self.config())
        try:
            self._start_munge()
            self._daemon("slurmctld", "-c")  # -c: a clean start, no saved state
            self._daemon("slurmd", "-N", "localhost")
            self._wait_idle(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_munge(self) -> None:
        entry = pwd.getpwnam(MUNGE_USER)
        self.munge_dir.mkdir()
        self.munge_dir.chmod(0o755)  # munged wants its socket reachable by every user
        os.chown(self.munge_dir, entry.pw_uid, entry.pw_gid)
        subprocess.run(
            [str(_find("munged")), f"--socket={self.socket}", f"--key-file={MUNGE_KEY}",
             f"--pid-file={self.munge_dir / 'munged.pid'}",
             f"--log-file={self.munge_dir / 'munged.log'}",
             f"--seed-file={self.munge_dir / 'munged.seed'}"],
            user=MUNGE_USER, check=True, capture_output=True, text=True, timeout=30)

    def _daemon(self, name: str, *args: str) -> None:
        done = subprocess.run([str(_find(name)), *args], env=self.env, capture_output=True,
                              text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"{name} did not start ({done.returncode}): "
                               f"{done.stderr.strip()}\n{self.logs()}")

    def _wait_idle(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            done = self.run("sinfo", "-h", "-N", "-o", "%T", check=False)
            state = done.stdout.strip()
            if state == "idle":
                return
            time.sleep(0.5)
        raise RuntimeError(f"the Slurm node is not idle after {timeout:g} s (state "
                           f"{state!r})\n{self.logs()}")

    def logs(self, lines: int = 30) -> str:
        """The tails of the daemons' logs (for failure messages)."""
        out = []
        for path in (self.log_dir / "slurmctld.log", self.log_dir / "slurmd.log",
                     self.munge_dir / "munged.log"):
            if path.is_file():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {path.name}\n" + "\n".join(tail))
        return "\n".join(out)

    def stop(self) -> None:
        """Cancel every job left (their processes are slurmd's children no more), stop
        slurmd, slurmctld and munged (by their pid files) and remove the folder."""
        with contextlib.suppress(OSError, RuntimeError, subprocess.SubprocessError):
            self._cancel_all()
        for pid_file in (self.root / "slurmd.pid", self.root / "slurmctld.pid",
                         self.munge_dir / "munged.pid"):
            _terminate(pid_file)
        shutil.rmtree(self.root, ignore_errors=True)

    def _cancel_all(self, timeout: float = 60) -> None:
        if not (self.root / "slurmctld.pid").exists():
            return
        self.run("scancel", "--full", "--quiet", "--user", pwd.getpwuid(os.geteuid()).pw_name,
                 check=False)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = self.run("squeue", "-h", "-t", "running,completing,configuring", "-o", "%A",
                            check=False)
            if done.returncode != 0 or not done.stdout.strip():
                return
            time.sleep(0.5)

    # ------------------------------------------------------------------------------ clients
    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A Slurm client command against this cluster."""
        done = subprocess.run([str(_find(args[0]) or args[0]), *args[1:]], env=self.env,
                              capture_output=True, text=True, timeout=60)
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): "
                               f"{done.stderr.strip()}")
        return done

    def jobs(self, job_id: str) -> dict[str, str]:
        """``{task id: state}`` of a job array's tasks still known to the controller."""
        done = self.run("squeue", "-h", "-r", "-t", "all", "-j", job_id, "-o", "%i %T",
                        check=False)
        return dict(line.split() for line in done.stdout.splitlines() if line.strip())


def _terminate(pid_file: Path, timeout: float = 20) -> None:
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
