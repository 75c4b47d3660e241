"""Tables of studies and trials for the terminal (``study list`` / ``study show``)."""

from __future__ import annotations

import optuna
import pandas as pd
from optuna.trial import TrialState

from ablate.stores import Stores
from ablate.study.storage import (
    REASON_ATTR,
    REPEAT_ATTR,
    load_stored_spec,
    open_storage,
    study_names,
)


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


def list_studies(stores: Stores) -> pd.DataFrame:
    """One row per study in the storage."""
    rows = []
    if study_names(stores):
        storage = open_storage(stores)
        for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
            study = optuna.load_study(study_name=summary.study_name, storage=storage)
            states = [t.state for t in study.get_trials(deepcopy=False)]
            best = None
            if len(study.directions) == 1 and TrialState.COMPLETE in states:
                best = study.best_value
            rows.append({
                "study": summary.study_name,
                "trials": len(states),
                "complete": states.count(TrialState.COMPLETE),
                "running": states.count(TrialState.RUNNING),
                "waiting": states.count(TrialState.WAITING),
                "failed": states.count(TrialState.FAIL),
                "best": best,
                "started": summary.datetime_start,
            })
    return pd.DataFrame(rows)
