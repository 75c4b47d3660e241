"""Errors that are the user's to fix: the CLI prints them as one line and exits with code 2."""

from __future__ import annotations


class AblateError(Exception):
    """Bad input (spec, data, storage): one line that says where and what to do."""


class SpecError(AblateError):
    """A study spec that cannot be loaded or validated."""


class DataError(AblateError):
    """A data set that cannot be read as declared."""
