"""Studies: create an Optuna study from a spec, and run its trials through ``train()``.

The names below load on first use (PEP 562), so that reading a study (``study list``,
``study show``) imports neither torch nor the model libraries that running one needs. The
checks before anything is written are in :mod:`ablate.runs.preflight` (a submodule, so not
re-exported here under the same name).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ablate._lazy import lazy

# public name -> the submodule that defines it
_EXPORTS = {
    "check_spec": "create",
    "create_study": "create",
    "join_or_create": "create",
    "prepare": "create",
    "resolve_target": "create",
    "TrialFailed": "objective",
    "TrialObjective": "objective",
    "Entry": "queue",
    "design_entries": "queue",
    "queue_once": "queue",
    "TooManyFailures": "runner",
    "budget": "runner",
    "run_study": "runner",
    "work": "runner",
    "REASON_ATTR": "storage",
    "RUN_ID_ATTR": "storage",
    "SPEC_ATTR": "storage",
    "load_stored_spec": "storage",
    "open_storage": "storage",
    "study_names": "storage",
    "list_summaries": "summaries",
    "study_table": "tables",
    "run_workers": "workers",
}

if TYPE_CHECKING:
    from ablate.study.create import (
        check_spec,
        create_study,
        join_or_create,
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
    from ablate.study.summaries import list_summaries
    from ablate.study.tables import study_table
    from ablate.study.workers import run_workers


__getattr__, __dir__ = lazy(__name__, _EXPORTS)


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
    "list_summaries",
    "load_stored_spec",
    "open_storage",
    "prepare",
    "queue_once",
    "resolve_target",
    "run_study",
    "run_workers",
    "study_names",
    "study_table",
    "work",
]
