"""The report as data: sections holding tables (numbers for CSV, formatted text for markdown
and LaTeX), paragraphs and figures; and the number formats the tables use."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

NA = "n/a"


@dataclass
class Table:
    """One table: ``data`` holds the numbers (CSV export), ``view`` the formatted cells
    (markdown and LaTeX; ``data`` itself when None). ``key`` names its CSV file."""

    key: str
    data: pd.DataFrame
    view: pd.DataFrame | None = None

    @property
    def shown(self) -> pd.DataFrame:
        return self.data if self.view is None else self.view


@dataclass
class Section:
    """A heading with paragraphs, an optional table, notes under it and figures."""

    title: str
    text: list[str] = field(default_factory=list)
    table: Table | None = None
    notes: list[str] = field(default_factory=list)
    figures: list[tuple[str, Path]] = field(default_factory=list)  # (caption, PNG path)
    level: int = 2
    empty: str = "_no complete runs_"


def num(value: object, digits: int = 4) -> str:
    """A number in ``digits`` significant figures; NaN/None as n/a."""
    if value is None:
        return NA
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return NA
    if number.is_integer() and abs(number) < 1e15:
        return f"{int(number):d}"
    return f"{number:.{digits}g}"


def signed(value: float, digits: int = 4) -> str:
    """A difference with its sign (``+0.0123``)."""
    if value is None or math.isnan(value):
        return NA
    return "0" if value == 0 else f"{value:+.{digits}g}"


def mean_std(mean: float, std: float, digits: int = 4) -> str:
    """``mean ± std``, or just the mean when there is no spread estimate (one repeat)."""
    if math.isnan(mean):
        return NA
    return num(mean, digits) if math.isnan(std) else f"{num(mean, digits)} ± {std:.2g}"


def interval(low: float, high: float, digits: int = 3) -> str:
    """``[low, high]``, or n/a without an interval."""
    if math.isnan(low) or math.isnan(high):
        return NA
    return f"[{low:+.{digits}g}, {high:+.{digits}g}]"


def yes_no(value: object) -> str:
    """A toggle as Y/N; unknown as an empty cell."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return "Y" if bool(value) else "N"


def counts(value: float) -> str:
    """A confusion count with thousands separators."""
    return NA if math.isnan(value) else f"{int(round(value)):,}"
