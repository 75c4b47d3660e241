"""Read a study's tracked runs back from MLflow, in bulk (one search, not one call per run)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pandas as pd

from ablate import tracking as keys
from ablate.errors import AblateError
from ablate.stores import Stores


@dataclass
class StudyRuns:
    """The trial runs of one study as a table, and what the parent run says about the study."""

    name: str
    task: str
    objective: str
    direction: str
    search: dict[str, str]  # dotted path -> distribution type
    classes: list[str]
    runs: pd.DataFrame  # one row per trial run: columns params.*, metrics.*, tags.*
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"

    def by_state(self, state: str) -> pd.DataFrame:
        return self.runs[self.runs[f"tags.{keys.TAG_STATE}"] == state]

    def complete(self) -> pd.DataFrame:
        """Complete trials, best first; a retried trial number counts once (its latest run)."""
        done = self.by_state("COMPLETE").sort_values("start_time")
        done = done.drop_duplicates(subset=[f"tags.{keys.TAG_TRIAL}"], keep="last")
        column = f"metrics.{self.objective}"
        return done.sort_values(column, ascending=not self.maximize, na_position="last")


def load_runs(stores: Stores, study: str) -> StudyRuns:
    """All runs of ``study`` from the tracking store."""
    from ablate.tracking import Tracker

    tracker = Tracker(stores)
    experiment = tracker.experiment_id(study, create=False)
    if experiment is None:
        raise AblateError(
            f"no MLflow experiment named '{study}' in {stores.tracking_uri}; run the study first "
            f"(`ablate study run {study}`) or point --tracking-uri/--store at its store"
        )
    import mlflow

    mlflow.set_tracking_uri(stores.tracking_uri)
    runs = mlflow.search_runs(
        experiment_ids=[experiment], output_format="pandas", max_results=1_000_000
    )
    role = f"tags.{keys.TAG_ROLE}"
    if runs.empty or role not in runs:
        raise AblateError(f"study '{study}' has no tracked runs in {stores.tracking_uri} yet")
    parents = runs[runs[role] == "parent"]
    trials = runs[runs[role] == "trial"].copy()
    if parents.empty:
        raise AblateError(f"study '{study}' has no parent run in {stores.tracking_uri}")
    parent = parents.iloc[0]

    def tag(name: str, default: str = "") -> str:
        value = parent.get(f"tags.{name}")
        return default if value is None or value != value else str(value)

    for column in (f"tags.{keys.TAG_STATE}", f"tags.{keys.TAG_TRIAL}", f"tags.{keys.TAG_REASON}"):
        if column not in trials:
            trials[column] = None
    trials["trial"] = pd.to_numeric(trials[f"tags.{keys.TAG_TRIAL}"], errors="coerce")
    return StudyRuns(
        name=study,
        task=tag(keys.TAG_TASK, "binary"),
        objective=tag(keys.TAG_OBJECTIVE, "val_iou"),
        direction=tag(keys.TAG_DIRECTION, "maximize"),
        search=json.loads(tag(keys.TAG_SEARCH, "{}")),
        classes=json.loads(tag(keys.TAG_CLASSES, "[]")),
        runs=trials,
    )
