"""Runs whose worker is gone: closed as KILLED, never left RUNNING."""

from __future__ import annotations

from ablate.tracking import names
from ablate.tracking.writer import RunLog, Tracker

WORKER_DIED = "worker died"


def close_dead_run(tracker: Tracker, run_id: str, reason: str = WORKER_DIED) -> bool:
    """Mark a run whose worker is gone as KILLED; False if it was not RUNNING."""
    run = tracker.client.get_run(run_id)
    if run.info.status != "RUNNING":
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
