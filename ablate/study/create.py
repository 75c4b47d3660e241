"""Creating a study: check the input, create the Optuna study and the MLflow parent run."""

from __future__ import annotations

import warnings
from pathlib import Path

import optuna
import torch

from ablate.design import baseline_label, configurations
from ablate.errors import AblateError, SpecError
from ablate.search import build_pruner, build_sampler
from ablate.spec import RunConfig, StudySpec, load_spec
from ablate.stores import Stores, ensure_local_dirs, redact
from ablate.study.storage import (
    CONFIG_PARAM,
    REPEAT_ATTR,
    SPEC_ATTR,
    load_stored_spec,
    open_storage,
    study_names,
)
from ablate.tracking import Tracker, probe_tracking_server


def preflight(config: RunConfig) -> None:
    """Check data and model before anything is written: bad input fails here, not mid-study."""
    from ablate.data import load_data, make_loaders
    from ablate.models import build_model

    data = load_data(config.data)
    loaders = make_loaders(data, config, config.seed)
    images, _ = next(iter(loaders["val"]))
    # init_from may name an MLflow run: it is fetched (and checked) when a trial starts.
    model_spec = config.model.model_copy(update={"init_from": None})
    model = build_model(model_spec, data.in_channels, config.data.out_channels).eval()
    try:
        with torch.no_grad():
            model(images[:1])
    except Exception as err:  # noqa: BLE001 - smp raises several kinds for a bad input size
        raise SpecError(
            f"model: {config.model.arch}/{config.model.encoder} cannot run on input "
            f"{tuple(images.shape[1:])} (data.size): {str(err).splitlines()[0][:160]}"
        ) from None


def check_spec(spec: StudySpec) -> None:
    """Preflight the base configuration and, for fixed designs, every configuration's model."""
    from ablate.models import check_models

    check_models(spec)
    preflight(spec.resolve({}))
    for config in configurations(spec.design):
        if any(path.startswith(("model.", "data.")) for path in config.values):
            preflight(spec.resolve(config.values))


def create_study(
    spec: StudySpec, stores: Stores, replace: bool = False, checked: bool = False
) -> optuna.Study:
    """Create the Optuna study and the MLflow parent run; the spec is stored with the study.

    A fixed design's configurations (x repeats) are enqueued now, so that any number of
    workers take each one exactly once.
    """
    if not checked:
        check_spec(spec)
    # Unreachable servers fail here, before anything is written.
    probe_tracking_server(stores.tracking_uri)
    storage = open_storage(stores, write=True)
    tracker = Tracker(stores)
    if spec.name in study_names(stores):
        if not replace:
            raise AblateError(
                f"study '{spec.name}' already exists in {redact(stores.storage)}; continue it with "
                f"`ablate study run {spec.name}`, or pass --replace to start it over"
            )
        optuna.delete_study(study_name=spec.name, storage=storage)
        tracker.retire_experiment(spec.name)
    ensure_local_dirs(stores)
    study = optuna.create_study(
        study_name=spec.name,
        storage=storage,
        directions=spec.directions,
        sampler=build_sampler(spec.sampler, spec.search, spec.seed),
        pruner=build_pruner(spec.pruner),
    )
    study.set_user_attr(SPEC_ATTR, spec.model_dump(mode="json"))
    with warnings.catch_warnings():  # objective names for optuna-dashboard (experimental API)
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([o.metric for o in spec.objectives] or [spec.objective.metric])
    for config in configurations(spec.design):
        for repeat in range(spec.design.repeats):
            study.enqueue_trial({CONFIG_PARAM: config.label}, user_attrs={REPEAT_ATTR: repeat})
    tracker.parent_run(spec, baseline_label(spec.design))
    return study


def is_spec_file(target: str) -> bool:
    """Whether a study target names a spec file (else it is a study name)."""
    path = Path(target)
    return path.suffix in (".yaml", ".yml") or path.is_file()


def resolve_target(
    target: str, stores: Stores, overrides: list[str] | None, profile: str | None = None
) -> tuple[StudySpec, bool]:
    """A spec file or a study name -> (spec, whether the study must be created)."""
    path = Path(target)
    if is_spec_file(target):
        spec = load_spec(path, overrides, profile)
        if spec.name not in study_names(stores):
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
