"""Segmentation models: any segmentation-models-pytorch architecture + encoder, by name."""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ablate.errors import SpecError
from ablate.spec import ModelSpec, StudySpec, objects

# Set by ablate itself, never by the spec's pass-through keys.
_RESERVED = {"encoder_name", "encoder_weights", "in_channels", "classes", "self"}


def _architectures() -> dict[str, type[nn.Module]]:
    import segmentation_models_pytorch as smp

    return {cls.__name__: cls for cls in smp.MODEL_ARCHITECTURES_MAPPING.values()}


def architecture(name: str) -> type[nn.Module]:
    """The smp model class named ``name`` (case-insensitive)."""
    archs = _architectures()
    by_lower = {k.lower(): v for k, v in archs.items()}
    if name.lower() not in by_lower:
        close = difflib.get_close_matches(name, list(archs), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise ValueError(f"unknown architecture '{name}'; {hint}valid: {', '.join(archs)}")
    return by_lower[name.lower()]


def check_model_names(arch: str, encoder: str, kwargs: dict[str, Any]) -> None:
    """Raise ValueError on an unknown arch, encoder or keyword."""
    import segmentation_models_pytorch as smp

    cls = architecture(arch)
    if not encoder.startswith("tu-"):
        names = smp.encoders.get_encoder_names()
        if encoder not in names:
            close = difflib.get_close_matches(encoder, names, n=3)
            suggest = close or ["resnet18", "resnet34", "efficientnet-b0", "mobilenet_v2", "mit_b0"]
            raise ValueError(f"unknown encoder '{encoder}'; e.g. {', '.join(suggest)}")
    accepted = [
        name
        for name, p in inspect.signature(cls.__init__).parameters.items()
        if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and name not in _RESERVED
    ]
    for key in kwargs:
        if key not in accepted:
            close = difflib.get_close_matches(key, accepted, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ValueError(
                f"unknown key '{key}' for {cls.__name__}{hint}; it accepts: {', '.join(accepted)}"
            )


def check_models(spec: StudySpec) -> None:
    """Every model a trial of ``spec`` may build names a known architecture, encoder and
    keywords; raises a one-line :class:`~ablate.errors.SpecError` naming the spec and key."""
    for where, values in spec.model_variants():
        model = spec.resolve(values).model if values else spec.model
        if model.custom is not None:
            continue
        try:
            check_model_names(model.arch, model.encoder, model.kwargs)
        except ValueError as err:
            raise SpecError(f"{spec.source}: {where}: {err}") from None


def custom_class(path: str) -> Callable[..., nn.Module]:
    """The class (or function) ``package.module:Name`` stands for: the object itself when a
    spec built in this process gave it, else imported: this runs the module's code (only use
    specs you trust); any failure is a one-line :class:`SpecError`."""
    given = objects.lookup(path)
    if given is not None:
        return given
    module_name, _, attr = path.partition(":")
    # Like `python -m`, look in the working directory too (the user's project).
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except (Exception, SystemExit) as err:  # noqa: BLE001 - the user's module may raise anything
        raise SpecError(
            f"model.custom: cannot import module '{module_name}': {_first_line(err)}; fix the "
            "module or model.custom"
        ) from None
    cls = getattr(module, attr, None)
    if cls is None and module_name == "__main__":
        raise SpecError(f"model.custom: '{path}' was defined in the process that created the "
                        "study (a notebook?), so only that process can train it; run the study "
                        "from there with workers=1, or move the class into a module")
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)) and not (
            callable(cls) and not isinstance(cls, type)):
        raise SpecError(f"model.custom: '{path}' is not a torch.nn.Module class or a function "
                        "that returns one")
    return cls


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    name = type(err).__name__
    return f"{name}: {text.splitlines()[0][:200]}" if text else name


def build_model(spec: ModelSpec, in_channels: int, classes: int) -> nn.Module:
    """A fresh model; weights come only from local files (nothing is downloaded)."""
    if spec.custom:
        cls = custom_class(spec.custom)
        try:
            model = cls(in_channels=in_channels, classes=classes, **spec.kwargs)
        except (Exception, SystemExit) as err:  # noqa: BLE001 - the user's class, any error
            raise SpecError(
                f"model.custom: {spec.custom}(in_channels={in_channels}, classes={classes}, "
                f"...) cannot be built: {_first_line(err)}"
            ) from None
        if not isinstance(model, nn.Module):
            raise SpecError(f"model.custom: {spec.custom}(...) returned a "
                            f"{type(model).__name__}, not a torch.nn.Module")
    else:
        model = _smp_model(spec, in_channels, classes)
    if spec.init_from:
        load_checkpoint(model, Path(spec.init_from))
    return model


def check_forward(spec: ModelSpec, in_channels: int, classes: int,
                  shape: tuple[int, int, int]) -> None:
    """Build the model of ``spec`` and run one batch-1 forward pass at ``shape`` (C, H, W),
    on the meta device (no memory, no compute) where the model allows it, else on the CPU.
    Raises :class:`SpecError` with the model's own first line."""
    spec = spec.model_copy(update={"init_from": None, "encoder_weights": None})
    for device in ("meta", "cpu"):
        try:
            with torch.device(device), torch.no_grad():
                build_model(spec, in_channels, classes).eval()(torch.zeros(1, *shape))
            return
        except (Exception, SystemExit) as err:  # noqa: BLE001 - models raise many kinds
            if device == "meta" and "meta" in str(err).lower():
                continue  # e.g. .item() while building: the meta device cannot do that
            if isinstance(err, SpecError):
                raise
            name = spec.custom or f"{spec.arch}/{spec.encoder}"
            raise SpecError(
                f"model: {name} cannot run on input {shape}: {_first_line(err)}"
            ) from None


def _smp_model(spec: ModelSpec, in_channels: int, classes: int) -> nn.Module:
    cls = architecture(spec.arch)
    try:
        model = cls(
            encoder_name=spec.encoder,
            encoder_weights=None,
            in_channels=in_channels,
            classes=classes,
            **spec.kwargs,
        )
    except (ValueError, TypeError, KeyError, AssertionError, RuntimeError) as err:
        raise SpecError(f"model: {cls.__name__}/{spec.encoder} cannot be built: {err}") from None
    if spec.encoder_weights:
        load_encoder_weights(model, Path(spec.encoder_weights))
    return model


def load_encoder_weights(model: nn.Module, path: Path) -> None:
    """Load a local encoder state dict into ``model.encoder`` (``weights_only=True``)."""
    state = read_state_dict(path, "model.encoder_weights")
    encoder = getattr(model, "encoder", model)
    loaded = load_matching(encoder, state)
    if loaded == 0:
        raise SpecError(
            f"model.encoder_weights: {path} has no weights for this encoder "
            f"(first keys: {', '.join(list(state)[:3])})"
        )


def load_checkpoint(model: nn.Module, path: Path) -> None:
    """Fine-tune from a whole-model checkpoint (``model.init_from``); mismatched layers
    (e.g. another number of classes) keep their fresh weights."""
    state = read_state_dict(path, "model.init_from")
    if load_matching(model, state) == 0:
        raise SpecError(f"model.init_from: {path} holds no weights of this model")


def read_state_dict(path: Path, key: str) -> dict[str, torch.Tensor]:
    """A state dict (names -> tensors) from a local file, loaded with ``weights_only=True``;
    anything else is a one-line :class:`SpecError` naming ``key``."""
    if not path.is_file():
        raise SpecError(f"{key}: file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same user error
        raise SpecError(f"{key}: cannot read {path}: {_first_line(err)}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not (isinstance(state, dict) and state
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items())):
        raise SpecError(
            f"{key}: {path} holds a {type(state).__name__}, not a state dict (parameter names "
            "-> tensors); save it with torch.save(model.state_dict(), path)"
        )
    return state


def load_matching(module: nn.Module, state: dict[str, torch.Tensor]) -> int:
    """Copy the tensors of ``state`` whose names and shapes fit ``module``; returns how many.

    A first convolution with more input channels than the weights (extra derived channels)
    is widened: the extra channels start from the mean of the existing filters.
    """
    own = module.state_dict()
    fitted = {}
    for name, value in state.items():
        target = own.get(name)
        if target is None:
            continue
        if value.shape == target.shape:
            fitted[name] = value
        elif (value.ndim == 4 and target.ndim == 4 and value.shape[0] == target.shape[0]
              and value.shape[2:] == target.shape[2:] and value.shape[1] < target.shape[1]):
            extra = value.mean(dim=1, keepdim=True).expand(-1, target.shape[1] - value.shape[1],
                                                            -1, -1)
            fitted[name] = torch.cat([value, extra], dim=1)
    module.load_state_dict(fitted, strict=False)
    return len(fitted)


def count_params(model: nn.Module) -> int:
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, input_shape: tuple[int, int, int]) -> float:
    """FLOPs of one forward pass at ``(C, H, W)``, batch 1, by fvcore.

    fvcore counts one multiply-add as one FLOP (so the figure equals MACs).
    """
    import logging
    import warnings

    with warnings.catch_warnings():  # fvcore.nn scripts its focal loss at import (deprecated)
        warnings.simplefilter("ignore", FutureWarning)
        from fvcore.nn import FlopCountAnalysis

    logging.getLogger("fvcore").setLevel(logging.ERROR)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            analysis = FlopCountAnalysis(model, torch.zeros(1, *input_shape, device=device))
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            total = float(analysis.total())
    finally:
        model.train(was_training)
    return total


# FLOPs depend on a model's shape, not its weights: counted once per shape key per process.
_FLOPS: dict[tuple, float] = {}
# A dense network's forward time does not depend on its weights either: timed once per shape
# key, device, evaluation path (memory format, autocast dtype, flip TTA) and repeat count per
# process (repeated timings of the same computation would differ by noise only).
_LATENCY: dict[tuple, tuple[float, float]] = {}


def shape_key(spec: ModelSpec, input_shape: tuple[int, int, int], classes: int) -> tuple:
    """What a model's compute depends on: the model section without its weight sources, the
    input (C, H, W) and the output channels."""
    return (spec.model_dump_json(exclude={"encoder_weights", "init_from"}),
            tuple(int(v) for v in input_shape), int(classes))


def model_flops(spec: ModelSpec, model: nn.Module, input_shape: tuple[int, int, int],
                classes: int) -> float:
    """:func:`count_flops` of ``model`` (built from ``spec``), counted once per distinct
    architecture, input shape and output channels in this process (a study's trials mostly
    share one)."""
    key = shape_key(spec, input_shape, classes)
    if key not in _FLOPS:
        _FLOPS[key] = count_flops(model, input_shape)
    return _FLOPS[key]


def model_latency(spec: ModelSpec, forward: Callable[[torch.Tensor], torch.Tensor],
                  input_shape: tuple[int, int, int], classes: int, device: torch.device,
                  repeats: int, memory_format: torch.memory_format = torch.contiguous_format,
                  path: tuple = ()) -> tuple[float, float]:
    """:func:`latency_stats` of ``forward`` (the evaluation path of a model built from
    ``spec``: its input in ``memory_format``, ``path`` what else decides its cost, e.g. the
    autocast dtype), measured once per distinct architecture, input shape, output channels,
    device, memory format, path and ``repeats`` in this process."""
    key = (*shape_key(spec, input_shape, classes), str(device), str(memory_format), path,
           int(repeats))
    if key not in _LATENCY:
        _LATENCY[key] = latency_stats(forward, input_shape, device, repeats, memory_format)
    return _LATENCY[key]


def model_size_mb(model: nn.Module) -> float:
    """Size of the weights and buffers in MiB, as stored in memory."""
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors) / 2**20


@torch.no_grad()
def latency_stats(
    forward: Callable[[torch.Tensor], torch.Tensor], input_shape: tuple[int, int, int],
    device: torch.device, repeats: int,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> tuple[float, float]:
    """Median and interquartile range (p75 - p25) in ms of ``repeats`` timed batch-1 passes
    of ``forward`` (a model in eval mode, or the evaluation path around it) on ``device``,
    its input in ``memory_format``, after three warm-up passes (NaN, NaN with no
    repeats)."""
    if repeats <= 0:
        return float("nan"), float("nan")
    if isinstance(forward, nn.Module):
        forward.eval()
    x = torch.zeros(1, *input_shape, device=device).contiguous(memory_format=memory_format)
    timings = []
    for i in range(repeats + 3):  # three warm-up passes
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        tick = time.perf_counter()
        forward(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= 3:
            timings.append(time.perf_counter() - tick)
    p25, median, p75 = np.percentile(np.asarray(timings) * 1000.0, [25, 50, 75])
    return float(median), float(p75 - p25)
