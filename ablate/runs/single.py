"""One configuration trained and tracked outside any study's search: ``ablate train`` and
:func:`ablate.train`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ablate.runs.applied import device_applied, given_paths, ignored_tags, warning_lines
from ablate.runs.lifecycle import run_outcome
from ablate.runs.preflight import check_sources, preflight
from ablate.runs.tracked import train_tracked
from ablate.spec import StudySpec, load
from ablate.stores import Stores, StoreWatch, resolve_stores
from ablate.tracking import Tracker, localize
from ablate.tracking import names as keys
from ablate.training.fit import Progress
from ablate.training.models import check_models
from ablate.training.result import TrainResult


def train_spec(spec: StudySpec, stores: Stores, progress: Progress = True,
               echo: Callable[[str], None] = print) -> TrainResult:
    """Train ``spec``'s own configuration once (no sampling, no design), tracked as a run of
    role ``train`` in the study's experiment; every check runs before anything is written.
    The result carries the run's id (``run_id``)."""
    config = spec.resolve({})
    check_models(spec)
    preflight(config, spec.source)
    check_sources(spec, stores)
    tracker = Tracker(stores)
    config, ignored = device_applied(localize(tracker, config))
    for line in warning_lines(ignored, given_paths(spec)):
        echo(line)
    run = tracker.start_run(spec.name, config, role=keys.ROLE_TRAIN, name=f"{spec.name}-train",
                            source=spec.path or spec.source, extra_tags=ignored_tags(ignored))
    run.fence = StoreWatch(stores.tracking_uri)
    with run_outcome(run):
        result = train_tracked(config, run, progress=progress, spec_path=spec.path)
    result.run_id = run.run_id
    return result


def train(
    spec: StudySpec | str | Path | Mapping[str, Any],
    *,
    store: str | Path | None = None,
    tracking_uri: str | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train a spec's configuration once, tracked in MLflow like ``ablate train``.

    Args:
        spec: A spec (:func:`ablate.load_spec`), a spec file, or a spec as a dict.
        store: The folder of the embedded stores (default ``./ablate_store``).
        tracking_uri: An MLflow tracking URI instead of the store's.
        progress: A progress bar (a notebook's widget in Jupyter).

    Returns:
        The run's numbers: ``objective``, ``metrics[split][name]``, ``gflops``, ``params``,
        the epochs' ``history`` and its MLflow ``run_id``.

    Example:
        >>> result = ablate.train("studies/quickstart.yaml", store="/tmp/store")
        >>> result.metrics["val"]["iou"], result.run_id
    """
    if not isinstance(spec, StudySpec):
        spec = load(spec)
    stores = resolve_stores(store, None, tracking_uri)
    return train_spec(spec, stores, "bar" if progress else False)
