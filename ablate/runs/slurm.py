"""The Slurm job this process runs in: its name for Slurm's commands, its time left, and why
Slurm stopped a worker (the reason its interrupted trial's run records).

Slurm's warning signal (``--signal=USR2@SECONDS``) comes before a time limit, or before a
preemption where the cluster sends user signals then (``PreemptParameters=send_user_signal``);
SIGTERM comes when Slurm cancels, requeues or preempts the job. Only the time left tells a
time limit from a preemption.
"""

from __future__ import annotations

import os
import signal
import subprocess

# Slurm's warning comes `sig_time` seconds before the time limit (90 by default, up to 30 s
# earlier: the controller checks every 30 s): a warning with more time left than this is a
# preemption.
TIME_LIMIT_WINDOW_S = 600


def job_id() -> str | None:
    """This job as Slurm's commands name it: ``ARRAYJOB_TASK`` for an array task (its own
    SLURM_JOB_ID may equal the array's id, which names every task), else the job id; None
    outside Slurm."""
    if not os.environ.get("SLURM_JOB_ID"):
        return None
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{array}_{task}" if array and task else os.environ["SLURM_JOB_ID"]


def job_label() -> str:
    """This job as ``squeue`` shows it (``?`` outside Slurm)."""
    return job_id() or "?"


def time_left_s(job: str | None = None) -> float | None:
    """Seconds left before the job's time limit (``squeue %L``), None when unknown or
    unlimited."""
    job = job or job_id()
    if job is None:
        return None
    try:
        done = subprocess.run(["squeue", "-h", "-j", job, "-o", "%L"], capture_output=True,
                              text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_duration(done.stdout.strip()) if done.returncode == 0 else None


def parse_duration(text: str) -> float | None:
    """Seconds of a Slurm duration: ``[D-]HH:MM:SS``, ``MM:SS`` or ``SS``; None for anything
    else (``UNLIMITED``, ``INVALID``, empty, several lines)."""
    days, _, clock = text.rpartition("-")
    parts = clock.split(":")
    if not clock or len(parts) > 3 or not all(p.isdigit() for p in parts):
        return None
    if days and not days.isdigit():
        return None
    seconds = 0
    for part in parts:
        seconds = seconds * 60 + int(part)
    return seconds + 86400 * int(days or 0)


def slurm_reason(signum: int) -> str:
    """The reason a worker in a Slurm job records for its interrupted trial's run."""
    if signum == signal.SIGTERM:
        return "stopped by Slurm (SIGTERM: cancelled, requeued or preempted)"
    left = time_left_s()
    if left is None:
        return "time limit or preemption (Slurm's warning signal)"
    shown = f"{int(left) // 60}:{int(left) % 60:02d}"
    if left <= TIME_LIMIT_WINDOW_S:
        return f"time limit (Slurm's warning signal, {shown} left)"
    return f"preempted (Slurm's warning signal, {shown} left)"
