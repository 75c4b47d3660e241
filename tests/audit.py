"""What a crash may never do to a fixed-design study, counted from its stores.

Read from the stores only (Optuna, MLflow, the report's reader): configurations x seeds lost
(no COMPLETE trial), duplicated (more than one COMPLETE trial, COMPLETE MLflow run or report
row), trials or runs left RUNNING (or queued), and COMPLETE trials whose MLflow run is not the
one COMPLETE run of their entry. Used by the kill-anywhere tests and ``benchmarks/soak.py``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from ablate.reporting.runs import load_runs
from ablate.stores import resolve_stores
from ablate.study import RUN_ID_ATTR, Entry, design_entries, load_stored_spec
from ablate.study.queue import entry_of
from ablate.tracking import names as keys


@dataclass
class Audit:
    entries: int = 0
    lost: list[Entry] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    running: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    parents: int = 0
    parent_has_spec: bool = False
    dead_attempts: int = 0

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.running or self.mismatched) and (
            self.parents == 1 and self.parent_has_spec)


def audit(store: Path, name: str) -> Audit:
    """Audit study ``name`` in the embedded store folder ``store``."""
    stores = resolve_stores(store)
    spec = load_stored_spec(stores, name)
    entries = design_entries(spec)
    out = Audit(entries=len(entries))
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{store / 'optuna.db'}")
    trials = study.get_trials(deepcopy=False)
    out.running = [f"trial {t.number} {t.state.name}" for t in trials
                   if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    out.dead_attempts = sum(t.state == TrialState.FAIL for t in trials)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    by_entry = Counter(entry_of(t) for t in complete)
    out.lost = [e for e in entries if by_entry[e] == 0]
    out.duplicated = [f"{e} x{n} in Optuna" for e, n in by_entry.items() if n > 1]

    client = MlflowClient(tracking_uri=stores.tracking_uri)
    experiment = client.get_experiment_by_name(name).experiment_id
    runs = client.search_runs([experiment], max_results=10_000)
    parents = [r for r in runs if r.data.tags.get(keys.TAG_ROLE) == keys.ROLE_PARENT]
    out.parents = len(parents)
    out.parent_has_spec = bool(parents) and keys.SPEC_ARTIFACT in {
        a.name for a in _artifact_dir(store, parents[0]).glob("*")}
    trial_runs = [r for r in runs if r.data.tags.get(keys.TAG_ROLE) == keys.ROLE_TRIAL]
    out.running += [f"run {r.info.run_id} RUNNING" for r in trial_runs
                    if r.info.status == "RUNNING"]
    done = [r for r in trial_runs
            if r.info.status == "FINISHED" and r.data.tags.get(keys.TAG_STATE) == "COMPLETE"]
    run_entries = Counter(Entry(r.data.tags[keys.TAG_CONFIG], int(r.data.tags[keys.TAG_REPEAT]))
                          for r in done)
    out.duplicated += [f"{e} x{n} in MLflow" for e, n in run_entries.items() if n > 1]
    expected = {t.user_attrs.get(RUN_ID_ATTR) for t in complete}
    out.mismatched = sorted({r.info.run_id for r in done} ^ expected)

    report = load_runs(stores, name, reader="sql")
    counted = report.runs[report.runs["state"] == "COMPLETE"]
    rows = Counter(zip(counted["config"], counted["repeat"], strict=True))
    out.duplicated += [f"{e} x{n} in the report" for e, n in rows.items() if n > 1]
    if len(report.complete()) != len(entries) - len(out.lost):
        out.mismatched.append(f"report counts {len(report.complete())} configurations x seeds")
    return out


def _artifact_dir(store: Path, run) -> Path:  # noqa: ANN001 - an MLflow Run
    return store / "artifacts" / run.info.artifact_uri.removeprefix("mlflow-artifacts:/")
