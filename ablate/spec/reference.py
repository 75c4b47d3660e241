"""Every key of a spec with its default, as markdown (docs/spec-defaults.md is this text; the
``data`` section has its own reference, docs/data.md)."""

from __future__ import annotations

import json
import types
import typing
from typing import Any, Literal

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

HEAD = """# Spec keys and their defaults

Every key of a study spec, with the value it takes when the spec does not write it (generated
from the spec's models by `python -m ablate.spec.reference > docs/spec-defaults.md`; a test
checks that this file is current). The `data` section is described key by key, with its
defaults, in [data.md](data.md). Presets (`loss.preset`, `augment.preset`) fill in the values
a spec leaves unwritten; a run's `config.yaml` holds every value it trained with.
"""


def shown(value: Any) -> str:
    """A default as YAML would write it (inline)."""
    if value is PydanticUndefined:
        return "required"
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    return f"`{json.dumps(value)}`"


def kind(annotation: Any) -> str:
    """What a key takes, in a few words."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        return " / ".join(str(a) for a in args)
    if origin is typing.Annotated:
        return kind(args[0])
    if origin is dict:
        return f"{{{kind(args[0])}: {kind(args[1])}}}"
    if origin in (list, tuple):
        return f"list of {kind(args[0])}"
    if origin in (typing.Union, types.UnionType):
        text = " or ".join(kind(a) for a in args if a is not type(None))
        return text + (" or null" if type(None) in args else "")
    if origin is None and isinstance(annotation, type):
        names = {"bool": "true / false", "int": "integer", "float": "number", "str": "text"}
        return names.get(annotation.__name__, annotation.__name__)
    return str(annotation).replace("typing.", "").replace("ablate.spec.config.", "").replace(
        "ablate.spec.sections.", "")


def rows(model: type[BaseModel], prefix: str) -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        inner = annotation if isinstance(annotation, type) else None
        if inner is not None and issubclass(inner, BaseModel):
            out += rows(inner, f"{prefix}{name}.")
            continue
        default = (PydanticUndefined if field.is_required()
                   else field.get_default(call_default_factory=True))
        out.append(f"| `{prefix}{name}` | {shown(default)} | {kind(annotation)} |")
    return out


def markdown() -> str:
    """The reference: top-level keys, then one table per section."""
    from ablate.spec import StudySpec

    top, sections = [], []
    for name, field in StudySpec.model_fields.items():
        annotation = field.annotation
        if name == "data":
            continue
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            sections.append(f"\n## {name}\n\n| key | default | takes |\n|---|---|---|\n"
                            + "\n".join(rows(annotation, f"{name}.")))
        else:
            default = (PydanticUndefined if field.is_required()
                       else field.get_default(call_default_factory=True))
            top.append(f"| `{name}` | {shown(default)} | {kind(annotation)} |")
    return (HEAD + "\n## top level\n\n| key | default | takes |\n|---|---|---|\n"
            + "\n".join(top) + "\n" + "\n".join(sections) + "\n")


if __name__ == "__main__":
    print(markdown(), end="")
