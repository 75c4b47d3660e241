"""Studies: create an Optuna study from a spec, and run its trials through ``train()``."""

from ablate.study.create import (
    check_spec,
    create_study,
    join_or_create,
    preflight,
    prepare,
    resolve_target,
)
from ablate.study.objective import TrialFailed, TrialObjective
from ablate.study.queue import Entry, design_entries, queue_once
from ablate.study.runner import TooManyFailures, budget, run_study, work
from ablate.study.storage import (
    REASON_ATTR,
    RUN_ID_ATTR,
    SPEC_ATTR,
    load_stored_spec,
    open_storage,
    study_names,
)
from ablate.study.tables import list_studies, study_table
from ablate.study.workers import run_workers

__all__ = [
    "Entry",
    "REASON_ATTR",
    "RUN_ID_ATTR",
    "SPEC_ATTR",
    "TooManyFailures",
    "TrialFailed",
    "TrialObjective",
    "budget",
    "check_spec",
    "create_study",
    "design_entries",
    "join_or_create",
    "list_studies",
    "load_stored_spec",
    "open_storage",
    "preflight",
    "prepare",
    "queue_once",
    "resolve_target",
    "run_study",
    "run_workers",
    "study_names",
    "study_table",
    "work",
]
