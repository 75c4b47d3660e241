"""Python objects given in a spec built in memory, such as a notebook's own model class.

A spec stores plain data (it is kept with the study and logged with every run), so an object
is stored as its import path, ``module:name``; this process keeps the object itself under
that path and builds it without importing. Another process (a second worker, a later
``ablate study run``) imports the path, which works for a module on the path and not for a
notebook's ``__main__``: such a spec trains in this process only.
"""

from __future__ import annotations

import inspect
from typing import Any

_OBJECTS: dict[str, Any] = {}


def register(obj: Any) -> str:
    """Keep ``obj`` (a class or a function) and return the import path that stands for it."""
    qualname = getattr(obj, "__qualname__", "")
    module = getattr(obj, "__module__", None)
    if not module or not qualname or "." in qualname or "<" in qualname:
        raise ValueError(f"{obj!r} has no import path; define it at the top level of a module "
                         "or of a notebook cell")
    path = f"{module}:{qualname}"
    _OBJECTS[path] = obj
    return path


def lookup(path: str) -> Any | None:
    """The object registered under ``path`` in this process (None: import it)."""
    return _OBJECTS.get(path)


def in_this_process_only(path: str) -> bool:
    """Whether ``path`` names an object only this process has (defined in ``__main__``)."""
    return path in _OBJECTS and path.startswith("__main__:")


def source_of(obj: Any) -> str | None:
    """The source code of a class or function, where Python can find it (a notebook's class
    is put together from its methods); None when it cannot."""
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        pass
    if not isinstance(obj, type):
        return None
    parts = [f"class {obj.__name__}({', '.join(b.__name__ for b in obj.__bases__)}):"]
    for value in vars(obj).values():
        try:
            code = inspect.getsource(value)
        except (OSError, TypeError):
            continue
        parts.append(code)
    return "\n".join(parts) if len(parts) > 1 else None
