"""Runs whose worker is gone: closed as KILLED, never left RUNNING."""

from __future__ import annotations

from ablate.tracking import names
from ablate.tracking.writer import RunLog, Tracker

WORKER_DIED = "worker died"


def close_dead_run(tracker: Tracker, run_id: str, reason: str = WORKER_DIED,
                   finished: bool = False) -> bool:
    """Mark a run whose worker is gone as KILLED; False if it was not RUNNING.

    ``finished``: also a run that ended (e.g. COMPLETE) but whose trial was never told so:
    its configuration runs again, and this attempt must not count as a result.
    """
    run = tracker.client.get_run(run_id)
    if run.info.status == "KILLED" or (run.info.status != "RUNNING" and not finished):
        return False
    RunLog(tracker.client, run_id).end("FAIL", reason, killed=True)  # no artifacts
    return True


def running_trial_runs(tracker: Tracker, experiment_id: str) -> list[tuple[str, int | None]]:
    """``(run id, trial number)`` of every trial run still marked RUNNING in the experiment."""
    running = tracker.client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{names.TAG_ROLE}` = '{names.ROLE_TRIAL}' "
                      "and attributes.status = 'RUNNING'",
        max_results=10_000,
    )
    out: list[tuple[str, int | None]] = []
    for run in running:
        number = run.data.tags.get(names.TAG_TRIAL)
        out.append((run.info.run_id, int(number) if number and number.isdigit() else None))
    return out


def close_trial_runs(tracker: Tracker, experiment_id: str, trial: int,
                     reason: str = WORKER_DIED) -> int:
    """Close every run of trial number ``trial`` that is not KILLED yet (RUNNING, or ended
    without its trial being told); found by the trial tag, so a run whose id never reached
    Optuna is found too. Returns how many were closed."""
    runs = tracker.client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{names.TAG_ROLE}` = '{names.ROLE_TRIAL}' "
                      f"and tags.`{names.TAG_TRIAL}` = '{trial}' "
                      "and attributes.status != 'KILLED'",
        max_results=1000,
    )
    return sum(close_dead_run(tracker, run.info.run_id, reason, finished=True) for run in runs)
