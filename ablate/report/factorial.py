"""Factorial designs: the main effect of each toggle and the two-way interactions.

Effects are computed over runs (every repeat of every configuration counts once):

- main effect of A = mean(runs with A=Y) - mean(runs with A=N), Welch t interval on the two
  groups of runs;
- interaction of A and B = ((YY - YN) - (NY - NN)) / 2 with the four cell means (A's level
  first, B's second; each cell pools the runs over the other toggles): half the change in B's
  effect when A is switched on, the usual 2^k definition, symmetric in A and B. Its interval
  uses the standard error sqrt(sum of s_c^2 / (4 n_c)) over the cells with Welch-Satterthwaite
  degrees of freedom; it needs at least 2 runs in every cell, else n/a.
"""

from __future__ import annotations

import itertools

import pandas as pd

from ablate.report import stats
from ablate.report.configs import objective_column
from ablate.report.runs import COMP, StudyRuns
from ablate.report.sections import Section, Table, interval, num, signed
from ablate.report.tables import NOISE_MARK

DEFINITION = (
    "Main effect of A: mean over runs with A=Y minus mean over runs with A=N (Welch 95% "
    "interval). Interaction A x B: ((YY - YN) - (NY - NN)) / 2 over the four cell means "
    "(A's level first; cells pool the other toggles), half the change of B's effect when A is "
    "switched on; 95% interval from the per-cell variances (Welch-Satterthwaite), n/a unless "
    f"every cell has 2 runs or more. `{NOISE_MARK}`: the interval includes 0."
)


def _frame(study: StudyRuns) -> tuple[pd.DataFrame, pd.Series, list[str]]:
    done = study.complete()
    column = objective_column(study)
    values = done[column].astype(float) if column in done else pd.Series(dtype=float)
    comps = [c for c in study.components if COMP + c in done]
    return done, values, comps


def effects_table(study: StudyRuns) -> Table:
    """Main effect of each component on the objective."""
    done, values, comps = _frame(study)
    rows = []
    for comp in comps:
        factor = done[COMP + comp].astype("boolean")
        on, off = values[factor.fillna(False)], values[(~factor).fillna(False)]
        estimate = stats.main_effect(values, done[COMP + comp])
        rows.append({
            "component": comp, "mean Y": on.mean(), "mean N": off.mean(),
            "n Y": int(on.count()), "n N": int(off.count()), "effect": estimate.value,
            "ci_low": estimate.low, "ci_high": estimate.high,
            "ci_includes_zero": estimate.includes_zero,
        })
    return _table("main_effects", rows)


def interactions_table(study: StudyRuns) -> Table:
    """Two-way interaction of every pair of components on the objective."""
    done, values, comps = _frame(study)
    rows = []
    for a, b in itertools.combinations(comps, 2):
        fa, fb = done[COMP + a].astype("boolean"), done[COMP + b].astype("boolean")
        cells = {
            f"n {x}{y}": int(((fa == (x == "Y")) & (fb == (y == "Y"))).fillna(False).sum())
            for x in "YN" for y in "YN"
        }
        estimate = stats.interaction(values, done[COMP + a], done[COMP + b])
        rows.append({
            "components": f"{a} x {b}", **cells, "interaction": estimate.value,
            "ci_low": estimate.low, "ci_high": estimate.high,
            "ci_includes_zero": estimate.includes_zero,
        })
    return _table("interactions", rows)


def _table(key: str, rows: list[dict[str, object]]) -> Table:
    data = pd.DataFrame(rows)
    if data.empty:
        return Table(key, data)
    value = "effect" if "effect" in data else "interaction"
    view = data.drop(columns=["ci_low", "ci_high", "ci_includes_zero"])
    view[value] = [signed(v) for v in data[value]]
    view["95% CI"] = [interval(lo, hi) for lo, hi in zip(data["ci_low"], data["ci_high"],
                                                          strict=True)]
    view[NOISE_MARK] = [NOISE_MARK if z else "" for z in data["ci_includes_zero"]]
    for column in ("mean Y", "mean N"):
        if column in view:
            view[column] = [num(v) for v in data[column]]
    return Table(key, data, view)


def factorial_sections(study: StudyRuns) -> list[Section]:
    """The factorial heading with its definition, and the two tables."""
    return [
        Section("Factorial effects", [
            f"Effects of each component on `{study.objective}`, over all complete runs.",
            DEFINITION,
        ]),
        Section("Main effects", table=effects_table(study), level=3,
                empty="_no components to analyse_"),
        Section("Two-way interactions", table=interactions_table(study), level=3,
                empty="_fewer than two components_"),
    ]
