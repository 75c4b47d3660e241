"""Creating a study: create the Optuna study (spec and queue in one transaction) and the
MLflow parent run, or join the study a spec already created."""

from __future__ import annotations

from pathlib import Path

import optuna

from ablate.designs import baseline_label
from ablate.errors import AblateError
from ablate.runs.preflight import check_sources, check_spec, preflight
from ablate.spec import StudySpec, load_spec
from ablate.stores import Stores, redact
from ablate.study import rdb
from ablate.study.queue import as_queued, design_entries
from ablate.study.storage import (
    SPEC_ATTR,
    CreationLock,
    check_environment,
    load_stored_spec,
    open_storage,
    study_names,
)
from ablate.testing.faults import fault_point
from ablate.tracking import Tracker, names, probe_tracking_server

__all__ = ["SEARCH_ATTR", "check_spec", "create_study", "join_or_create", "preflight", "prepare",
           "resolve_target"]

# Optuna study user attribute: the whole search space, {path: {type, low, high, log, ...}}
SEARCH_ATTR = "ablate_search_space"
METRIC_NAMES_ATTR = "study:metric_names"  # Optuna's own key (optuna.study.study)


def _create(storage: optuna.storages.RDBStorage, spec: StudySpec, replace: bool) -> None:
    """The Optuna study, its stored spec and its whole fixed-design queue: one transaction."""
    rdb.create_study(storage, spec.name, spec.directions,
                     {SPEC_ATTR: spec.written(), SEARCH_ATTR: spec.search_space()},
                     as_queued(design_entries(spec)), replace=replace,
                     # the objectives' names, as Study.set_metric_names stores them (shown by
                     # optuna-dashboard)
                     system_attrs={METRIC_NAMES_ATTR: [o.metric for o in spec.objectives]
                                   or [spec.objective.metric]})
    fault_point("after_study_commit")


def ensure_parent_run(tracker: Tracker, spec: StudySpec) -> str:
    """The study's MLflow parent run, created once (callers hold the study's CreationLock)."""
    return tracker.parent_run(spec, baseline_label(spec.design))


def create_study(
    spec: StudySpec, stores: Stores, replace: bool = False, checked: bool = False
) -> None:
    """``ablate study create``: the Optuna study (spec and queue stored with it) and the MLflow
    parent run. Refuses an existing name unless ``replace``."""
    if not checked:
        check_environment()
        check_spec(spec)
        check_sources(spec, stores)
    # Unreachable servers fail here, before anything is written.
    probe_tracking_server(stores.tracking_uri)
    storage = open_storage(stores, write=True)
    tracker = Tracker(stores)
    with CreationLock(storage, stores, spec.name).held():
        exists = spec.name in optuna.get_all_study_names(storage)
        if exists and not replace:
            raise AblateError(
                f"study '{spec.name}' already exists in {redact(stores.storage)}; continue it with "
                f"`ablate study run {spec.name}`, or pass --replace to start it over"
            )
        if exists:
            tracker.retire_experiment(spec.name)
        _create(storage, spec, replace=exists)
        ensure_parent_run(tracker, spec)


def join_or_create(spec: StudySpec, stores: Stores) -> StudySpec:
    """``ablate study run SPEC``: create the study, or join the one created from this spec
    (any number of processes may do this at once); refuses a study of that name created
    from another spec, naming the keys that differ."""
    probe_tracking_server(stores.tracking_uri)
    storage = open_storage(stores, write=True)
    tracker = Tracker(stores)
    with CreationLock(storage, stores, spec.name).held():
        if spec.name in optuna.get_all_study_names(storage):
            return _joined(spec, stores)
        _create(storage, spec, replace=False)
        ensure_parent_run(tracker, spec)
    return spec


def _joined(spec: StudySpec, stores: Stores) -> StudySpec:
    stored = load_stored_spec(stores, spec.name)
    differ = spec_differences(stored, spec)
    if differ:
        shown = ", ".join(differ[:6]) + (f" and {len(differ) - 6} more" if len(differ) > 6 else "")
        raise AblateError(
            f"{spec.source}: study '{spec.name}' already exists with a different spec "
            f"({shown} differ); run it by name (`ablate study run {spec.name}`), or use "
            f"`ablate study create {spec.source} --replace` to start over"
        )
    return stored


def spec_differences(a: StudySpec, b: StudySpec) -> list[str]:
    """Dotted keys whose values differ between two specs."""
    flat_a = names.flatten(a.model_dump(mode="json"))
    flat_b = names.flatten(b.model_dump(mode="json"))
    return sorted(k for k in flat_a.keys() | flat_b.keys() if flat_a.get(k) != flat_b.get(k))


def is_spec_file(target: str) -> bool:
    """Whether a study target names a spec file (else it is a study name)."""
    path = Path(target)
    return path.suffix in (".yaml", ".yml") or path.is_file()


def prepare(
    target: str | StudySpec, stores: Stores, overrides: list[str] | None = None,
    profile: str | None = None,
) -> StudySpec:
    """A spec file, a spec already loaded or a study name -> the checked spec of an existing
    study. A spec is checked before any store is touched, then its study is created or
    joined."""
    check_environment()
    if isinstance(target, StudySpec) or is_spec_file(target):
        spec = target if isinstance(target, StudySpec) else load_spec(Path(target), overrides,
                                                                      profile)
        check_spec(spec)
        check_sources(spec, stores)
        return join_or_create(spec, stores)
    spec = load_stored_spec(stores, target, overrides)
    check_spec(spec)
    check_sources(spec, stores)
    return spec


def resolve_target(
    target: str, stores: Stores, overrides: list[str] | None, profile: str | None = None
) -> tuple[StudySpec, bool]:
    """A spec file or a study name -> (spec, whether the study must be created); nothing is
    written (``prepare`` creates or joins)."""
    if is_spec_file(target):
        spec = load_spec(Path(target), overrides, profile)
        if spec.name not in study_names(stores):
            return spec, True
        return _joined(spec, stores), False
    return load_stored_spec(stores, target, overrides), False
