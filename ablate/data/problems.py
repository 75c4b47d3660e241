"""Every problem of a data set found in one pass, instead of one failed run per problem.

Reading a data set goes on past a bad file: each problem is collected as one line that names
the file (or spec key) and the setting or action that fixes it, and all of them are raised
together at the end as one :class:`~ablate.errors.DataError` (one line each). A problem that
many files share (0/255 masks, one odd channel count) is shown for the first few files and
then summarised, so that the fix is not buried under hundreds of identical lines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from ablate.data.formats import warn_once
from ablate.errors import DataError

T = TypeVar("T")

SHOWN_PER_KIND = 3  # lines of one kind shown in full before the rest are summarised
NAMED_IN_SUMMARY = 5  # files named in a summary line


class DataProblem(DataError):
    """A DataError that says what kind of problem it is (see :class:`Problem`)."""

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind


@dataclass
class Problem:
    """One problem: its line, its kind (a plural phrase, e.g. "masks whose values are not
    classes"; problems of one kind share a fix) and the file (or key) it is about."""

    line: str
    kind: str
    where: str


@dataclass
class Problems:
    """The problems (and warnings) found while reading one data set; ``echo``: warnings are
    also logged as they come (once per process)."""

    found: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    echo: bool = True

    def add(self, line: str, kind: str = "other", where: str = "") -> None:
        self.found.append(Problem(line, kind, where))

    def add_error(self, err: DataError, kind: str = "other", where: str = "") -> None:
        """A DataError raised by a reader, as problems (one per line of its message)."""
        kind = getattr(err, "kind", kind)
        for line in str(err).splitlines():
            if line.strip():
                self.add(line, kind, where)

    def attempt(self, func: Callable[[], T], kind: str = "other", where: str = "") -> T | None:
        """``func()``, or None with its DataError recorded as a problem."""
        try:
            return func()
        except DataError as err:
            self.add_error(err, kind, where)
            return None

    def warn(self, line: str) -> None:
        """A choice the data made for the user (a documented rule applied): shown, not fatal."""
        if line not in self.warnings:
            self.warnings.append(line)
        if self.echo:
            warn_once(line)

    def extend(self, other: Problems) -> None:
        self.found.extend(other.found)
        for line in other.warnings:
            self.warn(line)

    def __bool__(self) -> bool:
        return bool(self.found)

    def __len__(self) -> int:
        return len(self.found)

    def lines(self) -> list[str]:
        """One line per problem, in the order found; past :data:`SHOWN_PER_KIND` of one kind
        (other than "other"), one line summarising the rest of that kind."""
        by_kind: dict[str, list[Problem]] = {}
        for problem in self.found:
            by_kind.setdefault(problem.kind, []).append(problem)
        out: list[str] = []
        summarised: set[str] = set()
        for problem in self.found:
            group = by_kind[problem.kind]
            if problem.kind == "other" or len(group) <= SHOWN_PER_KIND + 1:
                out.append(problem.line)
                continue
            index = next(i for i, p in enumerate(group) if p is problem)
            if index < SHOWN_PER_KIND:
                out.append(problem.line)
            elif problem.kind not in summarised:
                summarised.add(problem.kind)
                rest = group[SHOWN_PER_KIND:]
                named = ", ".join(p.where for p in rest[:NAMED_IN_SUMMARY])
                more = ", ..." if len(rest) > NAMED_IN_SUMMARY else ""
                out.append(f"... and {len(rest)} more {problem.kind}: {named}{more} (the "
                           "same fix)")
        return out

    def raise_if_any(self) -> None:
        """Raise every problem found as one DataError (one line each)."""
        if self.found:
            raise DataError("\n".join(self.lines()))
