"""Reading runs back: a study's runs in bulk (for the report) and single runs (predict).

:func:`fetch` returns every active run of a study's experiment as one row each: ``run_id``,
``start_time``, ``status``, ``tags.<name>`` and ``metrics.<name>`` (final metrics; per-epoch
curves are left out). Two readers give the same frame: MLflow's public ``search_runs`` (any
store) and :mod:`ablate.tracking.sqlread` (MLflow's tables of a database store, much faster).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import yaml

from ablate.errors import AblateError
from ablate.spec import RunConfig
from ablate.stores import Stores, local_sqlite_missing
from ablate.tracking import artifacts, names

if TYPE_CHECKING:
    from ablate.tracking.writer import Tracker

READERS = ("auto", "mlflow", "sql")
_PAGE = 5000


@contextmanager
def _no_gc() -> Iterator[None]:
    """Building ~200 ORM objects per run trips the cyclic GC over and over (2-3x slower)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _search(client: Any, experiment: str) -> list[Any]:
    runs: list[Any] = []
    token = None
    while True:
        page = client.search_runs([experiment], max_results=_PAGE, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _row(run: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "run_id": run.info.run_id, "start_time": run.info.start_time, "status": run.info.status,
        "artifact_uri": run.info.artifact_uri,
    }
    for key, value in run.data.tags.items():
        row["tags." + key] = value
    for key, value in run.data.metrics.items():
        if not key.startswith(names.EPOCH_PREFIX):
            row["metrics." + names.metric_name(key)] = value
    return row


def _missing(study: str, where: str) -> AblateError:
    return AblateError(
        f"no MLflow experiment named '{study}' in {where}; run the study first "
        f"(`ablate study run {study}`) or point --tracking-uri/--store at its store"
    )


def fetch_mlflow(tracking_uri: str, study: str) -> pd.DataFrame:
    """Every active run of the study's experiment through ``MlflowClient.search_runs``
    (paged, one search), one row each."""
    from ablate.tracking.client import quiet_mlflow

    quiet_mlflow()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    try:
        experiment = client.get_experiment_by_name(study)
    except Exception as err:  # noqa: BLE001 - any failure here is an unreachable store
        raise AblateError(f"MLflow tracking store {tracking_uri} cannot be read: "
                          f"{str(err).splitlines()[0][:200]}") from None
    if experiment is None:
        raise _missing(study, tracking_uri)
    with _no_gc():
        runs = _search(client, experiment.experiment_id)
        return pd.DataFrame([_row(run) for run in runs])


def fetch(stores: Stores, study: str, reader: str = "auto") -> pd.DataFrame:
    """Every run of the study's experiment (parent and trials), one row each. ``reader``:
    ``mlflow`` (``search_runs``, any store), ``sql`` (MLflow's tables of a database store,
    :mod:`ablate.tracking.sqlread`), ``auto`` (sql where it applies, else mlflow)."""
    from ablate.tracking import sqlread

    uri = stores.tracking_uri
    if local_sqlite_missing(uri):
        raise AblateError(f"no MLflow store at {uri}; run a study first or point "
                          "--tracking-uri/--store at its store")
    if reader != "mlflow" and sqlread.supports(uri):
        try:
            frame = sqlread.fetch_sql(uri, study)
        except Exception:  # noqa: BLE001 - another schema or driver: the public API instead
            if reader == "sql":
                raise
        else:
            if frame is None:
                raise _missing(study, uri)
            return frame
    return fetch_mlflow(uri, study)


# ------------------------------------------------------------------------------ single runs


class ArtifactReader:
    """Small artifacts of runs read back by their ``artifact_uri`` (a column of :func:`fetch`):
    straight from the files of a local store, through the tracking server otherwise."""

    def __init__(self, stores: Stores):
        self.stores = stores
        self._client: Any = None

    def text(self, run_id: str, artifact_uri: str, name: str) -> str | None:
        """The artifact's text, or None when the run has no such artifact."""
        data = self.data(run_id, artifact_uri, name)
        return data.decode() if data is not None else None

    def data(self, run_id: str, artifact_uri: str, name: str) -> bytes | None:
        """The artifact's bytes, or None when the run has no such artifact."""
        folder = artifacts.local_dir(self.stores, artifact_uri)
        if folder is not None:
            path = folder / name
            return path.read_bytes() if path.is_file() else None
        import tempfile

        if self._client is None:
            from ablate.tracking.client import quiet_mlflow

            quiet_mlflow()
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=self.stores.tracking_uri)
        with tempfile.TemporaryDirectory(prefix="ablate-") as tmp:
            try:
                return Path(self._client.download_artifacts(run_id, name, tmp)).read_bytes()
            except Exception:  # noqa: BLE001 - no such artifact on the server
                return None



def trial_runs(tracker: Tracker, study: str, state: str | None = None) -> list[Any] | None:
    """The trial runs of ``study`` (None: no such experiment), optionally in one state."""
    experiment = tracker.experiment_id(study, create=False)
    if experiment is None:
        return None
    query = f"tags.`{names.TAG_ROLE}` = '{names.ROLE_TRIAL}'"
    if state is not None:
        query += f" and tags.`{names.TAG_STATE}` = '{state}'"
    return tracker.client.search_runs([experiment], filter_string=query, max_results=10_000)


def artifact_path(tracker: Tracker, run_id: str, name: str, dest: Path | None = None) -> Path:
    """A local path of a run's artifact ``name``: the file itself in a local store, else a
    download (into ``dest``, or a temporary folder). A missing one is a one-line error."""
    try:
        uri = tracker.client.get_run(run_id).info.artifact_uri
        folder = artifacts.local_dir(tracker.stores, uri)
        if folder is not None:
            if not (folder / name).is_file():
                raise FileNotFoundError(f"not in {folder}")
            return folder / name
        dest_dir = str(dest) if dest is not None else None
        return Path(tracker.client.download_artifacts(run_id, name, dest_dir))
    except Exception as err:  # noqa: BLE001 - unknown run id or missing artifact
        raise AblateError(f"run {run_id} has no {name} in {tracker.stores.tracking_uri} "
                          f"({str(err).splitlines()[0][:160]})") from None


def artifact_names(tracker: Tracker, run_id: str) -> list[str]:
    """The top-level artifact names of a run (files and folders)."""
    uri = tracker.client.get_run(run_id).info.artifact_uri
    folder = artifacts.local_dir(tracker.stores, uri)
    if folder is not None:
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    return sorted(a.path for a in tracker.client.list_artifacts(run_id))


def run_config(tracker: Tracker, run_id: str) -> RunConfig:
    """The resolved configuration a run was trained with (its ``config.yaml``)."""
    path = artifact_path(tracker, run_id, names.CONFIG_ARTIFACT)
    return RunConfig.model_validate(yaml.safe_load(path.read_text()))


def run_metrics(tracker: Tracker, run_id: str) -> dict[str, float]:
    """The latest value of every metric of a run."""
    return dict(tracker.client.get_run(run_id).data.metrics)
