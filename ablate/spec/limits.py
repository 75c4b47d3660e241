"""What a spec's numbers may not be, beyond their types: ``true`` where a number is meant,
and numbers too large to train with (they would pass the type checks and then exhaust the
machine, or run for ever, instead of failing at once with a line that names the key)."""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, get_args, get_origin

# dotted path -> the largest value that still makes sense (each side, for sizes)
UPPER: dict[str, float] = {
    "data.batch_size": 65_536,
    "data.eval_batch_size": 65_536,
    "data.size": 16_384,
    "data.crop": 16_384,
    "data.max_images": 10_000_000,
    "data.synthetic.num_images": 100_000,
    "data.synthetic.size": 8_192,
    "data.synthetic.channels": 16,
    "optim.epochs": 100_000,
    "optim.warmup_epochs": 100_000,
    "optim.grad_accum": 65_536,
    "optim.step_size": 100_000,
    "optim.restart_epochs": 100_000,
    "optim.restart_mult": 100,
    "optim.plateau_patience": 100_000,
    "optim.early_stopping_patience": 100_000,
    "optim.freeze_encoder_epochs": 100_000,
    "optim.unfreeze_every": 100_000,
    "optim.unfreeze_stages": 1_000,
    "eval.gallery": 256,
    "eval.latency_repeats": 100_000,
    "trials": 1_000_000,
    "max_failures": 1_000_000,
    "min_batch_size": 65_536,
    "sampler.n_startup_trials": 1_000_000,
    "pruner.n_startup_trials": 1_000_000,
    "pruner.n_warmup_steps": 100_000,
    "pruner.min_resource": 100_000,
    "pruner.reduction_factor": 1_000,
}
# Pixels in one batch of images: beyond this the confusion counts' int32 index overflows
# and the batch does not fit any accelerator anyway.
MAX_BATCH_PIXELS = 2**31 - 1


def _numeric(annotation: Any) -> bool:
    """Whether a field's type holds numbers (and not also booleans)."""
    if annotation in (int, float):
        return True
    origin = get_origin(annotation)
    if origin is Annotated:
        return _numeric(get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if bool in members:  # a setting that takes true/false too
            return False
        return any(_numeric(a) for a in members)
    return False


def _items(annotation: Any) -> Any | None:
    """The element type of a list or tuple field of numbers (None otherwise)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _items(get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        for member in get_args(annotation):
            found = _items(member)
            if found is not None:
                return found
        return None
    if origin in (list, tuple):
        args = [a for a in get_args(annotation) if a is not Ellipsis]
        if args and all(_numeric(a) for a in args):
            return args[0]
    return None


def reject_booleans(annotation: Any, value: Any) -> None:
    """Raise ValueError when ``true``/``false`` is given for a field of type ``annotation``
    that expects a number or numbers (YAML's booleans would otherwise count as 1 and 0)."""
    if isinstance(value, bool) and _numeric(annotation):
        raise ValueError(f"{str(value).lower()} is not a number; give a number")
    if isinstance(value, list | tuple) and _items(annotation) is not None and any(
            isinstance(v, bool) for v in value):
        raise ValueError("true/false where numbers are meant; give numbers")


def check_upper(values: dict[str, Any]) -> None:
    """Raise ValueError naming the first key whose number is past :data:`UPPER` (``values``:
    a run config or spec as a dict), or a batch of more than :data:`MAX_BATCH_PIXELS`."""
    for path, limit in UPPER.items():
        value: Any = values
        for key in path.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        numbers = value.values() if isinstance(value, dict) else (
            value if isinstance(value, list | tuple) else [value])
        for number in numbers:
            if isinstance(number, int | float) and number > limit:
                raise ValueError(f"{path}: {number:g} is more than this can train with "
                                 f"(at most {limit:g}); use a smaller value")
    data = values.get("data") or {}
    size = data.get("crop") or data.get("size")
    if size and data.get("batch_size"):
        pixels = int(data["batch_size"]) * int(size[0]) * int(size[1])
        if pixels > MAX_BATCH_PIXELS:
            raise ValueError(f"data.batch_size x data.size: {pixels:,} pixels in one batch, "
                             f"more than {MAX_BATCH_PIXELS:,}; lower data.batch_size or "
                             "data.size")
