"""Dotted paths (``optim.lr``) into nested spec data."""

from __future__ import annotations

from typing import Any

from ablate.errors import SpecError


def get_dotted(data: Any, path: str, default: Any = None) -> Any:
    """``data[a][b][c]`` for ``path = "a.b.c"``, or ``default`` where a key is missing."""
    node = data
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


def set_dotted(data: dict[str, Any], path: str, value: Any) -> dict:
    """Set ``data[a][b][c] = value`` for ``path = "a.b.c"`` (missing sections are created);
    returns ``data``."""
    keys = path.split(".")
    node = data
    for depth, key in enumerate(keys[:-1]):
        nxt = node.get(key) if isinstance(node, dict) else None
        if nxt is None:
            nxt = node[key] = {}
        if not isinstance(nxt, dict):
            raise SpecError(f"'{'.'.join(keys[: depth + 1])}' is a value, not a section")
        node = nxt
    node[keys[-1]] = value
    return data

