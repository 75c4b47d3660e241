"""Which value a run trains with: the one precedence rule, applied here and nowhere else.

From lowest to highest:

1. a preset: ``augment.preset``, ``loss.preset``, and the default loss mix;
2. the values written in the spec (after ``--profile`` and ``--set``);
3. a design's ``baseline``, then its components' ``set`` (in the listed order);
4. a sampled value.

A preset fills in only what no level above it gives. ``augment.preset`` switches on those of
its toggles that no level writes. ``loss.preset`` works per term: it gives the weight of each of
its terms that no level writes; a term written anywhere keeps its written weight (a term the
preset lacks is added to the mix; write a preset's term as 0 to drop it). A spec that names no
``loss.preset`` and writes no ``loss.weights`` trains with the default mix, ``bce`` (binary) or
``ce`` (multiclass) at 1.0, filled in the same way.

What counts as written is what the YAML (or a layer) gives, never a default: a study's spec is
kept as written (:meth:`~ablate.spec.StudySpec.written`), and presets are filled in once, when a
run's configuration is resolved (:func:`resolve_data`). A resolved configuration holds every
value explicitly, so validating it again changes nothing.
"""

from __future__ import annotations

import copy
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel

from ablate.spec.paths import set_dotted

AUGMENT_PRESETS: dict[str, tuple[str, ...]] = {
    "none": (),
    "light": ("hflip", "vflip"),
    "strong": ("hflip", "vflip", "rot90", "shift_scale_rotate", "color_jitter", "blur"),
}
# Loss mixes by name; "xe" is the task's cross-entropy term (bce for binary, ce for multiclass).
LOSS_PRESETS: dict[str, dict[str, float]] = {
    "ce": {"xe": 1.0},
    "focal": {"focal": 1.0},
    "dice": {"dice": 1.0},
    "combined": {"xe": 0.5, "dice": 0.5},
}
DEFAULT_LOSS = "ce"  # the mix of a spec that names no preset and writes no weights


def cross_entropy_term(task: str) -> str:
    """The cross-entropy loss term of a task: ``bce`` (binary) or ``ce`` (multiclass)."""
    return "bce" if task == "binary" else "ce"


def loss_preset(name: str, task: str) -> dict[str, float]:
    """The weights of a named loss mix for ``task``."""
    xe = cross_entropy_term(task)
    return {(xe if term == "xe" else term): w for term, w in LOSS_PRESETS[name].items()}


def fill_presets(data: Mapping[str, Any], spec_wrote_weights: bool | None = None) -> dict:
    """``data`` (run-config values as given) with the presets filled in where nothing is given.

    ``spec_wrote_weights``: whether the spec level wrote ``loss.weights`` (None: judged from
    ``data`` itself, which then is the spec level). It decides whether the default loss mix
    applies when no ``loss.preset`` is named.
    """
    out = dict(data)
    augment = out.get("augment")
    if isinstance(augment, Mapping):
        toggles = AUGMENT_PRESETS.get(str(augment.get("preset") or "none"), ())
        out["augment"] = {**{name: True for name in toggles}, **augment}
    loss: Mapping[str, Any] = out["loss"] if isinstance(out.get("loss"), Mapping) else {}
    weights = loss.get("weights") or {}
    if not isinstance(weights, Mapping):
        return out  # not a mapping: validation reports it
    if spec_wrote_weights is None:
        spec_wrote_weights = bool(weights)
    data_section: Mapping[str, Any] = out["data"] if isinstance(out.get("data"), Mapping) else {}
    task = str(data_section.get("task") or "binary")
    preset = loss.get("preset")
    if preset in LOSS_PRESETS:
        base = loss_preset(preset, task)
    elif preset is None and not spec_wrote_weights:
        base = loss_preset(DEFAULT_LOSS, task)
    else:
        base = {}
    if base:
        out["loss"] = {**loss, "weights": {**base, **weights}}
    return out


def resolve_data(written: Mapping[str, Any], layers: Sequence[Mapping[str, Any]] = ()) -> dict:
    """The run-config data of one run: the spec's written values, each layer's ``{dotted path:
    value}`` written over them in order (a design's values, then sampled ones), then the
    presets filled in (:func:`fill_presets`). Validate it with ``RunConfig.model_validate``."""
    data = copy.deepcopy(dict(written))
    loss = data.get("loss")
    spec_wrote_weights = isinstance(loss, Mapping) and bool(loss.get("weights"))
    for layer in layers:
        for path, value in layer.items():
            set_dotted(data, path, copy.deepcopy(value))
    return fill_presets(data, spec_wrote_weights)


# ------------------------------------------------------------------------- addressable paths


def leaves(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every dotted path to a single value of ``model``: nested sections are walked, a mapping
    with a fixed set of keys (``loss.weights``, ``data.split_ratios``) gives one path per key,
    anything else (numbers, strings, lists, free mappings) is one value."""
    out: list[str] = []
    for name, field in model.model_fields.items():
        out += _leaves_of(field.annotation, prefix + name)
    return out


def addressable(model: type[BaseModel], path: str) -> bool:
    """Whether ``path`` names a value of ``model`` (or a key of a mapping in it, or any key of
    a section that takes extra keys, such as ``model``)."""
    annotation: Any = model
    for key in path.split("."):
        section = _section(annotation)
        if section is not None:
            if key in section.model_fields:
                annotation = section.model_fields[key].annotation
                continue
            return section.model_config.get("extra") == "allow"
        mapping = _mapping(annotation)
        if mapping is None:
            return False
        keys, annotation = mapping
        if keys is not None and key not in keys:
            return False
    return True


def _leaves_of(annotation: Any, path: str) -> list[str]:
    section = _section(annotation)
    if section is not None:
        return leaves(section, path + ".")
    mapping = _mapping(annotation)
    if mapping is not None and mapping[0] is not None:
        keys, value = mapping[0], mapping[1]
        return [leaf for key in keys for leaf in _leaves_of(value, f"{path}.{key}")]
    return [path]


def _optional_args(annotation: Any) -> tuple[Any, ...]:
    """The members of ``X | None`` other than None (or ``(annotation,)``)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return tuple(a for a in typing.get_args(annotation) if a is not type(None))
    return (annotation,)


def _section(annotation: Any) -> type[BaseModel] | None:
    """The model of a section field (``X`` or ``X | None``), else None."""
    args = _optional_args(annotation)
    if len(args) == 1 and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        return args[0]
    return None


def _mapping(annotation: Any) -> tuple[tuple[str, ...] | None, Any] | None:
    """``(fixed keys or None, value annotation)`` of a ``dict[K, V]`` field (``| None`` too)."""
    args = _optional_args(annotation)
    if len(args) != 1 or typing.get_origin(args[0]) is not dict:
        return None
    key, value = typing.get_args(args[0])
    if typing.get_origin(key) is Literal:
        return tuple(str(k) for k in typing.get_args(key)), value
    return None, value
