"""Weights logged by runs: found for ``init_from``/predict (fetched once into a cache inside
the store folder when a server keeps them), and discarded where a study keeps only some."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ablate.errors import AblateError
from ablate.stores import DEFAULT_STORE
from ablate.tracking import artifacts, names
from ablate.tracking.reader import artifact_path
from ablate.tracking.writer import Tracker

if TYPE_CHECKING:  # readers of runs (the report) need not load the spec's models
    from ablate.spec import RunConfig

CACHE_DIR = Path("cache") / "checkpoints"  # in the store folder: <store>/cache/checkpoints/<run>


def cache_dir(tracker: Tracker, run_id: str) -> Path:
    """Where run ``run_id``'s fetched weights are kept: ``<store>/cache/checkpoints/<run id>``
    (the ``--store`` folder, also when a tracking server keeps the artifacts)."""
    folder = tracker.stores.folder or Path(DEFAULT_STORE).absolute()
    return folder / CACHE_DIR / run_id


def checkpoint(tracker: Tracker, run_id: str) -> Path:
    """The ``model.pt`` logged by run ``run_id``: the file itself in a local store, else a copy
    downloaded once into :func:`cache_dir` (moved there whole: a killed download leaves no
    half file) and reused by every later call."""
    try:
        uri: str | None = tracker.client.get_run(run_id).info.artifact_uri
    except Exception:  # noqa: BLE001 - unknown id: _weights gives the one-line error
        uri = None
    if uri is None or artifacts.local_dir(tracker.stores, uri) is not None:
        return _weights(tracker, run_id, None)
    dest = cache_dir(tracker, run_id)
    cached = dest / names.MODEL_ARTIFACT
    if not cached.is_file():
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=dest, prefix=".download-") as tmp:
            os.replace(_weights(tracker, run_id, Path(tmp)), cached)
    return cached


def _weights(tracker: Tracker, run_id: str, dest: Path | None) -> Path:
    try:
        return artifact_path(tracker, run_id, names.MODEL_ARTIFACT, dest)
    except AblateError as err:
        raise AblateError(
            f"{err}; its weights were not kept (eval.save_weights: none, or best and it is "
            "not the run representing its configuration): use that run, or train with "
            "eval.save_weights: all"
        ) from None


def discard_weights(tracker: Tracker, run_id: str, why: str) -> None:
    """Delete run ``run_id``'s ``model.pt`` (a missing one is fine) and say why in its tag
    ``ablate.weights``; the cached copy goes too."""
    uri = tracker.client.get_run(run_id).info.artifact_uri
    folder = artifacts.local_dir(tracker.stores, uri)
    if folder is not None:
        (folder / names.MODEL_ARTIFACT).unlink(missing_ok=True)
    else:
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        repo = get_artifact_repository(uri, tracking_uri=tracker.stores.tracking_uri)
        try:
            repo.delete_artifacts(names.MODEL_ARTIFACT)
        except Exception as err:  # noqa: BLE001 - already gone, or a server that cannot delete
            if "404" not in str(err) and "not found" not in str(err).lower():
                raise AblateError(f"run {run_id}: model.pt cannot be deleted from the "
                                  f"artifact store ({str(err).splitlines()[0][:160]})") from None
    shutil.rmtree(cache_dir(tracker, run_id), ignore_errors=True)
    tracker.client.set_tag(run_id, names.TAG_WEIGHTS, why)


def localize(tracker: Tracker, config: RunConfig) -> RunConfig:
    """``config`` with a run id in ``model.init_from`` replaced by its checkpoint's path."""
    source = config.model.init_from
    if not source or Path(source).is_file():
        return config
    data = config.model_dump(mode="json")
    try:
        data["model"]["init_from"] = str(checkpoint(tracker, source))
    except AblateError as err:
        raise AblateError(f"model.init_from: {err}, or give a checkpoint path") from None
    return type(config).model_validate(data)
