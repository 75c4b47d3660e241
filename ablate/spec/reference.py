"""The spec reference: every key of a study spec with its type, default and meaning, as
markdown generated from the spec's models (docs/spec.md is this text).

    python -m ablate.spec.reference --write docs/spec.md   # regenerate it
    python -m ablate.spec.reference --check docs/spec.md   # exit 1 when it is stale

A key's meaning is its field's attribute docstring (``use_attribute_docstrings``); a key
without one stops the generator, so a new key cannot reach the reference undocumented.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from ablate.spec.base import Registry

HEAD = """# The spec reference

Every key of a study spec: its type, its default (what it is when the spec does not write it)
and what it means. A spec is one YAML file (`studies/quickstart.yaml` is a complete example);
`ablate check SPEC` validates one, and its data set, without running anything. How the `data`
keys pair images with masks, make splits and handle the quirks of real downloads is told in
[data.md](data.md).

A run's configuration is the spec's sections resolved, from lowest to highest: presets
(`augment.preset`, `loss.preset`) fill in what nothing else writes; then the values written in
the spec (after `--profile` and `--set`); then a design's `baseline` and its components' `set`;
then a search's sampled values. A run's `config.yaml` holds every value it trained with.
Dotted paths (`optim.lr`, `loss.weights.focal`) name keys in `--set`, `search`,
`design.baseline` and `design.components`.

In the keys below, `<split>` stands for each split a mapping names (train, val, test),
`<path>` for each dotted path, and `[]` for each item of a list.

This file is generated from the spec's models (`ablate/spec/`) by
`python -m ablate.spec.reference --write docs/spec.md`; `make lint` and a test fail when it is
stale.
"""

COLUMNS = "| key | type | default | meaning |\n|---|---|---|---|"
_WORDS = {bool: "true / false", int: "integer", float: "number", str: "text"}
_BOUNDS = ((annotated_types.Ge, "ge", "≥"), (annotated_types.Gt, "gt", ">"),
           (annotated_types.Le, "le", "≤"), (annotated_types.Lt, "lt", "<"))


class Undocumented(ValueError):
    """A spec key without a meaning (its field has no docstring)."""


@dataclass(frozen=True)
class Row:
    """One key of the reference."""

    key: str
    type: str
    default: str
    meaning: str

    def markdown(self) -> str:
        cells = (f"`{self.key}`", self.type, self.default, self.meaning)
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def shown(value: Any) -> str:
    """A default as YAML would write it (inline)."""
    if value is PydanticUndefined:
        return "required"
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    return f"`{json.dumps(value)}`"


def kind(annotation: Any, metadata: Sequence[Any] = ()) -> str:
    """What a key takes, in a few words (``metadata``: the field's constraints, which apply
    to the non-null part of an optional type)."""
    registry = next((m for m in metadata if isinstance(m, Registry)), None)
    if registry is not None:
        return " / ".join(f"`{name}`" for name in registry.names())
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return kind(args[0], [*_constraints(args[1:]), *metadata])
    if origin in (typing.Union, types.UnionType):
        text = " or ".join(kind(a, metadata) for a in args if a is not type(None))
        return text + (" or null" if type(None) in args else "")
    if origin is Literal:
        text = " / ".join(f"`{a}`" for a in args)
    elif origin is dict:
        text = f"{{{kind(args[0])}: {kind(args[1])}}}"
    elif origin is list:
        text = f"list of {kind(args[0])}"
    elif origin is tuple:
        text = "[" + ", ".join(kind(a) for a in args) + "]"
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        text = "{" + ", ".join(annotation.model_fields) + "}"
    else:
        text = _WORDS.get(annotation, "any")
    bounds = _bounds(metadata)
    return f"{text} {bounds}" if bounds else text


def _constraints(metadata: Sequence[Any]) -> list[Any]:
    """Constraints of an ``Annotated`` type, those of a ``Field(...)`` in it included."""
    out: list[Any] = []
    for item in metadata:
        out += item.metadata if isinstance(item, FieldInfo) else [item]
    return out


def _bounds(metadata: Sequence[Any]) -> str:
    parts = []
    for item in metadata:
        for constraint, attribute, sign in _BOUNDS:
            if isinstance(item, constraint):
                value = getattr(item, attribute)
                parts.append(f"{sign} {value}" if isinstance(value, int) else f"{sign} {value:g}")
        if isinstance(item, annotated_types.MinLen) and item.min_length == 1:
            parts.append("non-empty")
        if isinstance(item, annotated_types.MaxLen):
            parts.append(f"at most {item.max_length} long")
    return ", ".join(parts)


def _nested(annotation: Any) -> tuple[type[BaseModel], str] | None:
    """The model inside a key's type and how its keys are written below it: ``.`` for the
    model itself (or null), ``.<split>.`` / ``.<path>.`` for a mapping of models, ``[].`` for
    a list of them."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, "."
    if origin is typing.Annotated:
        return _nested(args[0])
    if origin is dict:
        found = _nested(args[1])
        key = "<split>" if typing.get_origin(args[0]) is Literal else "<path>"
        return (found[0], f".{key}.") if found else None
    if origin is list:
        found = _nested(args[0])
        return (found[0], "[].") if found else None
    if origin in (typing.Union, types.UnionType):
        return next((n for a in args if (n := _nested(a)) is not None), None)
    return None


def meaning(field: FieldInfo, key: str) -> str:
    """A key's meaning on one line; :class:`Undocumented` when its field has none."""
    if not field.description:
        raise Undocumented(f"spec key {key} has no meaning: give its field a docstring "
                           "(the line below it) in ablate/spec/")
    return " ".join(field.description.split())


def rows(model: type[BaseModel], prefix: str) -> list[Row]:
    """The keys of ``model`` below ``prefix``: a key of its own for each field, except a
    plain section (its keys stand for it), then the keys of a model inside it."""
    out = []
    for name, field in model.model_fields.items():
        key = prefix + name
        text = meaning(field, key)
        inner = _nested(field.annotation)
        if not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            default = (PydanticUndefined if field.is_required()
                       else field.get_default(call_default_factory=True))
            out.append(Row(key, kind(field.annotation, field.metadata), shown(default), text))
        if inner is not None:
            out += rows(inner[0], key + inner[1])
    return out


def markdown() -> str:
    """The reference: the top-level keys, then one section per key that holds others, in the
    spec's order, each with its meaning under its title."""
    from ablate.spec import StudySpec

    every = rows(StudySpec, "")
    top, sections = [], []
    for name, field in StudySpec.model_fields.items():
        own = [r for r in every if r.key == name or r.key.startswith((f"{name}.", f"{name}["))]
        if _nested(field.annotation) is None:
            top += own
            continue
        # a plain section is described under its title; a key of its own, in its row
        intro = f"{meaning(field, name)}\n\n" if own[0].key != name else ""
        sections.append(f"\n## {name}\n\n{intro}{COLUMNS}\n"
                        + "\n".join(r.markdown() for r in own))
    return (HEAD + f"\n## Top level\n\n{COLUMNS}\n" + "\n".join(r.markdown() for r in top)
            + "\n" + "\n".join(sections) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Print the reference, write it (``--write``) or check a written one (``--check``)."""
    parser = argparse.ArgumentParser(prog="python -m ablate.spec.reference",
                                     description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", type=Path, metavar="FILE", help="write the reference there")
    group.add_argument("--check", type=Path, metavar="FILE",
                       help="exit 1 unless FILE is the current reference")
    args = parser.parse_args(argv)
    try:
        text = markdown()
    except Undocumented as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if args.write:
        args.write.write_text(text)
    elif args.check:
        current = args.check.read_text() if args.check.exists() else None
        if current != text:
            print(f"{args.check} is stale: run python -m ablate.spec.reference --write "
                  f"{args.check}", file=sys.stderr)
            return 1
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
