"""Studies from Python: :func:`run_study` and the :class:`Study` it returns (the notebook
face of ``ablate study run`` / ``study show``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ablate.errors import AblateError
from ablate.spec import StudySpec, objects
from ablate.stores import Stores, resolve_stores

if TYPE_CHECKING:
    import optuna
    import pandas as pd
    from optuna.trial import FrozenTrial

    from ablate.reporting.api import Report


@dataclass(frozen=True)
class Best:
    """A study's best configuration, by the rule every part of ablate uses
    (:mod:`ablate.selection`): the highest (or lowest) mean objective over its repeats."""

    configuration: str  # its label: "trial-7", "baseline", "+hflip", ...
    values: dict[str, Any]  # the searched values (empty for a fixed design)
    mean_objective: float
    runs: int  # repeats counted
    run_id: str | None  # the MLflow run that represents it (the median repeat)


class Study:
    """A study in its stores: what it holds so far, its trials and its report.

    Args:
        name: The study's name (its spec's ``name``).
        stores: Where it is kept.

    Example:
        >>> study = ablate.run_study("studies/quickstart.yaml", store="ablate_store")
        >>> study.best.mean_objective
        0.4275
        >>> study.trials().head()
    """

    def __init__(self, name: str, stores: Stores):
        self.name = name
        self.stores = stores

    def __repr__(self) -> str:
        return f"Study({self.name!r}, store={self.stores.folder})"

    def _optuna(self) -> optuna.Study:
        from ablate.study.tables import load_study

        return load_study(self.stores, self.name)

    @property
    def best(self) -> Best | None:
        """The best configuration so far (None before any trial completed, or for a
        multi-objective study: see :meth:`trials`)."""
        from ablate.study.storage import RUN_ID_ATTR
        from ablate.study.tables import best_configuration

        best = best_configuration(self._optuna())
        if best is None:
            return None
        trial: FrozenTrial = best.trial
        values = {k: v for k, v in trial.params.items() if k != "config"}
        return Best(best.config, values, best.mean, best.trials,
                    trial.user_attrs.get(RUN_ID_ATTR))

    def trials(self) -> pd.DataFrame:
        """One row per trial: number, state, objective value(s), configuration, reason (as
        ``ablate study show`` prints it)."""
        from ablate.study.tables import study_table

        return study_table(self.stores, self.name)

    def report(self, **options: Any) -> Report:
        """The study's report (options as :func:`ablate.report` takes them)."""
        from ablate.reporting.api import Report

        return Report.read(self.name, self.stores, **options)


def run_study(
    spec: StudySpec | str | Path,
    *,
    store: str | Path | None = None,
    storage: str | None = None,
    tracking_uri: str | None = None,
    n_trials: int | None = None,
    workers: int = 1,
    progress: bool = True,
) -> Study:
    """Run a study's trials, creating it first (or joining the study its spec created), as
    ``ablate study run`` does; returns the :class:`Study`.

    Args:
        spec: A spec (:func:`ablate.load_spec`), a spec file, or the name of a study in the
            stores.
        store: The folder of the embedded stores (default ``./ablate_store``, or
            ``ABLATE_STORE``).
        storage: An Optuna storage URL instead (e.g. PostgreSQL).
        tracking_uri: An MLflow tracking URI instead (e.g. a tracking server).
        n_trials: Run this many more trials (default: until the study's budget is done).
        workers: Worker processes on this machine. A model class defined in the notebook
            itself trains in this process only (``workers=1``).
        progress: Progress bars (a notebook's widgets in Jupyter).

    Returns:
        The study, to read its best configuration, trials and report.

    Example:
        >>> spec = ablate.load_spec("studies/quickstart.yaml", overrides={"trials": 4})
        >>> study = ablate.run_study(spec, store="/tmp/store")
        >>> study.report()
    """
    from ablate.study.create import prepare
    from ablate.study.runner import run_study as run
    from ablate.study.workers import run_workers

    stores = resolve_stores(store, storage, tracking_uri)
    if workers < 1:
        raise AblateError(f"workers={workers}: give a number of worker processes >= 1")
    if isinstance(spec, StudySpec) and workers > 1:
        local = [path for path in _custom_paths(spec) if objects.in_this_process_only(path)]
        if local:
            raise AblateError(f"model.custom: {local[0]} is defined in this notebook, so only "
                              "this process can train it: use workers=1, or move the class "
                              "into a module the workers can import")
    if workers > 1:
        name = prepare(spec if isinstance(spec, StudySpec) else str(spec), stores).name
        code = run_workers(name, stores, workers, n_trials=n_trials)
        if code != 0:
            raise AblateError(f"study '{name}': a worker ended with exit code {code} (see "
                              f"{stores.folder}/logs/{name}.log)")
        return Study(name, stores)
    target = spec if isinstance(spec, StudySpec) else str(spec)
    with _bars(progress) as (mode, echo, after_trial):
        study = run(target, stores, n_trials, progress=mode, echo=echo,
                    after_trial=after_trial)
    return Study(study.study_name, stores)


def _custom_paths(spec: StudySpec) -> set[str]:
    """Every ``model.custom`` a trial of ``spec`` may build."""
    paths = {spec.resolve(values).model.custom for _, values in spec.model_variants()}
    return {path for path in paths if path is not None}


class _bars:  # noqa: N801 - used as a context manager, named like one
    """Progress for :func:`run_study`: a bar over trials and one over each trial's epochs
    (widgets in a notebook), the trial lines above them."""

    def __init__(self, progress: bool):
        self.progress = progress
        self.bar: Any = None

    def __enter__(self) -> tuple[Any, Any, Any]:
        if not self.progress:
            return False, lambda line: None, None
        from tqdm.auto import tqdm

        self.bar = tqdm(desc="trials", unit="trial", dynamic_ncols=True)

        def after_trial(study: Any, trial: Any) -> None:
            self.bar.update(1)

        return "bar", self.bar.write, after_trial

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
