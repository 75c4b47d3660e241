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

from __future__ import annotations

from typing import TYPE_CHECKING

from ablate._lazy import lazy

# public name -> the submodule that defines it: importing the package (or its names
# contract) loads neither MLflow nor pandas
_EXPORTS = {
    "cache_dir": "checkpoints",
    "checkpoint": "checkpoints",
    "discard_weights": "checkpoints",
    "localize": "checkpoints",
    "probe_tracking_server": "client",
    "READERS": "reader",
    "ArtifactReader": "reader",
    "TrackedRun": "reader",
    "artifact_names": "reader",
    "artifact_path": "reader",
    "fetch": "reader",
    "find_run": "reader",
    "run_config": "reader",
    "run_metrics": "reader",
    "run_tags": "reader",
    "selection_table": "reader",
    "tracked_run": "reader",
    "trial_runs": "reader",
    "WORKER_DIED": "recovery",
    "close_dead_run": "recovery",
    "close_trial_runs": "recovery",
    "running_trial_runs": "recovery",
    "RunLog": "writer",
    "Tracker": "writer",
    "logged_metrics": "writer",
}

if TYPE_CHECKING:
    from ablate.tracking.checkpoints import (
        cache_dir,
        checkpoint,
        discard_weights,
        localize,
    )
    from ablate.tracking.client import (
        probe_tracking_server,
    )
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
    from ablate.tracking.writer import (
        RunLog,
        Tracker,
        logged_metrics,
    )

__getattr__, __dir__ = lazy(__name__, _EXPORTS)

__all__ = [
    "artifact_names",
    "artifact_path",
    "ArtifactReader",
    "cache_dir",
    "checkpoint",
    "close_dead_run",
    "close_trial_runs",
    "discard_weights",
    "fetch",
    "find_run",
    "localize",
    "logged_metrics",
    "names",
    "probe_tracking_server",
    "READERS",
    "run_config",
    "run_metrics",
    "run_tags",
    "RunLog",
    "running_trial_runs",
    "selection_table",
    "tracked_run",
    "TrackedRun",
    "Tracker",
    "trial_runs",
    "WORKER_DIED",
]
