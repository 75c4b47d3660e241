"""Studies: create an Optuna study from a spec, and run its trials through :func:`train`."""

from __future__ import annotations

import logging
import math
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from ablate.errors import AblateError, SpecError
from ablate.search import build_pruner, build_sampler, grid_size, suggest
from ablate.spec import RunConfig, StudySpec, load_spec, spec_from_dict
from ablate.stores import Stores, ensure_local_dirs, local_sqlite_missing
from ablate.tracking import RunLog, Tracker
from ablate.train import TrainingError, train

SPEC_ATTR = "ablate_spec"
RUN_ID_ATTR = "mlflow_run_id"
REASON_ATTR = "fail_reason"

Printer = Callable[[str], None]


class TrialFailed(Exception):
    """One trial failed; the study goes on (Optuna records the trial as FAIL)."""


def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna").setLevel(logging.WARNING)


def storage(stores: Stores) -> optuna.storages.BaseStorage:
    """The Optuna storage; an unreachable server is a one-line error."""
    _quiet_optuna()
    kwargs: dict[str, Any] = {}
    if stores.storage.startswith("sqlite"):
        # Wait for a busy SQLite file instead of failing at once.
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    try:
        return optuna.storages.RDBStorage(stores.storage, **kwargs)
    except Exception as err:  # noqa: BLE001 - driver errors differ per database
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise AblateError(f"Optuna storage {stores.storage} cannot be reached: {first}") from None


def preflight(config: RunConfig) -> None:
    """Check data and model before anything is written: bad input fails here, not mid-study."""
    from ablate.data import load_data, make_loaders
    from ablate.models import build_model

    data = load_data(config.data)
    loaders = make_loaders(data, config, config.seed)
    images, _ = next(iter(loaders["val"]))
    out = 1 if config.data.task == "binary" else config.data.num_classes or 2
    model = build_model(config.model, data.in_channels, out).eval()
    try:
        with torch.no_grad():
            model(images[:1])
    except Exception as err:  # noqa: BLE001 - smp raises several kinds for a bad input size
        raise SpecError(
            f"model: {config.model.arch}/{config.model.encoder} cannot run on input "
            f"{tuple(images.shape[1:])} (data.size): {str(err).splitlines()[0][:160]}"
        ) from None


def study_exists(stores: Stores, name: str) -> bool:
    if local_sqlite_missing(stores.storage):
        return False
    return name in optuna.get_all_study_names(storage(stores))


def create_study(
    spec: StudySpec, stores: Stores, replace: bool = False, checked: bool = False
) -> optuna.Study:
    """Create the Optuna study and the MLflow parent run; the spec is stored with the study."""
    if not checked:
        preflight(spec.resolve({}))
    if study_exists(stores, spec.name):
        if not replace:
            raise AblateError(
                f"study '{spec.name}' already exists in {stores.storage}; continue it with "
                f"`ablate study run {spec.name}`, or pass --replace to start it over"
            )
        optuna.delete_study(study_name=spec.name, storage=storage(stores))
    ensure_local_dirs(stores)
    tracker = Tracker(stores)
    tracker.experiment_id(spec.name)
    study = optuna.create_study(
        study_name=spec.name,
        storage=storage(stores),
        direction=spec.objective.direction,
        sampler=build_sampler(spec.sampler, spec.search, spec.seed),
        pruner=build_pruner(spec.pruner),
    )
    study.set_user_attr(SPEC_ATTR, spec.model_dump(mode="json"))
    tracker.parent_run(spec)
    return study


def load_stored_spec(stores: Stores, name: str, overrides: list[str] | None = None) -> StudySpec:
    """The spec stored with study ``name`` (with ``--set`` overrides applied)."""
    names = [] if local_sqlite_missing(stores.storage) else optuna.get_all_study_names(
        storage(stores)
    )
    if name not in names:
        known = ", ".join(names[:8]) or "none yet"
        raise AblateError(
            f"no study named '{name}' in {stores.storage} (studies: {known}); "
            f"create it with `ablate study create SPEC.yaml`"
        )
    summary = optuna.load_study(study_name=name, storage=storage(stores))
    raw = summary.user_attrs.get(SPEC_ATTR)
    if raw is None:
        raise AblateError(f"study '{name}' was not created by ablate (no stored spec)")
    return spec_from_dict(raw, overrides, source=f"study '{name}'")


def resolve_target(
    target: str, stores: Stores, overrides: list[str] | None
) -> tuple[StudySpec, bool]:
    """A spec file or a study name -> (spec, whether the study must be created)."""
    path = Path(target)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        spec = load_spec(path, overrides)
        if not study_exists(stores, spec.name):
            return spec, True
        stored = load_stored_spec(stores, spec.name)
        if stored.model_dump(mode="json") != spec.model_dump(mode="json"):
            raise AblateError(
                f"{path}: study '{spec.name}' already exists with a different spec; run it by "
                f"name (`ablate study run {spec.name}`), or use `ablate study create "
                f"{path} --replace` to start over"
            )
        return stored, False
    return load_stored_spec(stores, target, overrides), False


def _finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


class _Objective:
    """Runs one trial: sample, resolve, train, track."""

    def __init__(self, spec: StudySpec, tracker: Tracker, parent_id: str, progress: bool):
        self.spec = spec
        self.tracker = tracker
        self.parent_id = parent_id
        self.progress = progress

    def __call__(self, trial: optuna.Trial) -> float:
        values = suggest(trial, self.spec.search)
        config = self.spec.resolve(values)
        run = self.tracker.start_run(
            self.spec.name, config, role="trial", name=f"trial-{trial.number:03d}",
            parent_id=self.parent_id, trial=trial.number, values=values,
        )
        trial.set_user_attr(RUN_ID_ATTR, run.run_id)
        key = config.objective.metric

        def on_epoch(epoch: int, record: dict[str, float]) -> None:
            run.log_epoch(epoch, record)
            value = record[key]
            if math.isfinite(value):
                trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch} ({key}={value:.4f})")

        try:
            with tempfile.TemporaryDirectory(prefix="ablate-") as tmp:
                result = train(
                    config, on_epoch=on_epoch, artifact_dir=Path(tmp),
                    progress=self.progress, description=f"trial {trial.number}",
                )
                run.log_result(result)
                run.log_artifacts(Path(tmp))
        except optuna.TrialPruned as err:
            run.end("PRUNED", str(err))
            raise
        except (AblateError, KeyboardInterrupt) as err:
            run.end("FAIL", str(err) or "interrupted")
            raise
        except Exception as err:  # noqa: BLE001 - one trial's failure must not end the study
            reason = err.reason if isinstance(err, TrainingError) else (
                f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
            )
            _record_failure(run, trial, reason)
            raise TrialFailed(reason) from err
        finally:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        if not math.isfinite(result.objective):
            reason = f"objective {key} is not finite ({result.objective})"
            _record_failure(run, trial, reason)
            raise TrialFailed(reason)
        run.end("COMPLETE")
        return result.objective


def _record_failure(run: RunLog, trial: optuna.Trial, reason: str) -> None:
    run.log_text(traceback.format_exc(), "traceback.txt")
    run.end("FAIL", reason)
    trial.set_user_attr(REASON_ATTR, reason)


def run_study(
    target: str,
    stores: Stores,
    n_trials: int | None = None,
    timeout: float | None = None,
    overrides: list[str] | None = None,
    progress: bool = True,
    echo: Printer = print,
) -> optuna.Study:
    """Run trials of a study (given by spec file or name) until its trial budget is met.

    Without ``n_trials`` the study runs until ``spec.trials`` trials have completed or been
    pruned (so a second call after an interruption finishes the budget); with it, it runs
    ``n_trials`` more. It stops early after ``spec.max_failures`` failed trials.
    """
    spec, create = resolve_target(target, stores, overrides)
    preflight(spec.resolve({}))
    if create:
        create_study(spec, stores, checked=True)
    tracker = Tracker(stores)
    study = optuna.load_study(
        study_name=spec.name,
        storage=storage(stores),
        sampler=build_sampler(spec.sampler, spec.search, spec.seed),
        pruner=build_pruner(spec.pruner),
    )
    budget = spec.trials
    if spec.sampler.name == "grid":
        budget = min(budget, grid_size(spec.search))
    if n_trials is None:
        n_trials = max(0, budget - _finished(study))
        if n_trials == 0:
            echo(f"study '{spec.name}' already has {budget} finished trials; nothing to run "
                 f"(pass -n N to run N more)")
            return study
    parent_id = tracker.parent_run(spec)
    echo(f"study '{spec.name}': running {n_trials} trial(s)\n{stores.describe()}")
    failures: list[int] = []

    def after_trial(study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
        echo(_trial_line(study, frozen, spec))
        if frozen.state == TrialState.FAIL:
            failures.append(frozen.number)
            if len(failures) >= spec.max_failures:
                echo(f"stopping: {len(failures)} trials failed (max_failures="
                     f"{spec.max_failures}); see `ablate study show {spec.name}` for reasons")
                study.stop()

    objective = _Objective(spec, tracker, parent_id, progress)
    try:
        study.optimize(
            objective, n_trials=n_trials, timeout=timeout, catch=(TrialFailed,),
            callbacks=[after_trial], gc_after_trial=True,
        )
    finally:
        tracker.end_parent(parent_id)
    return study


def _trial_line(study: optuna.Study, trial: optuna.trial.FrozenTrial, spec: StudySpec) -> str:
    metric = spec.objective.metric
    if trial.state == TrialState.COMPLETE:
        text = f"trial {trial.number}: COMPLETE {metric}={trial.value:.4f}"
        best = _best(study)
        if best is not None:
            text += f" (best {best.value:.4f}, trial {best.number})"
        return text
    reason = trial.user_attrs.get(REASON_ATTR, "")
    return f"trial {trial.number}: {trial.state.name}" + (f" ({reason})" if reason else "")


def _best(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    try:
        return study.best_trial
    except ValueError:
        return None


def study_table(stores: Stores, name: str) -> Any:
    """A DataFrame of the study's trials: number, state, objective, searched values, reason."""
    import pandas as pd

    spec = load_stored_spec(stores, name)
    study = optuna.load_study(study_name=name, storage=storage(stores))
    rows = []
    for t in study.get_trials(deepcopy=False):
        row: dict[str, Any] = {"trial": t.number, "state": t.state.name,
                               spec.objective.metric: t.value}
        row.update(t.params)
        if t.state == TrialState.PRUNED and t.last_step is not None:
            row["reason"] = f"pruned at epoch {t.last_step}"
        else:
            row["reason"] = t.user_attrs.get(REASON_ATTR, "")
        rows.append(row)
    return pd.DataFrame(rows)


def list_studies(stores: Stores) -> Any:
    """A DataFrame of every study in the storage."""
    import pandas as pd

    if local_sqlite_missing(stores.storage):
        return pd.DataFrame(columns=["study", "trials", "complete", "best", "direction"])
    rows = []
    for summary in optuna.get_all_study_summaries(storage(stores), include_best_trial=True):
        study = optuna.load_study(study_name=summary.study_name, storage=storage(stores))
        complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        rows.append({
            "study": summary.study_name,
            "trials": summary.n_trials,
            "complete": complete,
            "best": summary.best_trial.value if summary.best_trial else None,
            "direction": summary.direction.name.lower(),
            "started": summary.datetime_start,
        })
    return pd.DataFrame(rows)
