"""Submitting a study's workers as one Slurm job array, through submitit.

Before anything is written, Slurm itself checks the request (``sbatch --test-only`` with the
same options: partition, time limit, GPUs, memory, every ``--slurm`` item), so a bad value is
one line and nothing is created or submitted. Each array task runs the worker it is given
(``ablate study run NAME``: :class:`ablate.cli.slurm_task.Worker`); its logs and submitit's
files go to ``<store>/slurm/<study>/`` (the store's folder must be on a file system the nodes
share, as for any SQLite store; with server stores, ``./ablate_store/slurm/<study>/``).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ablate.errors import AblateError
from ablate.stores import DEFAULT_STORE, Stores
from ablate.study.cluster.options import SubmitOptions, as_flags

# submitit requeues a checkpointable job at most this many times after a time limit (its own
# fallback; ablate's worker requeues its job itself, without a limit, until the study is done)
MAX_TIMEOUT_REQUEUES = 1000


@dataclass(frozen=True)
class Submitted:
    """A submitted job array: its id (as ``squeue`` shows it), task count and log folder."""

    job_id: str
    tasks: int
    folder: Path

    def log(self, task: int | str, stream: str = "out") -> Path:
        """A task's log file (``stream``: out or err); ``task`` may be ``*``."""
        name = f"{self.job_id}_{task}" if self.tasks > 1 else self.job_id
        return self.folder / f"{name}_0_log.{stream}"


def require_sbatch() -> None:
    """Refuse to go on where Slurm's client commands are missing."""
    missing = [tool for tool in ("sbatch", "squeue", "scontrol") if shutil.which(tool) is None]
    if missing:
        raise AblateError(f"no {', '.join(missing)} on the PATH: run `ablate study submit` on a "
                          "machine of the Slurm cluster (a login node); without Slurm, start "
                          "workers with `ablate study run NAME --workers N`")


def log_folder(stores: Stores, study: str) -> Path:
    """Where the study's job logs and submitit's files go."""
    return (stores.folder or Path(DEFAULT_STORE).absolute()) / "slurm" / study


def job_name(study: str) -> str:
    return f"ablate-{study}"


def test_submission(options: SubmitOptions, study: str) -> None:
    """Ask Slurm whether it would accept the array (``sbatch --test-only``); an AblateError
    with Slurm's own words when not."""
    command = ["sbatch", "--test-only", f"--array=0-{options.workers - 1}",
               f"--job-name={job_name(study)}", *as_flags(options.sbatch()), "--wrap=true"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError) as err:
        raise AblateError(f"could not ask Slurm (sbatch --test-only): {err}") from err
    if done.returncode != 0:
        lines = [line.strip() for line in (done.stderr + done.stdout).splitlines()
                 if line.strip() and not line.startswith("Try ")]
        said = "; ".join(lines) or f"exit code {done.returncode}"
        raise AblateError(f"Slurm refuses the job ({said}); fix the option it names "
                          "(`sinfo` lists partitions, `sbatch --help` the options)")


def submit(study: str, stores: Stores, options: SubmitOptions,
           task: Callable[[], Any]) -> Submitted:
    """Submit ``options.workers`` copies of ``task`` (a picklable worker on study ``study``)
    as one job array (a single job for one worker)."""
    import submitit

    folder = log_folder(stores, study)
    executor = submitit.SlurmExecutor(folder=folder, max_num_timeout=MAX_TIMEOUT_REQUEUES)
    sbatch = options.sbatch()
    executor.update_parameters(
        job_name=job_name(study),
        # no --time: the partition's default (submitit would ask for 5 minutes)
        time=sbatch.pop("time", None),
        array_parallelism=options.workers,
        wckey=None,  # submitit's default names itself; accounting keys are the cluster's
        additional_parameters=sbatch,
    )
    try:
        with executor.batch():
            jobs = [executor.submit(task) for _ in range(options.workers)]
    except (subprocess.CalledProcessError, submitit.core.utils.FailedSubmissionError) as err:
        said = getattr(err, "stderr", None) or getattr(err, "output", None) or err
        raise AblateError(f"sbatch failed: {said!s}".strip()) from err
    job_id = jobs[0].job_id.split("_")[0]
    return Submitted(job_id, options.workers, folder)
