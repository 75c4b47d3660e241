"""Errors that are the user's to fix: the CLI prints them as one line and exits with code 2."""

from __future__ import annotations


class AblateError(Exception):
    """Bad input (spec, data, storage): one line that says where and what to do."""


class SpecError(AblateError):
    """A study spec that cannot be loaded or validated."""


class DataError(AblateError):
    """A data set that cannot be read as declared."""


class StoreLost(AblateError):
    """A store that was usable stopped being so while a worker wrote to it (deleted, replaced,
    made read-only, a server that errs): the worker stops, nothing more is written there."""


class TakenOver(Exception):
    """The trial this worker trains was taken over by another worker (this one was taken for
    dead): the worker must write nothing more for it."""
