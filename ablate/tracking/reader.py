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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import yaml

from ablate.errors import AblateError
from ablate.stores import (
    Stores,
    check_database_file,
    local_sqlite_missing,
    read_only_url,
    redact,
    sqlite_path,
)
from ablate.tracking import artifacts, names

if TYPE_CHECKING:
    from ablate.spec import RunConfig
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

    client = MlflowClient(tracking_uri=read_only_url(tracking_uri))  # writes nothing
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
    path = sqlite_path(uri)
    if path is not None:
        check_database_file(path, "mlflow", write=False)
    if reader == "sql" and not sqlread.supports(uri):
        raise AblateError(f"--reader sql reads the tables of a database tracking store "
                          f"(sqlite, postgresql, mysql, mssql), not {redact(uri)}; use "
                          "--reader auto or mlflow, or point --tracking-uri at the database")
    if reader != "mlflow" and sqlread.supports(uri):
        try:
            frame = sqlread.fetch_sql(uri, study)
        except AblateError:
            raise
        except Exception as err:  # noqa: BLE001 - another schema or driver: the API instead
            if reader == "sql":
                first = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
                raise AblateError(f"--reader sql cannot read {redact(uri)}: "
                                  f"{type(err).__name__}: {first}; try --reader mlflow") from None
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


def selection_table(runs: list[Any], objective: str) -> pd.DataFrame:
    """MLflow trial runs as the table of :mod:`ablate.selection` (``config``, ``objective``,
    ``order``, ``repeat``) plus ``run_id``, ``trial`` and ``state``, oldest first; each
    (configuration, repeat) once among complete runs: its latest, as the report counts them.
    ``objective``: the objective's name (``val_iou``)."""
    key = names.metric_key(objective)
    rows = []
    for run in sorted(runs, key=lambda r: r.info.start_time):
        tags = run.data.tags
        trial = tags.get(names.TAG_TRIAL, "")
        label = names.trial_label(int(trial)) if trial.isdigit() else f"trial-{trial}"
        rows.append({
            "run_id": run.info.run_id,
            "config": tags.get(names.TAG_CONFIG) or label,
            "objective": run.data.metrics.get(key, float("nan")),
            "order": int(trial) if trial.isdigit() else None,
            "trial": int(trial) if trial.isdigit() else None,
            "repeat": int(tags.get(names.TAG_REPEAT, "0")),
            "state": tags.get(names.TAG_STATE, ""),
            "weights": tags.get(names.TAG_WEIGHTS, ""),
        })
    table = pd.DataFrame(rows, columns=["run_id", "config", "objective", "order", "trial",
                                        "repeat", "state", "weights"])
    complete = table[table["state"] == "COMPLETE"]
    latest = complete.drop_duplicates(["config", "repeat"], keep="last").index
    return table[(table["state"] != "COMPLETE") | table.index.isin(latest)]


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
    from ablate.spec import RunConfig  # the spec's models: only for readers of a config

    return RunConfig.model_validate(yaml.safe_load(path.read_text()))


def run_tags(tracker: Tracker, run_id: str) -> dict[str, str]:
    """Every tag of a run."""
    return dict(tracker.client.get_run(run_id).data.tags)


def run_metrics(tracker: Tracker, run_id: str) -> dict[str, float]:
    """The latest value of every metric of a run."""
    return dict(tracker.client.get_run(run_id).data.metrics)


# ---------------------------------------------------------------------- one run, in full


@dataclass
class TrackedRun:
    """One run as tracked: what ``ablate diff`` and ``ablate rerun`` compare."""

    run_id: str
    name: str
    study: str  # its experiment's name
    status: str
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)  # final numbers by name (val_iou)
    config: dict[str, Any] | None = None  # its config.yaml as plain data (None: not logged)
    curves: dict[str, list[float]] = field(default_factory=dict)  # epoch curves by name

    @property
    def environment(self) -> dict[str, str]:
        """The ``ablate.env.*`` entries, by key (``torch``, ``device``, ``git_commit``...)."""
        return {k.removeprefix(names.ENV_PREFIX): v for k, v in self.tags.items()
                if k.startswith(names.ENV_PREFIX)}

    @property
    def data(self) -> dict[str, str]:
        """The digest of each split's data, by split."""
        return {k.removeprefix(names.DATA_PREFIX): v for k, v in self.tags.items()
                if k.startswith(names.DATA_PREFIX)}

    @property
    def label(self) -> str:
        """``<study> / <run name>`` with its trial, repeat and seed where known."""
        parts = [f"trial {self.tags[names.TAG_TRIAL]}"] if names.TAG_TRIAL in self.tags else []
        if names.TAG_REPEAT in self.tags:
            parts.append(f"repeat {self.tags[names.TAG_REPEAT]}")
        if names.TAG_SEED in self.tags:
            parts.append(f"seed {self.tags[names.TAG_SEED]}")
        role = self.tags.get(names.TAG_ROLE, "run")
        return f"{self.study} / {self.name} ({role}{', ' if parts else ''}{', '.join(parts)})"


def _not_found(tracker: Tracker, ref: str, why: str = "") -> AblateError:
    return AblateError(
        f"run '{ref}' is not in {tracker.stores.tracking_uri}{why}; check the run id (MLflow UI, "
        "or STUDY:TRIAL), or point --store/--tracking-uri at the store that holds it"
    )


def find_run(tracker: Tracker, ref: str) -> str:
    """The id of the run ``ref`` names: a run id, ``STUDY:TRIAL`` or ``STUDY:TRIAL:REPEAT``
    (the latest attempt of that trial, a complete one if any)."""
    if ":" not in ref:
        try:
            return tracker.client.get_run(ref).info.run_id
        except Exception:  # noqa: BLE001 - unknown or malformed id
            raise _not_found(tracker, ref) from None
    study, _, rest = ref.partition(":")
    trial, _, repeat = rest.partition(":")
    if not trial.isdigit() or (repeat and not repeat.isdigit()):
        raise AblateError(f"'{ref}': expected a run id, STUDY:TRIAL or STUDY:TRIAL:REPEAT "
                          "(e.g. quickstart:3)")
    runs = trial_runs(tracker, study)
    if runs is None:
        raise _not_found(tracker, ref, f" (no study '{study}' there)")
    runs = [r for r in runs if r.data.tags.get(names.TAG_TRIAL) == trial
            and (not repeat or r.data.tags.get(names.TAG_REPEAT, "0") == repeat)]
    if not runs:
        raise _not_found(tracker, ref, f" (study '{study}' has no run of trial {trial}"
                                       + (f", repeat {repeat}" if repeat else "") + ")")
    repeats = sorted({r.data.tags.get(names.TAG_REPEAT, "0") for r in runs})
    if len(repeats) > 1:
        raise AblateError(f"'{ref}': trial {trial} of study '{study}' has {len(repeats)} runs "
                          f"(repeats {', '.join(repeats)}); name one as {ref}:REPEAT")
    runs.sort(key=lambda r: (r.data.tags.get(names.TAG_STATE) == "COMPLETE", r.info.start_time))
    return runs[-1].info.run_id


def tracked_run(tracker: Tracker, run_id: str) -> TrackedRun:
    """Tags, params, final metrics and logged configuration of one run."""
    try:
        run = tracker.client.get_run(run_id)
        experiment = tracker.client.get_experiment(run.info.experiment_id)
    except Exception:  # noqa: BLE001 - unknown id
        raise _not_found(tracker, run_id) from None
    metrics = {names.metric_name(k): float(v) for k, v in run.data.metrics.items()
               if not k.startswith(names.EPOCH_PREFIX)}
    config = None
    folder = artifacts.local_dir(tracker.stores, run.info.artifact_uri)
    try:
        path = (folder / names.CONFIG_ARTIFACT if folder is not None
                else artifact_path(tracker, run_id, names.CONFIG_ARTIFACT))
        if path.is_file():
            config = yaml.safe_load(path.read_text())
    except AblateError:
        config = None
    curves = {}
    for key in sorted(k for k in run.data.metrics if k.startswith(names.EPOCH_PREFIX)):
        history = sorted(tracker.client.get_metric_history(run_id, key), key=lambda m: m.step)
        curves[key.removeprefix(names.EPOCH_PREFIX)] = [float(m.value) for m in history]
    return TrackedRun(run_id, run.info.run_name or run_id[:8], experiment.name, run.info.status,
                      dict(run.data.tags), dict(run.data.params), metrics, config, curves)
