"""Dotted paths (``optim.lr``) into nested spec data."""

from __future__ import annotations

from typing import Any

from ablate.errors import SpecError


def set_dotted(data: dict[str, Any], path: str, value: Any, must_exist: bool = False) -> dict:
    """Set ``data[a][b][c] = value`` for ``path = "a.b.c"``; returns ``data``."""
    keys = path.split(".")
    node = data
    for depth, key in enumerate(keys[:-1]):
        nxt = node.get(key) if isinstance(node, dict) else None
        if nxt is None:
            if must_exist and not _may_create(keys[: depth + 1]):
                raise KeyError(path)
            nxt = node[key] = {}
        if not isinstance(nxt, dict):
            raise SpecError(f"'{'.'.join(keys[: depth + 1])}' is a value, not a section")
        node = nxt
    node[keys[-1]] = value
    return data


def _may_create(keys: list[str]) -> bool:
    # Optional sections that a search may fill in (e.g. loss.weights.focal).
    return keys[:2] in (["loss", "weights"],) or keys[:1] == ["model"]
