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

import copy
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ablate.reporting.runs import COMP, VALUE, StudyRuns
from ablate.reporting.sections import Section, Table, num

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


@dataclass
class Rebuilt:
    """The configurations of a search as Optuna trials (one per configuration, trial order):
    what the importances and the parallel-coordinates plot read. An Optuna study is made of
    them only to compute importances (adding 1,000 trials to one copies each: ~0.3 s)."""

    name: str
    direction: Any  # optuna.study.StudyDirection
    trials: list[Any] = field(default_factory=list)  # FrozenTrial

    def get_trials(self, deepcopy: bool = False) -> list[Any]:
        return copy.deepcopy(self.trials) if deepcopy else self.trials

    def as_study(self) -> Any:
        """An in-memory ``optuna.Study`` holding the trials."""
        import optuna

        study = optuna.create_study(study_name=self.name, direction=self.direction)
        study.add_trials(self.trials)
        return study


def rebuild(study: StudyRuns, configs: pd.DataFrame) -> Rebuilt:
    """One COMPLETE trial per configuration whose searched values are all known (trial order:
    first trial number)."""
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
    casts = {"bool": bool, "int": int, "float": float}
    values = {p: [casts.get(study.search[p], _choice)(v) for v in usable[c]]
              for p, c in columns.items()}
    trials = [optuna.trial.create_trial(params={p: values[p][i] for p in columns},
                                        distributions=distributions, value=float(value))
              for i, value in enumerate(usable[objective])]
    direction = optuna.study.StudyDirection.MAXIMIZE if study.maximize \
        else optuna.study.StudyDirection.MINIMIZE
    return Rebuilt(study.name, direction, trials)


def fanova_key(study: StudyRuns, rebuilt: Rebuilt) -> str:
    """A digest of everything the importances depend on: each trial's params and value, the
    distributions, the forest's settings and the versions of Optuna and scikit-learn."""
    import hashlib
    from importlib import metadata

    from optuna.distributions import distribution_to_json

    trials = rebuilt.get_trials(deepcopy=False)
    spaces = trials[0].distributions if trials else {}
    payload = {
        "objective": study.objective, "fanova": FANOVA,
        "versions": [metadata.version("optuna"), metadata.version("scikit-learn")],
        "distributions": {p: distribution_to_json(d) for p, d in sorted(spaces.items())},
        "trials": [[sorted(t.params.items()), t.value] for t in trials],
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def fanova_scores(study: StudyRuns, rebuilt: Rebuilt) -> tuple[dict[str, float], dict[str, Any]]:
    """The fANOVA importance of each searched value, and what to store to reuse them
    (``{"key", "scores"}``, see TAG_IMPORTANCE): the stored ones when their inputs are the same
    (a study stores them when it publishes its report; scikit-learn's import alone takes
    longer than the rest of a report), else computed now."""
    key = fanova_key(study, rebuilt)
    stored = study.stored_importance
    if stored.get("key") == key and isinstance(stored.get("scores"), dict):
        return {str(p): float(v) for p, v in stored["scores"].items()}, stored
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    scores = get_param_importances(rebuilt.as_study(),
                                   evaluator=FanovaImportanceEvaluator(**FANOVA))
    scores = {str(p): float(v) for p, v in scores.items()}
    return scores, {"key": key, "scores": scores}


def importance_section(study: StudyRuns, rebuilt: Rebuilt | None,
                       ) -> tuple[Section, dict[str, Any] | None]:
    """fANOVA importance of each searched value for the objective, or one line why not; and
    what to store to reuse the importances (None: none computed)."""
    title = "Parameter importance"
    count = len(rebuilt.get_trials(deepcopy=False)) if rebuilt is not None else 0
    values = len(study.search)
    needed = max(MIN_TRIALS, MIN_PER_VALUE * values)
    stable = max(10, STABLE_PER_VALUE * values)
    if rebuilt is None or count < needed:
        return Section(title, [
            f"Skipped: fANOVA needs at least {needed} complete configurations with every "
            f"searched value known ({MIN_PER_VALUE} per searched value, {values} searched; "
            f"{count} here), and about {stable} for importances that do not change with a "
            "few more trials."]), None
    try:
        scores, keep = fanova_scores(study, rebuilt)
    except Exception as err:  # noqa: BLE001 - any failure is reported in one line
        first = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        return Section(title, [f"Skipped: fANOVA failed on the {count} trials ({first})."]), None
    data = pd.DataFrame({"parameter": list(scores), "importance": list(scores.values())})
    view = data.assign(importance=[num(v, 3) for v in data["importance"]])
    return Section(title, [
        f"Optuna's fANOVA importance (random forest of {FANOVA['n_trees']} trees, depth "
        f"{FANOVA['max_depth']}) of each searched value for `{study.objective}`, over {count} "
        "configurations (mean objective over repeats); the importances sum to 1. Parameters "
        "that never varied are left out."
    ] + ([f"Few configurations: {count} for {values} searched value(s); below about {stable} "
          f"({STABLE_PER_VALUE} per searched value) the importances change a lot with the "
          "trials: read them as a rough ranking."] if count < stable else []),
        Table("importance", data, view)), keep


def history_frame(study: StudyRuns, configs: pd.DataFrame) -> pd.DataFrame:
    """Trial number, final objective and best-so-far per configuration, in trial order."""
    objective = "mean." + study.objective
    frame = configs[["trial", objective]].dropna().sort_values("trial")
    values = frame[objective].astype(float)
    best = values.cummax() if study.maximize else values.cummin()
    return pd.DataFrame({"trial": frame["trial"].astype(int).to_numpy(),
                         "value": values.to_numpy(), "best": best.to_numpy()})

