"""Stores filled with known numbers, without training anything: for the report's tests and
the scale benchmark. Everything is written through the real writer: the parent's tags by
:func:`~ablate.tracking.writer.study_tags`, a trial's by
:func:`~ablate.tracking.writer.run_tags` and :func:`~ablate.tracking.writer.searched_tags`, its
numbers, artifacts and end by :class:`~ablate.tracking.writer.RunLog`; so they hold exactly
the names and layout that studies write, and a change to the writer reaches them too.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ablate.metrics.scores import binary_scores
from ablate.tracking import names as keys
from ablate.tracking.writer import RunLog, run_tags, searched_tags, study_tags
from ablate.training.result import ImageCounts

_TEMPLATE: list[Path] = []


def sqlite_store(folder: Path) -> str:
    """The tracking URI of a new, empty SQLite MLflow store in ``folder``. MLflow creates a
    store by running its schema migrations (~2.5 s); they run once per process, on a template
    that later stores copy."""
    if not _TEMPLATE:
        from mlflow.tracking import MlflowClient

        folder_ = Path(tempfile.mkdtemp(prefix="ablate_template_"))
        atexit.register(shutil.rmtree, folder_, ignore_errors=True)
        template = folder_ / "mlflow.db"
        MlflowClient(tracking_uri=f"sqlite:///{template}").search_experiments()
        _TEMPLATE.append(template)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_TEMPLATE[0], folder / "mlflow.db")
    return f"sqlite:///{folder / 'mlflow.db'}"


def binary_metrics(split: str, tp: float, fp: float, fn: float, tn: float) -> dict[str, float]:
    """The final binary metrics of one split as ``train()`` names them, from its counts."""
    return {keys.split_key(split, k): v for k, v in binary_scores(tp, fp, fn, tn).items()}


class StoreWriter:
    """One study's experiment: a parent run and trial runs written with known values."""

    def __init__(
        self,
        tracking_uri: str,
        study: str,
        *,
        task: str = "binary",
        objective: str = "val_iou",
        direction: str = "maximize",
        design: str | None = None,
        search: Mapping[str, str] | None = None,
        classes: Sequence[str] | None = None,
        baseline: str | None = None,
        components: Sequence[str] | None = None,
        objectives: Sequence[Mapping[str, str]] | None = None,
        thresholds: Sequence[float] | None = None,
        report: Mapping[str, Any] | None = None,
        repeats: int | Mapping[str, int] | None = None,
    ) -> None:
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=tracking_uri)
        self.study = study
        # Artifacts next to a SQLite database, in the layout of a local store.
        location = None
        if tracking_uri.startswith("sqlite:///"):
            folder = Path(tracking_uri.removeprefix("sqlite:///")).parent / "artifacts" / study
            location = folder.absolute().as_uri()
        self.experiment = self.client.create_experiment(study, artifact_location=location)
        self._clock = int(time.time() * 1000)
        self.task, self.objective, self.direction = task, objective, direction
        # None leaves a tag out, as in a store written before it existed
        tags = study_tags(study, task=task, objective=objective, direction=direction,
                          search=dict(search or {}), classes=list(classes or []), design=design,
                          baseline=baseline, components=components, objectives=objectives,
                          thresholds=thresholds, report=report, repeats=repeats)
        run = self.client.create_run(self.experiment, start_time=self._tick(), tags=tags,
                                     run_name=study)
        self.parent_id = run.info.run_id

    def _tick(self) -> int:
        self._clock += 1000
        return self._clock

    def trial(
        self,
        trial: int,
        metrics: Mapping[str, float],
        *,
        state: str = "COMPLETE",
        reason: str | None = None,
        config: str | None = None,
        repeat: int | None = None,
        seed: int | None = None,
        components: Mapping[str, bool] | None = None,
        searched: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        epochs: Sequence[Mapping[str, float]] = (),
        image_counts: ImageCounts | None = None,
        extra_tags: Mapping[str, str] | None = None,
    ) -> str:
        """Log one trial run (start times increase in call order) and end it in ``state``
        (``RUNNING``: left open); returns its run id. ``image_counts`` is written as the run's
        per-image counts artifact; ``epochs``: per-epoch curves, epoch 1 first; ``extra_tags``:
        further tags."""
        given = {keys.TAG_CONFIG: config,
                 keys.TAG_REPEAT: None if repeat is None else str(repeat),
                 keys.TAG_COMPONENTS: None if components is None else json.dumps(dict(components))}
        tags = run_tags(self.study, keys.ROLE_TRIAL, task=self.task, objective=self.objective,
                        direction=self.direction, seed=seed, parent_id=self.parent_id,
                        trial=trial, extra={k: v for k, v in given.items() if v is not None})
        tags.update(searched_tags(searched or {}))
        tags.update(extra_tags or {})
        run = self.client.create_run(self.experiment, start_time=self._tick(), tags={},
                                     run_name=keys.trial_run_name(trial))
        uri = run.info.artifact_uri
        folder = Path(uri.removeprefix("file://")) if uri.startswith("file://") else None
        log = RunLog(self.client, run.info.run_id, folder)
        log.set_tags(tags)
        log.log_params({k: str(v) for k, v in (params or {}).items()})
        for epoch, record in enumerate(epochs, start=1):  # epochs count from 1, as trained
            log.log_epoch(epoch, record)
        log.log_final(dict(metrics))
        if image_counts is not None:
            log.log_bytes(image_counts.to_npz(), keys.IMAGE_COUNTS_ARTIFACT)
        if state != "RUNNING":
            log.end(state, reason)
        return log.run_id
