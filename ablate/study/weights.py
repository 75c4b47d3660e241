"""``eval.save_weights: best``: a study keeps the weights of the run representing each
configuration (:func:`ablate.selection.representative`) and deletes the others'.

Every run logs ``model.pt`` as it ends. A configuration's other runs lose theirs only once it
can get no more runs that count, because a new repeat can move the median onto a run whose
weights would be gone: a search configuration when its trial has been told (its repeats all
run inside it), a fixed design's when every repeat is complete, and any configuration when
the study is done (adaptive repeats add seeds until then). Only runs whose Optuna trial is
finished and told are counted or touched, so a kill at any moment (before, during or after a
deletion) never leaves a configuration without its representative run's weights; a deletion
cut short is finished by the next call (each is idempotent).
"""

from __future__ import annotations

import optuna
import pandas as pd
from optuna.trial import TrialState

from ablate import selection
from ablate.designs import design_kind
from ablate.spec import StudySpec
from ablate.tracking import Tracker, discard_weights, selection_table, trial_runs

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
WHY = "deleted: not the run representing configuration {config} (eval.save_weights: best)"


def keep_representatives(study: optuna.Study, tracker: Tracker, spec: StudySpec,
                         done: bool = False) -> int:
    """Delete the weights of the runs that do not represent their configuration, in the
    configurations that can get no more runs (all of them with ``done``: the study is
    finished). Returns how many runs lost their ``model.pt``."""
    if spec.eval.save_weights != "best":
        return 0
    runs = trial_runs(tracker, spec.name)
    if not runs:
        return 0
    objective = (spec.objectives or [spec.objective])[0]
    table = selection_table(runs, objective.metric)
    trials = study.get_trials(deepcopy=False)
    finished = {t.number for t in trials if t.state in FINISHED}
    told = {t.number for t in trials if t.state == TrialState.COMPLETE}
    maximize = objective.direction == "maximize"
    deleted = 0
    for config, group in table.groupby("config", sort=False):
        if not group["trial"].isin(finished).all():
            continue  # a run of it is still training (or its trial not told yet)
        counted = group[(group["state"] == "COMPLETE") & group["trial"].isin(told)]
        if not (done or _complete(counted, spec)):
            continue
        keep = selection.representative(counted, maximize)
        if keep is None:
            continue
        for index, row in group.iterrows():
            if index != keep and not row["weights"]:
                discard_weights(tracker, str(row["run_id"]), WHY.format(config=config))
                deleted += 1
    return deleted


def _complete(counted: pd.DataFrame, spec: StudySpec) -> bool:
    """Whether a configuration's counted runs are all it will get before the study ends."""
    if design_kind(spec.design.kind).sampled:
        return not counted.empty  # one trial runs all its repeats
    if spec.design.adaptive:
        return False
    return counted["repeat"].nunique() >= spec.design.min_repeats
