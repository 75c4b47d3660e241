"""Preflight: everything a trial would fail on, checked before any store is touched.

Spec loading already validated types and values; here come the checks that need torch, the
data or a store: the environment, the device, the data files, every model a trial may build
(each searched choice, each design configuration) run once on the meta device, and the
weights a model starts from.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ablate.designs import configurations
from ablate.errors import AblateError, SpecError
from ablate.spec import RunConfig, StudySpec
from ablate.stores import Stores, local_sqlite_missing
from ablate.training.devices import resolve_device, worker_gpu


def check_device(name: str, where: str = "device") -> None:
    """A device string torch knows and that exists on this machine (``auto`` always does;
    in a ``study run --gpus`` worker any CUDA device is that worker's GPU)."""
    if name == "auto":
        resolve_device(name)  # a GPU meant for this process (CUDA_VISIBLE_DEVICES) must be there
        return
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise SpecError(
            f"{where}: unknown device '{name}'; use auto, cpu, cuda or cuda:N"
        ) from None
    if device.type == "cuda":
        if worker_gpu() is not None:
            return  # a --gpus worker trains on its one GPU (checked by the launcher)
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise SpecError(f"{where}: '{name}' but no CUDA GPU is visible here; use "
                            "device: auto (CUDA when present) or cpu")
        if device.index is not None and device.index >= count:
            raise SpecError(f"{where}: '{name}' but only {count} CUDA GPU(s) are visible here "
                            f"(cuda:0..cuda:{count - 1})")
        return
    try:
        torch.empty(1, device=device)
    except Exception as err:  # noqa: BLE001 - each backend fails its own way
        first = str(err).strip().splitlines()[0][:120] if str(err).strip() else ""
        raise SpecError(f"{where}: device '{name}' cannot be used here ({first}); use auto, "
                        "cpu or cuda") from None


def preflight(config: RunConfig, source: str | None = None) -> tuple[int, int, int]:
    """Check one run's device, data and model before anything is written; returns the
    model's input shape (C, H, W). ``source``: the spec file, for messages."""
    from ablate.data import load_data, make_loaders
    from ablate.training.models import build_model

    check_device(config.device, f"{source}: device" if source else "device")
    data = load_data(config.data)
    loaders = make_loaders(data, config, config.seed)
    images, _ = next(iter(loaders["val"]))
    # An init_from run id is checked by check_sources (it needs the tracking store).
    init = config.model.init_from
    if init and not Path(init).is_file():
        init = None
    model_spec = config.model.model_copy(update={"init_from": init})
    model = build_model(model_spec, data.in_channels, config.data.out_channels).eval()
    try:
        with torch.no_grad():
            model(images[:1])
    except Exception as err:  # noqa: BLE001 - smp raises several kinds for a bad input size
        raise SpecError(
            f"model: {config.model.arch}/{config.model.encoder} cannot run on input "
            f"{tuple(images.shape[1:])} (data.size): {str(err).splitlines()[0][:160]}"
        ) from None
    return int(images.shape[1]), int(images.shape[2]), int(images.shape[3])


def check_spec(spec: StudySpec) -> None:
    """Preflight the base configuration, every model a trial may build (each searched model
    value, each design configuration) and every design configuration that changes the data."""
    from ablate.training.models import check_forward, check_models

    check_models(spec)
    shape = preflight(spec.resolve({}), spec.source)
    for where, values in spec.model_variants():
        if not where.startswith("search."):
            continue  # the spec's own model is built above, a design's below
        config = spec.resolve(values)
        try:
            check_forward(config.model, shape[0], config.data.out_channels, shape)
        except SpecError as err:
            raise SpecError(f"{spec.source}: {where}: {err}") from None
    for design in configurations(spec.design):
        if any(path.startswith(("model.", "data.")) for path in design.values):
            preflight(spec.resolve(design.values), spec.source)


def check_sources(spec: StudySpec, stores: Stores) -> None:
    """Each ``model.init_from`` that names an MLflow run: the run exists and logged weights of
    this model (read from the tracking store; nothing is written)."""
    from ablate.tracking import Tracker, localize

    sources = {spec.resolve(values).model.init_from for _, values in spec.model_variants()}
    for source in sorted(s for s in sources if s):
        if Path(source).is_file():
            continue
        if Path(source).suffix in (".pt", ".pth", ".ckpt", ".bin") or "/" in source:
            raise SpecError(f"{spec.source}: model.init_from: checkpoint file {source} not "
                            "found; give an existing file or an MLflow run id")
        if local_sqlite_missing(stores.tracking_uri):
            raise SpecError(f"{spec.source}: model.init_from: no MLflow run '{source}' (the "
                            "tracking store is empty); give a run id from this store or a "
                            "checkpoint file")
        config = spec.resolve({}).model_copy(
            update={"model": spec.model.model_copy(update={"init_from": source})})
        try:
            localized = localize(Tracker(stores, write=False), config)
            preflight(localized)
        except AblateError as err:
            raise SpecError(f"{spec.source}: {err}") from None
        except Exception as err:  # noqa: BLE001 - MLflow raises its own kinds for a bad id
            first = str(err).strip().splitlines()[0][:160] if str(err).strip() else ""
            raise SpecError(f"{spec.source}: model.init_from: no usable MLflow run '{source}' "
                            f"({first}); give a run id from this store or a checkpoint "
                            "file") from None
