"""Trivial predictors: what predicting one class everywhere would score, so that a reader sees
at once whether a model learned anything.

The class balance comes from a run's tracked confusion counts (the rows of each split's matrix
are its labelled pixels per class, at the resolution the metrics are measured at). The
majority class is chosen on the train split, never on test; its scores, and for a binary task
those of predicting the positive class everywhere, are computed on the validation split (the
objective's) with the same score functions as the models' (:mod:`ablate.metrics.scores`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ablate.metrics.scores import matrix_scores
from ablate.naming import slug
from ablate.reporting.configs import best_label, representative
from ablate.reporting.runs import StudyRuns
from ablate.reporting.sections import Section, num
from ablate.tracking import names as keys

CHOICE_SPLIT = "train"  # the split the majority class is chosen on
SCORE_SPLIT = "val"  # the split the constants are scored on (the objective's)
ACCURACY = "accuracy"


@dataclass
class Constant:
    """One constant predictor and its scores on the scored split."""

    label: str  # "the majority class `cell` everywhere", "`membrane` everywhere (all-positive)"
    cls: int
    scores: dict[str, float]


@dataclass
class Trivial:
    """The trivial predictors of a study, and the best configuration's scores beside them."""

    config: str  # the configuration whose run gave the class balance (the best one)
    run_id: str
    majority: str  # the train split's majority class
    metrics: list[str]  # the score names compared (objective's first, then accuracy)
    constants: list[Constant]
    best: dict[str, float] = field(default_factory=dict)  # best configuration's means

    @property
    def beaten(self) -> bool | None:
        """Whether the best configuration is above every constant on every compared score
        (None: a score is missing)."""
        verdicts = []
        for metric in self.metrics:
            mine = self.best.get(metric, math.nan)
            for constant in self.constants:
                theirs = constant.scores.get(metric, math.nan)
                if math.isnan(mine) or math.isnan(theirs):
                    return None
                verdicts.append(mine > theirs)
        return all(verdicts) if verdicts else None

    def as_dict(self) -> dict[str, Any]:
        """The numbers for the JSON report (NaN as null)."""
        def plain(values: dict[str, float]) -> dict[str, float | None]:
            return {k: (None if math.isnan(v) else v) for k, v in values.items()}

        return {
            "split": SCORE_SPLIT, "chosen_on": CHOICE_SPLIT, "config": self.config,
            "run_id": self.run_id, "majority": self.majority, "metrics": self.metrics,
            "constants": [{"label": c.label, "class": c.cls,
                           "scores": plain({m: c.scores.get(m, math.nan)
                                            for m in self.metrics})}
                          for c in self.constants],
            "best": plain(self.best), "beaten": self.beaten,
        }


def constant_matrix(labelled: np.ndarray, cls: int) -> np.ndarray:
    """The confusion matrix (rows = target) of predicting ``cls`` for every pixel of a split
    whose labelled pixels per class are ``labelled``."""
    matrix = np.zeros((len(labelled), len(labelled)), dtype=np.int64)
    matrix[:, cls] = labelled
    return matrix


def split_balance(study: StudyRuns, run: pd.Series) -> dict[str, np.ndarray]:
    """``{split: labelled pixels per class}`` of a run: the row sums of its confusion matrices
    artifact, or (older stores) its count metrics."""
    uri = run.get("artifact_uri")
    text = None
    if study.artifacts is not None and isinstance(uri, str):
        text = study.artifacts.text(str(run["run_id"]), uri, keys.MATRICES_ARTIFACT)
    if text:
        return {split: np.asarray(matrix, dtype=np.int64).sum(axis=1)
                for split, matrix in json.loads(text).items()}
    out = {}
    for split in (CHOICE_SPLIT, SCORE_SPLIT):
        if study.task == "binary":
            tp, fp, fn, tn = (_metric(run, f"{split}_{c}") for c in ("tp", "fp", "fn", "tn"))
            per_class = [tn + fp, tp + fn]
        else:
            per_class = [_metric(run, f"{split}_tp_{slug(c)}")
                         + _metric(run, f"{split}_fn_{slug(c)}") for c in study.classes]
        if per_class and not any(math.isnan(v) for v in per_class):
            out[split] = np.asarray(per_class, dtype=np.int64)
    return out


def _metric(run: pd.Series, name: str) -> float:
    value = run.get(f"metrics.{name}")
    return math.nan if value is None or value != value else float(value)


def score_names(study: StudyRuns) -> list[str]:
    """The scores compared: the objective's (when counts give it) and pixel accuracy."""
    objective = study.objective.removeprefix(SCORE_SPLIT + "_")
    names = [objective] if study.objective.startswith(SCORE_SPLIT + "_") else []
    return list(dict.fromkeys([*names, ACCURACY]))


def class_names(study: StudyRuns, count: int) -> list[str]:
    if len(study.classes) == count:
        return list(study.classes)
    if study.task == "binary" and count == 2:
        return ["background", "foreground"]
    return [f"class_{i}" for i in range(count)]


def trivial(study: StudyRuns, configs: pd.DataFrame) -> Trivial | None:
    """The trivial predictors from the best configuration's representative run (None: no
    complete run, or its counts do not say the class balance of train and val)."""
    label = best_label(study, configs)
    run = representative(study, label) if label is not None else None
    if label is None or run is None:
        return None
    balance = split_balance(study, run)
    choose, scored = balance.get(CHOICE_SPLIT), balance.get(SCORE_SPLIT)
    if choose is None or scored is None or len(choose) != len(scored) or choose.sum() == 0:
        return None
    names = class_names(study, len(scored))
    metrics = score_names(study)
    majority = int(np.argmax(choose))
    constants = [(f"the majority class `{names[majority]}` everywhere", majority)]
    if study.task == "binary":  # both constants, the positive one marked
        other = 1 - majority
        constants.append((f"`{names[other]}` everywhere", other))
        constants.sort(key=lambda c: c[1])
        constants[1] = (constants[1][0] + " (all-positive)", 1)
    out = []
    for text, cls in constants:
        scores = matrix_scores(constant_matrix(scored, cls), study.task, names)
        kept = {m: float(scores[m]) for m in metrics if m in scores}
        out.append(Constant(text, cls, kept))
    metrics = [m for m in metrics if all(m in c.scores for c in out)]
    if not metrics:
        return None
    best = {m: float(configs.loc[label].get(f"mean.{SCORE_SPLIT}_{m}", math.nan))
            for m in metrics}
    return Trivial(label, str(run["run_id"]), names[majority], metrics, out, best)


def trivial_line(result: Trivial) -> str:
    """One line for under the ablation table."""
    def scores(values: dict[str, float]) -> str:
        return ", ".join(f"{m} {num(values.get(m, math.nan), 3)}" for m in result.metrics)

    parts = [f"{c.label}: {scores(c.scores)}" for c in result.constants]
    verdict = {True: "above every trivial predictor on each of these",
               False: "**not above every trivial predictor**: it has learned little or nothing",
               None: "not comparable (a score is missing)"}[result.beaten]
    return (f"Trivial predictors on {SCORE_SPLIT} (class balance of `{result.config}`'s "
            f"counts; majority class chosen on {CHOICE_SPLIT}): " + "; ".join(parts)
            + f". Best configuration `{result.config}` (mean): {scores(result.best)}: "
            + verdict + ".")


def add_trivial(section: Section, study: StudyRuns, configs: pd.DataFrame) -> Trivial | None:
    """Put the trivial predictors' line first under ``section``'s table (the ablation table);
    returns their numbers (None: not computable, and nothing is added)."""
    result = trivial(study, configs)
    if result is not None:
        section.notes.insert(0, trivial_line(result))
    return result
