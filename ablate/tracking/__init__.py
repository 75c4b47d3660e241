"""MLflow tracking: the only package that talks to MLflow.

- :mod:`~ablate.tracking.names`: the contract, every tag, metric, param and artifact name that
  the writer and the readers share;
- :mod:`~ablate.tracking.writer`: the study's experiment and parent run, one run per training;
- :mod:`~ablate.tracking.reader` (+ :mod:`~ablate.tracking.sqlread`): runs read back in bulk;
- :mod:`~ablate.tracking.recovery`: runs of dead workers closed as KILLED;
- :mod:`~ablate.tracking.checkpoints`: logged weights fetched for ``init_from`` and predict
  (cached in the store folder), and discarded where a study keeps only some.

``import mlflow`` happens only when a store is opened, so the names cost nothing to import.
"""

from ablate.tracking import names
from ablate.tracking.checkpoints import cache_dir, checkpoint, discard_weights, localize
from ablate.tracking.client import probe_tracking_server
from ablate.tracking.reader import (
    READERS,
    ArtifactReader,
    TrackedRun,
    artifact_names,
    artifact_path,
    fetch,
    find_run,
    run_config,
    run_metrics,
    run_tags,
    selection_table,
    tracked_run,
    trial_runs,
)
from ablate.tracking.recovery import (
    WORKER_DIED,
    close_dead_run,
    close_trial_runs,
    running_trial_runs,
)
from ablate.tracking.writer import RunLog, Tracker, logged_metrics

__all__ = [
    "READERS",
    "ArtifactReader",
    "WORKER_DIED",
    "TrackedRun",
    "artifact_names",
    "artifact_path",
    "RunLog",
    "Tracker",
    "cache_dir",
    "checkpoint",
    "discard_weights",
    "close_dead_run",
    "close_trial_runs",
    "fetch",
    "find_run",
    "localize",
    "names",
    "probe_tracking_server",
    "logged_metrics",
    "run_config",
    "run_metrics",
    "run_tags",
    "selection_table",
    "running_trial_runs",
    "tracked_run",
    "trial_runs",
]
