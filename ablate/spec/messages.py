"""Validation errors as one line: file, key path, what is wrong, what to do."""

from __future__ import annotations

import difflib
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

# Parts of a pydantic error location that are not spec keys: validator functions, tuple
# items, and the tags of a discriminated union ("<range>", see DesignSpec.repeats).
_NOT_KEYS = ("function-", "tuple[", "<")


def format_validation_error(err: ValidationError, source: str, root: type[BaseModel]) -> str:
    """One line: file, key path, what is wrong and what to do."""
    # An unknown key explains the "missing" errors beside it, so it goes first.
    errors = sorted(err.errors(), key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    loc = [str(p) for p in first["loc"] if not str(p).startswith(_NOT_KEYS)]
    msg = error_msg(first)
    if first["type"] == "extra_forbidden":
        valid = _fields_at(root, loc[:-1])
        close = difflib.get_close_matches(loc[-1], valid, n=1)
        msg = f"unknown key '{loc[-1]}'"
        msg += f" (did you mean '{close[0]}'?)" if close else ""
        if valid:
            msg += f"; valid keys here: {', '.join(valid)}"
    elif first["type"] == "missing":
        msg = "required key is missing"
    where = f"{error_loc(loc)}: " if loc else ""  # cross-field checks name their keys themselves
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return f"{source}: {where}{msg}" + (more if len(errors) > 1 else "")


def error_loc(loc: Any) -> str:
    """A pydantic error location as a dotted key path."""
    return ".".join(str(p) for p in loc if not str(p).startswith(_NOT_KEYS))


def error_msg(error: Mapping[str, Any]) -> str:
    """A pydantic error message, with the offending value when short."""
    msg = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] not in ("value_error", "extra_forbidden", "missing") and "input" in error:
        value = error["input"]
        if not isinstance(value, dict | list) or len(repr(value)) < 60:
            msg += f" (got {value!r})"
    return msg


def _fields_at(model: type[BaseModel], loc: list[str]) -> list[str]:
    """The valid keys of the section at ``loc``, for suggestions."""
    annotation: Any = model
    for key in loc:
        section = _model_in(annotation)
        if section is None:
            return []
        if key in section.model_fields:
            annotation = section.model_fields[key].annotation
        # else: a mapping key (e.g. a split name); the section stays the mapping's value type
    target = _model_in(annotation)
    return list(target.model_fields) if target else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
