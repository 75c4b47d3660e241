"""Segmentation models: any segmentation-models-pytorch architecture + encoder, by name."""

from __future__ import annotations

import difflib
import inspect
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ablate.errors import SpecError
from ablate.spec import ModelSpec

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
    """Raise ValueError (for the spec validator) on an unknown arch, encoder or keyword."""
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


def build_model(spec: ModelSpec, in_channels: int, classes: int) -> nn.Module:
    """A fresh model; encoder weights come only from a local file (nothing is downloaded)."""
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
    if not path.is_file():
        raise SpecError(f"model.encoder_weights: file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same user error
        raise SpecError(f"model.encoder_weights: cannot read {path}: {err}") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    encoder = getattr(model, "encoder", model)
    missing, unexpected = encoder.load_state_dict(state, strict=False)
    if len(missing) == len(encoder.state_dict()):
        raise SpecError(
            f"model.encoder_weights: {path} has no weights for this encoder "
            f"(first keys: {', '.join(list(state)[:3])})"
        )


def count_params(model: nn.Module) -> int:
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, input_shape: tuple[int, int, int]) -> float:
    """FLOPs of one forward pass at ``(C, H, W)``, batch 1, by fvcore.

    fvcore counts one multiply-add as one FLOP (so the figure equals MACs).
    """
    import logging

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
