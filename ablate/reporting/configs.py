"""Configurations: the complete runs grouped by configuration label (runs sharing a label are
repeats), their order in the report, the baseline and the run that represents each."""

from __future__ import annotations

import pandas as pd

from ablate import selection
from ablate.reporting import stats
from ablate.reporting.runs import COMP, VALUE, StudyRuns


def objective_column(study: StudyRuns) -> str:
    return study.metric(study.objective)


def aggregate(study: StudyRuns, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per configuration (index: label): ``n``, ``trial`` (its first trial number),
    the components (``comp.*``) and searched values (``value.*``) of its first run, and
    ``mean.<metric>`` / ``std.<metric>`` (ddof=1) of every final metric over its repeats."""
    done = study.complete() if runs is None else runs
    metrics = [c for c in done.columns if c.startswith("metrics.")]
    described = [c for c in done.columns if c.startswith((COMP, VALUE))]
    if done.empty:
        return pd.DataFrame(columns=["n", "trial", *described])
    grouped = done.groupby("config", sort=False)
    first = grouped[described].first() if described else pd.DataFrame(index=grouped.size().index)
    values = done[metrics].astype(float).groupby(done["config"], sort=False)
    means = values.mean().rename(columns=lambda c: "mean." + c.removeprefix("metrics."))
    stds = values.std(ddof=1).rename(columns=lambda c: "std." + c.removeprefix("metrics."))
    stds = stds.mask(stats.is_noise(stds.to_numpy(), means.to_numpy()), 0.0)
    n = done.groupby("config", sort=False)[objective_column(study)].count() \
        if objective_column(study) in done else grouped.size()
    table = pd.concat([
        n.rename("n"), grouped["trial"].min().rename("trial"), first, means, stds,
    ], axis=1)
    return table


def ordered(study: StudyRuns, configs: pd.DataFrame) -> pd.DataFrame:
    """Designs that keep their order (cumulative) in design order (fewest components first,
    then trial number); the others best first by the objective's mean."""
    if configs.empty:
        return configs
    if study.kind.ordered:
        comps = [c for c in configs.columns if c.startswith(COMP)]
        key = configs[comps].fillna(False).astype(bool).sum(axis=1) if comps else 0
        return configs.assign(_k=key).sort_values(["_k", "trial"], kind="stable").drop(
            columns="_k")
    column = "mean." + study.objective
    if column not in configs:
        return configs
    return configs.sort_values(column, ascending=not study.maximize, kind="stable",
                               na_position="last")


def selection_table(study: StudyRuns, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """The complete runs as :mod:`ablate.selection` reads them (same index)."""
    runs = study.complete() if runs is None else runs
    column = objective_column(study)
    objective = runs[column] if column in runs else pd.Series(float("nan"), index=runs.index)
    return pd.DataFrame({"config": runs["config"], "objective": objective,
                         "order": runs["trial"], "repeat": runs["repeat"]}, index=runs.index)


def best_label(study: StudyRuns, configs: pd.DataFrame) -> str | None:
    """The best configuration among ``configs`` by the one rule of :mod:`ablate.selection`
    (mean objective over repeats, direction-aware, deterministic ties)."""
    runs = study.complete()
    runs = runs[runs["config"].isin(configs.index)]
    choice = selection.best(selection_table(study, runs), study.maximize)
    return choice.config if choice is not None else None


def baseline_label(study: StudyRuns, configs: pd.DataFrame) -> str | None:
    """The parent's baseline label when it names a configuration present here; for design
    studies without one, the configuration with every component off (if any)."""
    if study.baseline and study.baseline in configs.index:
        return study.baseline
    if study.kind.sampled or configs.empty:
        return None
    comps = [c for c in configs.columns if c.startswith(COMP)]
    if not comps:
        return None
    off = configs[comps].eq(False).all(axis=1)
    return str(off[off].index[0]) if off.any() else None


def representative(study: StudyRuns, label: str) -> pd.Series | None:
    """The run shown for a configuration in the per-run tables: the repeat holding the median
    of its objective values (the worse middle one with an even count), by
    :func:`ablate.selection.representative`, so a lucky seed is not picked."""
    runs = study.complete()
    runs = runs[runs["config"] == label]
    if runs.empty:
        return None
    row = selection.representative(selection_table(study, runs), study.maximize)
    return runs.loc[row] if row is not None else runs.iloc[0]


def run_title(run: pd.Series, repeats: int) -> str:
    """``<config> (trial N, repeat r of k)`` for headings."""
    trial = run["trial"]
    where = [f"trial {int(trial)}" if trial is not pd.NA else f"run {run['run_id'][:8]}"]
    if repeats > 1:
        where.append(f"repeat {run['repeat']} of {repeats}, median by objective")
    return f"{run['config']} ({', '.join(where)})"
