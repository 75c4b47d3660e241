"""scipy's submodules imported on first use: importing ``scipy.stats`` costs about a second,
which a report without comparisons (or ``--help``) should not pay."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands for the module ``name``, imported when one of its attributes is first read."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)


stats = LazyModule("scipy.stats")
optimize = LazyModule("scipy.optimize")
special = LazyModule("scipy.special")
