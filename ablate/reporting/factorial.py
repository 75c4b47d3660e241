"""Factorial designs: the main effect of each component and the two-way interactions, from
paired seeds (:func:`ablate.inference.factorial_effects`).

Every cell of a 2^k design is trained with the same seeds, so each seed yields its own
estimate of every effect from that seed's cells (what the seed does to all cells cancels):

- main effect of A = mean of the cells with A=Y minus mean of the cells with A=N;
- interaction of A and B = ((YY - YN) - (NY - NN)) / 2 on the four means of the cells at each
  level of A and B (A's level first; pooled over the other components): half the change of
  B's effect when A is switched on, the usual 2^k definition, symmetric in A and B.

The effect is the mean of its per-seed estimates, with the t interval over seeds, a BCa
bootstrap interval and the sign-flip permutation p-value, adjusted across all the effects of
the design (main effects and interactions together) like the rows of the ablation table. Only
seeds with a complete run in every cell are used.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ablate.inference import Effect, factorial_effects
from ablate.reporting.comparisons import seed_values
from ablate.reporting.runs import COMP, StudyRuns
from ablate.reporting.sections import NA, Section, Table, interval, num, signed
from ablate.reporting.settings import Settings

Cell = tuple[bool, ...]


def _cells(study: StudyRuns) -> tuple[dict[Cell, dict[int, float]], list[str]]:
    """Values by seed of each cell (flags in component order), and the components."""
    done = study.complete()
    comps = [c for c in study.components if COMP + c in done]
    values = seed_values(study)
    cells: dict[Cell, dict[int, float]] = {}
    firsts = done.drop_duplicates("config")
    for _, run in firsts.iterrows():
        flags = tuple(isinstance(run[COMP + c], bool | np.bool_) and bool(run[COMP + c])
                      for c in comps)
        cells.setdefault(flags, {}).update(values.get(str(run["config"]), {}))
    return cells, comps


def _decision(effect: Effect, alpha: float, maximize: bool) -> str:
    if math.isnan(effect.p_adj) or effect.p_adj > alpha or effect.estimate == 0:
        return "undecided"
    if len(effect.components) > 1:
        return "positive" if effect.estimate > 0 else "negative"
    return "better" if (effect.estimate > 0) == maximize else "worse"


def _table(key: str, effects: list[Effect], means: dict[str, tuple[float, float]],
           settings: Settings, maximize: bool) -> Table:
    main = key == "main_effects"
    rows = []
    for e in effects:
        row: dict[str, object] = {"component" if main else "components": e.name}
        if main:
            row["mean Y"], row["mean N"] = means.get(e.name, (math.nan, math.nan))
        row.update({"n": e.n, "dropped": e.dropped, "estimate": e.estimate,
                    "ci_low": e.ci_low, "ci_high": e.ci_high, "boot_low": e.boot_low,
                    "boot_high": e.boot_high, "p": e.p, "p_adj": e.p_adj,
                    "decision": _decision(e, settings.alpha, maximize), "method": e.method})
        rows.append(row)
    data = pd.DataFrame(rows)
    if data.empty:
        return Table(key, data)
    view = data[[data.columns[0], *(["mean Y", "mean N"] if main else []), "n"]].copy()
    for column in ("mean Y", "mean N"):
        if column in view:
            view[column] = [num(v) for v in data[column]]
    view["effect" if main else "interaction"] = [signed(v) for v in data["estimate"]]
    view["95% CI"] = [interval(lo, hi) for lo, hi in zip(data["ci_low"], data["ci_high"],
                                                         strict=True)]
    view["BCa 95%"] = [interval(lo, hi) for lo, hi in zip(data["boot_low"], data["boot_high"],
                                                          strict=True)]
    view["p_adj"] = [NA if math.isnan(p) else f"{p:.3g}" for p in data["p_adj"]]
    view["decision"] = list(data["decision"])
    return Table(key, data, view)


def _level_means(cells: dict[Cell, dict[int, float]], comps: list[str],
                 seeds: set[int]) -> dict[str, tuple[float, float]]:
    """Mean over the used seeds of the cells with each component on (Y) and off (N)."""
    out = {}
    for i, comp in enumerate(comps):
        on = [v for c, vs in cells.items() if c[i] for s, v in vs.items() if s in seeds]
        off = [v for c, vs in cells.items() if not c[i] for s, v in vs.items() if s in seeds]
        out[comp] = (sum(on) / len(on) if on else math.nan,
                     sum(off) / len(off) if off else math.nan)
    return out


def factorial_sections(study: StudyRuns, settings: Settings) -> list[Section]:
    """The factorial heading with its definition, and the two tables."""
    cells, comps = _cells(study)
    head = Section("Factorial effects", [
        f"Effects of each component on `{study.objective}`, from paired seeds: every cell "
        "is trained with the same seeds, each seed gives its own estimate of each effect, "
        "and the effect is their mean.",
        "Main effect of A: mean of the cells with A=Y minus mean of the cells with A=N. "
        "Interaction A x B: ((YY - YN) - (NY - NN)) / 2 over the four cell means (A's level "
        "first; cells pool the other components), half the change of B's effect when A is "
        "switched on. `95% CI`: t interval over seeds; `BCa 95%`: bootstrap interval; "
        "`p_adj`: sign-flip permutation p-value adjusted across all effects (main and "
        f"interactions together) with {settings.correction}; decided at alpha "
        f"{settings.alpha:g}. Only seeds with a complete run in every cell are used.",
    ])
    main = Section("Main effects", level=3, empty="_no components to analyse_")
    inter = Section("Two-way interactions", level=3, empty="_fewer than two components_")
    try:
        effects = factorial_effects(cells, comps, settings.correction) if comps else []
    except ValueError:
        head.notes.append(f"_needs a complete run in every one of the {2 ** len(comps)} cells_")
        return [head, main, inter]
    seeds = set.intersection(*(set(v) for v in cells.values())) if cells else set()
    means = _level_means(cells, comps, seeds)
    main.table = _table("main_effects", [e for e in effects if len(e.components) == 1],
                        means, settings, study.maximize)
    inter.table = _table("interactions", [e for e in effects if len(e.components) == 2],
                         means, settings, study.maximize)
    if effects and effects[0].n < 2:
        head.notes.append(f"{NA}: fewer than 2 seeds with a run in every cell, no interval.")
    return [head, main, inter]
