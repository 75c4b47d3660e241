"""Search designs: an in-memory Optuna study rebuilt from the tracked runs, and the parameter
importance of Optuna's fANOVA evaluator on it.

Each configuration becomes one trial: its searched values as params and its mean objective
over repeats as the value. Distributions are the recorded search space (the parent's
``ablate.search`` tag: type, low, high, log, step, choices), exactly as the study sampled them.
Stores written before the space was recorded whole hold only the types; there they come from
the observed values: float -> FloatDistribution(min, max), int -> IntDistribution(min, max),
categorical -> the observed choices, bool -> (False, True), and a float is log-scaled when all
values are positive, span a decade or more and their median lies nearer the geometric than the
arithmetic middle of the range (what log-uniform sampling, e.g. of a learning rate, gives).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from ablate.report.runs import COMP, VALUE, StudyRuns
from ablate.report.sections import Section, Table, num

MIN_TRIALS = 4
# Configurations per searched value: below MIN_PER_VALUE the forest cannot tell the values
# apart (the section says how many are needed); below STABLE_PER_VALUE the importances change
# a lot with the trials, and the section says so.
MIN_PER_VALUE, STABLE_PER_VALUE = 2, 5
# Optuna's default forest (64 trees, depth 64) takes ~20 s on 1,000 trials; 32 trees of depth 6
# take ~0.3 s and agree with it within 0.01 on the benchmark study.
FANOVA = {"n_trees": 32, "max_depth": 6, "seed": 0}


def _choice(value: Any) -> Any:
    if isinstance(value, list | dict):
        return json.dumps(value)
    return value


def looks_log(values: pd.Series) -> bool:
    """True for positive values spanning >= 1 decade whose median is nearer the range's
    geometric middle than its arithmetic middle (log-uniform sampling)."""
    numbers = values.astype(float).to_numpy()
    low, high = float(numbers.min()), float(numbers.max())
    if low <= 0 or high / low < 10:
        return False
    median = float(np.median(numbers))
    geometric, arithmetic = math.sqrt(low * high), (low + high) / 2
    return abs(math.log(median / geometric)) < abs(math.log(median / arithmetic))


def _recorded(recorded: dict[str, Any]) -> Any:
    """The Optuna distribution of a recorded search entry."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    kind, log, step = recorded["type"], bool(recorded.get("log", False)), recorded.get("step")
    if kind == "float":
        return FloatDistribution(float(recorded["low"]), float(recorded["high"]), log=log,
                                 step=float(step) if step else None)
    if kind == "int":
        return IntDistribution(int(recorded["low"]), int(recorded["high"]), log=log,
                               step=int(step) if step else 1)
    return CategoricalDistribution(tuple(_choice(c) for c in recorded["choices"]))


def _distribution(kind: str, values: pd.Series, log: bool | None = None,
                  recorded: dict[str, Any] | None = None) -> Any:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if recorded and recorded.get("type") == kind and kind != "bool":
        return _recorded(recorded)
    if kind == "bool":
        return CategoricalDistribution((False, True))
    if kind in ("float", "int"):
        numbers = values.astype(float)
        low, high = float(numbers.min()), float(numbers.max())
        if kind == "int":
            return IntDistribution(int(low), int(high))
        log = looks_log(values) if log is None else log and low > 0
        return FloatDistribution(low, high, log=log)
    return CategoricalDistribution(tuple(sorted({_choice(v) for v in values}, key=str)))


def _column(path: str, kind: str) -> str:
    return (COMP if kind == "bool" else VALUE) + path


def rebuild(study: StudyRuns, configs: pd.DataFrame) -> Any:
    """An in-memory ``optuna.Study`` with one COMPLETE trial per configuration whose searched
    values are all known (trial order: first trial number)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    objective = "mean." + study.objective
    columns = {path: _column(path, kind) for path, kind in study.search.items()}
    usable = configs.dropna(subset=[objective, *[c for c in columns.values() if c in configs]])
    usable = usable.sort_values("trial", kind="stable")
    columns = {p: c for p, c in columns.items() if c in usable}
    distributions = {p: _distribution(study.search[p], usable[c], study.log_scale.get(p),
                                      study.space.get(p))
                     for p, c in columns.items()}
    trials = []
    for _, row in usable.iterrows():
        params: dict[str, Any] = {}
        for path, column in columns.items():
            value = row[column]
            kind = study.search[path]
            params[path] = (bool(value) if kind == "bool" else int(value) if kind == "int"
                            else float(value) if kind == "float" else _choice(value))
        trials.append(optuna.trial.create_trial(
            params=params, distributions=distributions, value=float(row[objective])))
    rebuilt = optuna.create_study(study_name=study.name,
                                  direction="maximize" if study.maximize else "minimize")
    rebuilt.add_trials(trials)
    return rebuilt


def importance_section(study: StudyRuns, rebuilt: Any) -> Section:
    """fANOVA importance of each searched value for the objective, or one line why not."""
    title = "Parameter importance"
    count = len(rebuilt.get_trials(deepcopy=False)) if rebuilt is not None else 0
    values = len(study.search)
    needed = max(MIN_TRIALS, MIN_PER_VALUE * values)
    stable = max(10, STABLE_PER_VALUE * values)
    if count < needed:
        return Section(title, [
            f"Skipped: fANOVA needs at least {needed} complete configurations with every "
            f"searched value known ({MIN_PER_VALUE} per searched value, {values} searched; "
            f"{count} here), and about {stable} for importances that do not change with a "
            "few more trials."])
    try:
        from optuna.importance import FanovaImportanceEvaluator, get_param_importances

        scores = get_param_importances(rebuilt, evaluator=FanovaImportanceEvaluator(**FANOVA))
    except Exception as err:  # noqa: BLE001 - any failure is reported in one line
        first = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        return Section(title, [f"Skipped: fANOVA failed on the {count} trials ({first})."])
    data = pd.DataFrame({"parameter": list(scores), "importance": [float(v) for v in
                                                                    scores.values()]})
    view = data.assign(importance=[num(v, 3) for v in data["importance"]])
    return Section(title, [
        f"Optuna's fANOVA importance (random forest of {FANOVA['n_trees']} trees, depth "
        f"{FANOVA['max_depth']}) of each searched value for `{study.objective}`, over {count} "
        "configurations (mean objective over repeats); the importances sum to 1. Parameters "
        "that never varied are left out."
    ] + ([f"Few configurations: {count} for {values} searched value(s); below about {stable} "
          f"({STABLE_PER_VALUE} per searched value) the importances change a lot with the "
          "trials: read them as a rough ranking."] if count < stable else []),
        Table("importance", data, view))


def history_frame(study: StudyRuns, configs: pd.DataFrame) -> pd.DataFrame:
    """Trial number, final objective and best-so-far per configuration, in trial order."""
    objective = "mean." + study.objective
    frame = configs[["trial", objective]].dropna().sort_values("trial")
    values = frame[objective].astype(float)
    best = values.cummax() if study.maximize else values.cummin()
    return pd.DataFrame({"trial": frame["trial"].astype(int).to_numpy(),
                         "value": values.to_numpy(), "best": best.to_numpy()})

