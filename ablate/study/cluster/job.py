"""Inside a Slurm job: requeueing it after Slurm's warning, unless the study is done.

A worker in a Slurm job that receives the warning signal (``--signal=USR2@SECONDS``: a time
limit, or a preemption where the cluster sends user signals then) has queued its trial again
by the time :func:`after_interrupt` runs; it then requeues its own job (``scontrol requeue``)
unless the study is done, so the job comes back with a fresh time limit and the trial
continues on whichever worker takes it. SIGTERM (``scancel``, ``scontrol requeue``, a
preemption) is left to Slurm: it requeues the job itself where that is what it meant.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable

from ablate.runs.interrupts import INTERRUPTED, is_warning
from ablate.runs.slurm import job_id, job_label
from ablate.stores import Stores

REQUEUED = 75  # exit code of a worker whose job was requeued (EX_TEMPFAIL: to be continued)


def requeue() -> str | None:
    """Requeue this job, only this task of an array (``scontrol requeue``); returns None, or
    why it failed."""
    job = job_id()
    if job is None:
        return "not in a Slurm job (no SLURM_JOB_ID)"
    try:
        done = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True,
                              timeout=60, check=False)
    except (OSError, subprocess.SubprocessError) as err:
        return str(err)
    return None if done.returncode == 0 else (done.stderr.strip() or f"exit {done.returncode}")


def study_done(stores: Stores, name: str) -> bool:
    """Whether study ``name`` has nothing left to run (its budget met; none running or
    queued)."""
    import optuna

    from ablate.designs import configurations
    from ablate.study.runner import budget, next_action
    from ablate.study.storage import load_stored_spec, open_storage

    spec = load_stored_spec(stores, name)
    study = optuna.load_study(study_name=name, storage=open_storage(stores))
    fixed = bool(configurations(spec.design))
    return next_action(study, budget(spec), fixed, more=False) == "done"


def after_interrupt(err: BaseException, stores: Stores, name: str,
                    echo: Callable[[str], None] = print) -> int:
    """The exit code of a worker stopped by ``err`` (its trial already queued again): in a
    Slurm job stopped by the warning signal, the job is requeued unless the study is done
    (:data:`REQUEUED`, or 0 when done); otherwise :data:`INTERRUPTED`."""
    if not (is_warning(err) and job_id()):
        return INTERRUPTED
    try:
        done = study_done(stores, name)
    except Exception as exc:  # noqa: BLE001 - when in doubt, come back: a requeued worker
        done = False          # finds the study done and exits at once
        echo(f"could not read study '{name}' ({type(exc).__name__}: {exc}); requeueing")
    if done:
        echo(f"Slurm job {job_label()}: study '{name}' is done; not requeued")
        return 0
    failed = requeue()
    if failed is not None:
        echo(f"Slurm job {job_label()}: could not requeue it ({failed}); start more workers "
             f"with `ablate study submit {name}`")
        return INTERRUPTED
    restarts = os.environ.get("SLURM_RESTART_COUNT", "0")
    echo(f"Slurm job {job_label()} requeued (restart {int(restarts) + 1}): its trial was queued "
         "again and continues when a worker takes it")
    return REQUEUED
