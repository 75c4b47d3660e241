"""The queue of a fixed design: each configuration x seed entry queued exactly once.

A study's queue is the set of Optuna trials that carry an entry (a configuration label and a
repeat index). :func:`queue_once` adds the entries that no trial carries yet, in one
transaction; called again with the same entries it adds nothing. Study creation queues the
design's entries in the transaction that creates the study, every worker calls it again on
start-up (a no-op unless the study was made otherwise), and a later step that wants more
seeds of a configuration (adaptive repeats) calls it with the new repeat indices.
Callers hold the study's :class:`~ablate.study.storage.BudgetLock`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import optuna
from optuna.trial import FrozenTrial

from ablate.designs import configurations
from ablate.spec import StudySpec
from ablate.study import rdb
from ablate.study.storage import CONFIG_PARAM, REPEAT_ATTR


class Entry(NamedTuple):
    """One configuration x seed of a fixed design (the seed is the spec's seed + repeat)."""

    label: str
    repeat: int


def design_entries(spec: StudySpec) -> list[Entry]:
    """Every entry of the spec's fixed design in order (none for a search); with adaptive
    repeats, the ``min`` seeds every configuration gets."""
    return [Entry(config.label, repeat) for config in configurations(spec.design)
            for repeat in range(spec.design.min_repeats)]


def as_queued(entries: Iterable[Entry]) -> list[rdb.QueuedTrial]:
    """Entries as WAITING trials: the label as the fixed param, the repeat as a user attr."""
    return [rdb.QueuedTrial({CONFIG_PARAM: e.label}, {REPEAT_ATTR: e.repeat}) for e in entries]


def entry_of(trial: FrozenTrial) -> Entry | None:
    """The entry a trial carries (queued or running: its fixed params; else its params)."""
    label = trial.params.get(CONFIG_PARAM)
    if label is None:
        label = trial.system_attrs.get(rdb.FIXED_PARAMS, {}).get(CONFIG_PARAM)
    if label is None:
        return None
    return Entry(str(label), int(trial.user_attrs.get(REPEAT_ATTR, 0)))


def queue_once(
    study: optuna.Study, storage: optuna.storages.RDBStorage, entries: Sequence[Entry]
) -> list[Entry]:
    """Queue the entries no trial of ``study`` (kept in ``storage``) carries yet, in any
    state; returns them."""
    present = {entry_of(t) for t in study.get_trials(deepcopy=False)}
    missing = list(dict.fromkeys(e for e in entries if e not in present))
    if missing:
        rdb.enqueue(storage, storage.get_study_id_from_name(study.study_name),
                    as_queued(missing))
    return missing
