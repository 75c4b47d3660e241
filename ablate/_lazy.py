"""A package's names loaded on first use (PEP 562): importing the package stays cheap, and a
name brings in only the submodule that defines it (``study list`` loads no torch, ``ablate
report`` forks its figure helper before pandas loads)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping


def lazy(package: str, exports: Mapping[str, str]
         ) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package`` whose ``exports`` map each public name
    to the submodule defining it (``module:attribute`` where the names differ); a loaded name
    is kept in the package's namespace."""

    def __getattr__(name: str) -> object:
        where = exports.get(name)
        if where is None:
            raise AttributeError(f"module '{package}' has no attribute '{name}'")
        module, _, attribute = where.partition(":")
        value = getattr(importlib.import_module(f"{package}.{module}"), attribute or name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
