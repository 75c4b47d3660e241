"""``ablate study submit``'s options, checked and turned into the job array's sbatch options.

Everything is checked before anything is written or submitted; a bad value is one
:class:`~ablate.errors.AblateError` line naming the option. The options are kept in
submitit's spelling (``cpus_per_task``; sbatch's ``--cpus-per-task``), so that ``--slurm``
items replace submitit's defaults instead of adding a second flag.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from ablate.errors import AblateError
from ablate.runs.interrupts import WARNING

WARNING_DELAY_S = 90  # the warning signal this many seconds before the time limit
# sbatch options that submitit's bookkeeping (array, logs) depends on
MANAGED = {"array", "output", "error", "open_mode", "wrap", "parsable", "test_only"}
# a --slurm item naming GPUs its own way replaces --gpus-per-worker's --gres=gpu:G
GPU_OPTIONS = {"gres", "gpus", "gpus_per_node", "gpus_per_task", "gpus_per_socket"}
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_MEM = re.compile(r"^\d+[KMGT]?$", re.IGNORECASE)
_SIGNAL = re.compile(r"^(R:)?(SIG)?(USR2|12)@\d+$", re.IGNORECASE)
TIME_FORMS = "MINUTES, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS"


@dataclass(frozen=True)
class SubmitOptions:
    """The job array: ``workers`` tasks, each one worker with these resources."""

    workers: int
    partition: str | None = None
    time: str | None = None  # as sbatch reads it (e.g. 04:00:00)
    gpus_per_worker: int = 1
    cpus_per_worker: int | None = None
    mem: str | None = None  # per worker, as sbatch reads it (e.g. 16G)
    slurm: tuple[str, ...] = ()  # further sbatch options, KEY=VALUE or KEY

    def check(self) -> SubmitOptions:
        """Raise an AblateError on the first bad value; returns self."""
        if self.workers < 1:
            raise AblateError(f"--workers {self.workers}: give a number of workers (array "
                              "tasks) >= 1")
        if self.time is not None:
            time_minutes(self.time)
        if self.gpus_per_worker not in (0, 1):
            raise AblateError(f"--gpus-per-worker {self.gpus_per_worker}: a worker trains on "
                              "one GPU; give 1, or 0 for CPU workers, and more --workers for "
                              "more GPUs")
        if self.cpus_per_worker is not None and self.cpus_per_worker < 1:
            raise AblateError(f"--cpus-per-worker {self.cpus_per_worker}: give a number of "
                              "CPUs >= 1")
        if self.mem is not None and not _MEM.match(self.mem):
            raise AblateError(f"--mem {self.mem}: give memory per worker as sbatch reads it: "
                              "a number with an optional unit K, M, G or T (e.g. 16G)")
        extra_options(self.slurm)
        if self.partition is not None and not self.partition.strip():
            raise AblateError("--partition: give a partition name (sinfo lists them)")
        return self

    def sbatch(self) -> dict[str, Any]:
        """The job's sbatch options (submitit's spelling); a ``--slurm`` item replaces the
        option of the same name."""
        options: dict[str, Any] = {
            "requeue": True,  # requeueable even where the cluster's default says otherwise
            "signal": f"{WARNING.name.removeprefix('SIG')}@{WARNING_DELAY_S}",
        }
        if self.partition:
            options["partition"] = self.partition
        if self.time is not None:
            options["time"] = time_minutes(self.time)
        extra = extra_options(self.slurm)
        if self.gpus_per_worker and not GPU_OPTIONS & extra.keys():
            options["gres"] = f"gpu:{self.gpus_per_worker}"
        if self.cpus_per_worker is not None:
            options["cpus_per_task"] = self.cpus_per_worker
        if self.mem is not None:
            options["mem"] = self.mem.upper()
        options.update(extra)
        return options


def time_minutes(text: str) -> int:
    """Minutes of a Slurm time limit (sbatch's forms; seconds round up, as Slurm does)."""
    value = text.strip()
    days, dash, clock = value.partition("-")
    if not dash:
        days, clock = "", value
    parts = clock.split(":")
    ok = bool(clock) and all(p.isdigit() for p in parts) and (not dash or days.isdigit())
    if not ok or len(parts) > 3:
        raise AblateError(f"--time {text}: give a time limit as Slurm writes it ({TIME_FORMS})")
    numbers = [int(p) for p in parts]
    if dash:  # D-HH, D-HH:MM, D-HH:MM:SS
        numbers += [0] * (3 - len(numbers))
        seconds = int(days) * 86400 + numbers[0] * 3600 + numbers[1] * 60 + numbers[2]
    elif len(numbers) == 3:
        seconds = numbers[0] * 3600 + numbers[1] * 60 + numbers[2]
    elif len(numbers) == 2:  # MM:SS
        seconds = numbers[0] * 60 + numbers[1]
    else:
        seconds = numbers[0] * 60
    if seconds <= 0:
        raise AblateError(f"--time {text}: give a time limit > 0")
    return math.ceil(seconds / 60)


def extra_options(items: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``--slurm KEY=VALUE`` (or a bare ``KEY`` flag) items as sbatch options."""
    out: dict[str, Any] = {}
    for item in items:
        key, eq, value = item.partition("=")
        key = key.strip().removeprefix("--")
        if not _KEY.match(key) or (eq and not value.strip()):
            raise AblateError(f"--slurm {item}: give an sbatch option as KEY=VALUE (e.g. "
                              "--slurm qos=high) or a bare KEY flag (e.g. --slurm exclusive)")
        name = key.replace("-", "_").lower()
        if name in MANAGED:
            raise AblateError(f"--slurm {item}: ablate sets --{key} itself (the array of "
                              "workers and their logs); leave it out")
        if name == "signal" and not _SIGNAL.match(value.strip()):
            raise AblateError(f"--slurm {item}: workers stop cleanly on USR2 sent to them; "
                              "give signal=USR2@SECONDS (not B:, which signals only the "
                              "batch shell)")
        if name == "time":
            value = str(time_minutes(value))
        out[name] = value.strip() if eq else True
    return out


def as_flags(options: dict[str, Any]) -> list[str]:
    """sbatch command-line flags of ``options`` (``--cpus-per-task=4``, ``--requeue``)."""
    flags = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        flags.append(flag if value is True else f"{flag}={value}")
    return flags
