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
from ablate.tracking import names

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


def trial_runs(tracker: Tracker, study: str, state: str | None = None) -> list[Any] | None:
    """The trial runs of ``study`` (None: no such experiment), optionally in one state."""
    experiment = tracker.experiment_id(study, create=False)
    if experiment is None:
        return None
    query = f"tags.`{names.TAG_ROLE}` = '{names.ROLE_TRIAL}'"
    if state is not None:
        query += f" and tags.`{names.TAG_STATE}` = '{state}'"
    return tracker.client.search_runs([experiment], filter_string=query, max_results=10_000)


def run_config(tracker: Tracker, run_id: str) -> RunConfig:
    """The resolved configuration a run was trained with (its ``config.yaml``)."""
    try:
        path = tracker.client.download_artifacts(run_id, names.CONFIG_ARTIFACT)
    except Exception as err:  # noqa: BLE001 - unknown run id or missing artifact
        raise AblateError(f"run {run_id}: no {names.CONFIG_ARTIFACT} in "
                          f"{tracker.stores.tracking_uri} "
                          f"({str(err).splitlines()[0][:120]})") from None
    return RunConfig.model_validate(yaml.safe_load(Path(path).read_text()))


def run_metrics(tracker: Tracker, run_id: str) -> dict[str, float]:
    """The latest value of every metric of a run."""
    return dict(tracker.client.get_run(run_id).data.metrics)
