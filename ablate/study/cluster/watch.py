"""Waiting for a submitted job array: its tasks' states from ``squeue``, the study's progress
from its storage, one line whenever either changes.

The job is over when none of its tasks is pending, running or requeued any more (``squeue``
keeps finished tasks for a few minutes, then forgets them; a forgotten task is over too).
This needs no accounting database (``sacct``, which submitit's own waiting relies on).
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from collections.abc import Callable

import optuna

from ablate.stores import Stores

# squeue's states of a job that is over (anything else may still run). PREEMPTED is not one:
# a preempted job is requeued where the cluster says so. A job must look over twice in a row,
# so that a state on the way to a requeue (NODE_FAIL, say) does not end the wait.
FINISHED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
            "BOOT_FAIL", "DEADLINE"}


def task_states(job_id: str) -> dict[str, str]:
    """``{task id: state}`` of the job's tasks that Slurm still knows (``squeue -r``); empty
    once it has forgotten them all."""
    try:
        done = subprocess.run(["squeue", "-h", "-r", "-t", "all", "-j", job_id, "-o", "%i|%T"],
                              capture_output=True, text=True, timeout=60, check=False)
    except subprocess.TimeoutExpired:
        return {job_id: "UNKNOWN"}  # a busy controller: ask again later
    if done.returncode != 0:
        if "invalid job id" in done.stderr.lower():  # finished and forgotten
            return {}
        return {job_id: "UNKNOWN"}  # e.g. the controller did not answer: ask again later
    states = {}
    for line in done.stdout.splitlines():
        task, _, state = line.strip().partition("|")
        if task:
            states[task] = state
    return states


def running(states: dict[str, str]) -> bool:
    return any(state not in FINISHED for state in states.values())


def counts(study: optuna.Study) -> Counter[str]:
    """The study's trials by state (COMPLETE, RUNNING, WAITING, ...)."""
    return Counter(t.state.name for t in study.get_trials(deepcopy=False))


def progress_line(job_id: str, states: dict[str, str], trials: Counter[str], total: int) -> str:
    """``job 12: tasks 2 running; 3/8 trials finished (2 running, 1 queued)``."""
    tasks = Counter(states.values())
    shown = ", ".join(f"{n} {s.lower()}" for s, n in sorted(tasks.items())) or "finished"
    finished = trials["COMPLETE"] + trials["PRUNED"]
    named = {"RUNNING": "running", "WAITING": "queued", "FAIL": "failed or interrupted"}
    extra = [f"{trials[s]} {word}" for s, word in named.items() if trials[s]]
    return (f"job {job_id}: tasks {shown}; {finished}/{total} trials finished"
            + (f" ({', '.join(extra)})" if extra else ""))


def wait(job_id: str, stores: Stores, name: str, total: int,
         echo: Callable[[str], None] = print, poll_s: float = 5.0) -> dict[str, str]:
    """Wait until the job is over, echoing progress; returns the tasks' last known states."""
    from ablate.study.storage import open_storage

    study = optuna.load_study(study_name=name, storage=open_storage(stores))
    last_line, last_states, over = "", {}, False
    while True:
        states = task_states(job_id)
        if states:
            last_states = states
        line = progress_line(job_id, states, counts(study), total)
        if line != last_line:
            echo(line)
            last_line = line
        if not running(states):
            if over:
                return last_states
            over = True
        else:
            over = False
        time.sleep(poll_s)
