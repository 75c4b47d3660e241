"""The one rule for "best": which configuration is best, and which of its runs represents it.

Everything that names a best configuration or run uses this module: ``study run``'s summary,
``study show``/``study list``, the report and ``ablate predict STUDY``. It works on a small
table with one row per complete run (torch-free, MLflow-free):

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

from dataclasses import dataclass

import pandas as pd

COLUMNS = ("config", "objective", "order", "repeat")


@dataclass(frozen=True)
class Choice:
    """The best configuration and the row (index label of the table) that represents it."""

    config: str
    mean: float
    n: int
    row: object


def ranking(table: pd.DataFrame, maximize: bool) -> pd.DataFrame:
    """One row per configuration with a counted run (index: label): ``mean``, ``n`` and
    ``order`` (first try), best first by the rule above."""
    counted = table[pd.to_numeric(table["objective"], errors="coerce").notna()]
    if counted.empty:
        return pd.DataFrame(columns=["mean", "n", "order"])
    values = counted["objective"].astype(float)
    grouped = values.groupby(counted["config"].astype(str))
    ranked = pd.DataFrame({
        "mean": grouped.mean(),
        "n": grouped.count(),
        "order": pd.to_numeric(counted["order"], errors="coerce").groupby(
            counted["config"].astype(str)).min(),
    })
    ranked["label"] = ranked.index
    ranked["_goal"] = -ranked["mean"] if maximize else ranked["mean"]
    ranked = ranked.sort_values(["_goal", "n", "order", "label"],
                                ascending=[True, False, True, True], kind="stable",
                                na_position="last")
    return ranked.drop(columns=["_goal", "label"])


def representative(runs: pd.DataFrame, maximize: bool) -> object | None:
    """The index label of the run that represents ``runs`` (the rows of one configuration)."""
    counted = runs[pd.to_numeric(runs["objective"], errors="coerce").notna()]
    if counted.empty:
        return None
    ordered = counted.assign(
        _goal=-counted["objective"].astype(float) if maximize
        else counted["objective"].astype(float),
        _repeat=pd.to_numeric(counted["repeat"], errors="coerce"),
        _order=pd.to_numeric(counted["order"], errors="coerce"),
    ).sort_values(["_goal", "_repeat", "_order"], kind="stable", na_position="last")
    # best first: index n // 2 is the median, or the worse of the two middle runs
    return ordered.index[len(ordered) // 2]


def best(table: pd.DataFrame, maximize: bool) -> Choice | None:
    """The best configuration of ``table`` and its representative run; None without any
    counted run."""
    ranked = ranking(table, maximize)
    if ranked.empty:
        return None
    label = str(ranked.index[0])
    row = representative(table[table["config"].astype(str) == label], maximize)
    return Choice(label, float(ranked["mean"].iloc[0]), int(ranked["n"].iloc[0]), row)
