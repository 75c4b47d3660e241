"""The one rule for "best": which configuration is best, and which of its runs represents it.

Everything that names a best configuration or run uses this module: ``study run``'s summary,
``study show``/``study list``, the report and ``ablate predict STUDY``. It works on a small
table with one row per complete run (torch-, MLflow- and pandas-free; a DataFrame or a
mapping of rows by key):

- ``config``: the configuration's label (runs sharing it are its repeats);
- ``objective``: the run's objective on val (NaN or missing: not counted);
- ``order``: when the run's configuration was tried (its trial number), for ties;
- ``repeat``: the run's repeat index, for ties.

**Best configuration**: the highest (maximize) or lowest (minimize) *mean* objective over its
repeats. Ties (equal means) go to the configuration with more counted runs, then to the one
tried first (smallest ``order``), then to the smaller label: never to chance.

**Representative run**: the repeat whose objective is the median of its configuration's; with
an even count, the lower-ranked of the two middle runs (the worse one in the objective's
direction), so the run shown and the weights predicted with never flatter the configuration.
Equal objectives go to the smaller repeat index, then the earlier ``order``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

COLUMNS = ("config", "objective", "order", "repeat")

Rows = Mapping[Any, Mapping[str, Any]]  # row key -> column -> value


class _Frame(Protocol):
    def to_dict(self, orient: str) -> Any: ...


@dataclass(frozen=True)
class Choice:
    """The best configuration and the row (its key in the table) that represents it."""

    config: str
    mean: float
    n: int
    row: object


@dataclass(frozen=True)
class Ranked:
    """One configuration with a counted run: its mean objective, counted runs, first try."""

    config: str
    mean: float
    n: int
    order: float | None


def _rows(table: Rows | _Frame) -> Rows:
    """Rows by key: a mapping as given, or a pandas DataFrame by its index labels (this module
    needs no pandas, so ``study list`` does not import it)."""
    if isinstance(table, Mapping):
        return table
    rows: Rows = table.to_dict("index")
    return rows


def _number(value: Any) -> float | None:
    """``value`` as a float; None when missing or NaN (not counted)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _last_if_none(value: float | None) -> tuple[bool, float]:
    return (value is None, 0.0 if value is None else value)


def ranking(table: Rows | _Frame, maximize: bool) -> list[Ranked]:
    """The configurations with a counted run, best first by the rule above."""
    values: dict[str, list[float]] = {}
    orders: dict[str, float | None] = {}
    for row in _rows(table).values():
        objective = _number(row.get("objective"))
        if objective is None:
            continue
        label = str(row["config"])
        values.setdefault(label, []).append(objective)
        order, first = _number(row.get("order")), orders.get(label)
        orders[label] = order if first is None or (order is not None and order < first) else first
    ranked = [Ranked(label, math.fsum(v) / len(v), len(v), orders[label])
              for label, v in values.items()]
    ranked.sort(key=lambda r: (-r.mean if maximize else r.mean, -r.n,
                               _last_if_none(r.order), r.config))
    return ranked


def representative(runs: Rows | _Frame, maximize: bool) -> object | None:
    """The key of the run that represents ``runs`` (the rows of one configuration)."""
    counted = []
    for key, row in _rows(runs).items():
        objective = _number(row.get("objective"))
        if objective is not None:
            counted.append((-objective if maximize else objective,
                            _last_if_none(_number(row.get("repeat"))),
                            _last_if_none(_number(row.get("order"))), key))
    if not counted:
        return None
    counted.sort(key=lambda c: c[:3])  # stable: equal rows keep the table's order
    # best first: index n // 2 is the median, or the worse of the two middle runs
    return counted[len(counted) // 2][3]


def best(table: Rows | _Frame, maximize: bool) -> Choice | None:
    """The best configuration of ``table`` and its representative run; None without any
    counted run."""
    rows = _rows(table)
    ranked = ranking(rows, maximize)
    if not ranked:
        return None
    top = ranked[0]
    mine = {key: row for key, row in rows.items() if str(row["config"]) == top.config}
    return Choice(top.config, top.mean, top.n, representative(mine, maximize))
