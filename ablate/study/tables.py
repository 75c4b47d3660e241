"""The table of a study's trials for the terminal (``study show``), and its best configuration."""

from __future__ import annotations

from dataclasses import dataclass

import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from ablate.stores import Stores
from ablate.study.storage import (
    CONFIG_PARAM,
    REASON_ATTR,
    REPEAT_ATTR,
    SPEC_ATTR,
    load_stored_spec,
    open_storage,
)
from ablate.study.summaries import TrialRecord, best_choice


@dataclass(frozen=True)
class Best:
    """The best configuration of a study (:mod:`ablate.selection`) and its representative
    trial. In a search, one trial trains all repeats of a configuration and its value is their
    mean; in a fixed design, each trial is one run."""

    config: str
    mean: float
    trial: FrozenTrial
    trials: int  # runs counted for the configuration


def best_configuration(study: optuna.Study) -> Best | None:
    """The study's best configuration by the one rule, from its complete trials (None for a
    multi-objective study or without a complete trial)."""
    if len(study.directions) > 1:
        return None
    trials = {t.number: t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
    chosen = best_choice((TrialRecord.of(t) for t in trials.values()),
                         study.direction == optuna.study.StudyDirection.MAXIMIZE)
    if chosen is None:
        return None
    choice, number = chosen
    trial = trials[number]
    runs = choice.n
    if CONFIG_PARAM not in trial.params:  # a search trial trains every repeat
        design = study.user_attrs.get(SPEC_ATTR, {}).get("design", {})
        runs = int(design.get("repeats", 1)) if isinstance(design, dict) else 1
    return Best(choice.config, choice.mean, trial, runs)


def load_study(stores: Stores, name: str) -> optuna.Study:
    """The Optuna study ``name`` (its spec checked first: an unknown name is a clear error)."""
    load_stored_spec(stores, name)
    return optuna.load_study(study_name=name, storage=open_storage(stores))


def study_table(stores: Stores, name: str) -> pd.DataFrame:
    """One row per trial: number, state, objective value(s), configuration, reason."""
    spec = load_stored_spec(stores, name)
    study = optuna.load_study(study_name=name, storage=open_storage(stores))
    metrics = [o.metric for o in spec.objectives] or [spec.objective.metric]
    rows = []
    for t in study.get_trials(deepcopy=False):
        row: dict[str, object] = {"trial": t.number, "state": t.state.name}
        for metric, value in zip(metrics, t.values or [None] * len(metrics), strict=True):
            row[metric] = value
        row.update(t.params)
        if REPEAT_ATTR in t.user_attrs and spec.design.max_repeats > 1:
            row["repeat"] = t.user_attrs[REPEAT_ATTR]
        if t.state == TrialState.PRUNED and t.last_step is not None:
            row["reason"] = f"pruned at epoch {t.last_step}"
        elif t.state == TrialState.FAIL and REASON_ATTR not in t.user_attrs:
            row["reason"] = "worker died or was interrupted (queued again)"
        else:
            row["reason"] = t.user_attrs.get(REASON_ATTR, "")
        rows.append(row)
    return pd.DataFrame(rows)
