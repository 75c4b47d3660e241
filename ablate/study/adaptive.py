"""Adaptive repeats: a seed is added only to configurations whose comparison is undecided.

A design with ``repeats: {min, max}`` queues ``min`` seeds of every configuration when it is
created. From then on, whenever a worker is about to take a trial (under the study's budget
lock), :func:`top_up` derives from the finished trials alone which (configuration, repeat)
entries should exist, and queues those that do not exist yet in any state:

- the comparisons are the design's (:func:`ablate.designs.comparisons`): each configuration
  with the baseline, and in a cumulative design with its predecessor too;
- a comparison is looked at once every seed tried so far of the configuration, and the
  reference's runs at those seeds, have finished (none waiting or running);
- its per-seed differences over the seeds both completed, in seed order, are replayed through
  the sequential rule (:func:`ablate.inference.final_decision`, Bonferroni over the design's
  comparisons, the spec's ``report.alpha`` and ``report.equivalence_margin``; ``identical``
  only between bit-reproducible runs) exactly as the report replays them; while it is
  undecided and the configuration has fewer than ``max`` seeds, the configuration's next
  repeat is wanted, and the reference gets that seed too (pairing needs both runs of a seed).

Nothing here remembers anything: the wanted entries follow from the results, so a worker
killed after queueing some of them and the next worker to decide queue each entry exactly
once. The study is done when nothing is wanted and nothing is waiting or running.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import optuna
from optuna.trial import FrozenTrial, TrialState

from ablate.designs import comparisons
from ablate.inference import Decision, SequentialPlan, final_decision
from ablate.inference.paired import differences
from ablate.spec import StudySpec
from ablate.study.queue import Entry, queue_once
from ablate.study.storage import CONFIG_PARAM, INEXACT_ATTR, REPEAT_ATTR

_PENDING = (TrialState.WAITING, TrialState.RUNNING)


@dataclass
class Seeds:
    """What the trials of one configuration hold: ``values`` of complete repeats, ``tried``
    every repeat with a trial in any state, ``pending`` repeats waiting or running."""

    values: dict[int, float] = field(default_factory=dict)
    tried: set[int] = field(default_factory=set)
    pending: set[int] = field(default_factory=set)
    exact: bool = True  # every complete repeat is bit-reproducible (no INEXACT_ATTR)


def plan_for(spec: StudySpec) -> SequentialPlan:
    """The sequential plan of an adaptive design (the report rebuilds the same one)."""
    design = spec.design
    return SequentialPlan(
        design.min_repeats, design.max_repeats, alpha=spec.report.alpha,
        rows=max(1, len(comparisons(design))), maximize=spec.objective.direction == "maximize",
        equivalence_margin=spec.report.equivalence_margin)


def collect(trials: Iterable[FrozenTrial]) -> dict[str, Seeds]:
    """The trials of a fixed design by configuration (first objective's value)."""
    out: dict[str, Seeds] = {}
    for trial in trials:
        fixed = trial.system_attrs.get("fixed_params", {})
        label = trial.params.get(CONFIG_PARAM, fixed.get(CONFIG_PARAM))
        if label is None or REPEAT_ATTR not in trial.user_attrs:
            continue
        seeds = out.setdefault(str(label), Seeds())
        repeat = int(trial.user_attrs[REPEAT_ATTR])
        seeds.tried.add(repeat)
        if trial.state in _PENDING:
            seeds.pending.add(repeat)
        elif trial.state == TrialState.COMPLETE and trial.values:
            value = float(trial.values[0])
            if math.isfinite(value):
                seeds.values[repeat] = value
            if trial.user_attrs.get(INEXACT_ATTR):
                seeds.exact = False
    return out


def wanted(pairs: list[tuple[str, str]], seeds: dict[str, Seeds],
           plan: SequentialPlan) -> tuple[set[Entry], dict[str, str]]:
    """Entries missing from ``seeds`` that the comparisons need now, and why (by label)."""
    add: set[Entry] = set()
    why: dict[str, str] = {}
    for label, reference in pairs:
        mine, theirs = seeds.get(label, Seeds()), seeds.get(reference, Seeds())
        if mine.pending or mine.tried & theirs.pending or not mine.tried:
            continue  # a look waits for every seed tried so far
        exact = replace(plan, exact=plan.exact and mine.exact and theirs.exact)
        state = final_decision(differences(mine.values, theirs.values), exact)
        if state.decision != Decision.UNDECIDED:
            continue
        # Seeds the configuration has (as another row's reference, or from a queueing cut
        # short) and this reference lacks are paired first; the next look comes after.
        unpaired = {Entry(reference, r) for r in mine.tried - theirs.tried}
        following = max(mine.tried) + 1
        if unpaired:
            add |= unpaired
        elif following < plan.max_n:
            add |= {Entry(label, following), Entry(reference, following)}
        else:
            continue
        why.setdefault(label, f"{label} vs {reference} undecided after {state.n} seed(s)")
    existing = {Entry(label, r) for label, s in seeds.items() for r in s.tried}
    return add - existing, why


def top_up(study: optuna.Study, storage: optuna.storages.RDBStorage, spec: StudySpec,
           echo: Callable[[str], None] | None = None) -> list[Entry]:
    """Queue the seeds undecided comparisons need (call under the budget lock), each entry
    once (:func:`~ablate.study.queue.queue_once`, one transaction); returns the entries
    queued. Does nothing for fixed repeats."""
    if not spec.design.adaptive:
        return []
    seeds = collect(study.get_trials(deepcopy=False))
    add, why = wanted(comparisons(spec.design), seeds, plan_for(spec))
    queued = queue_once(study, storage, sorted(add, key=lambda e: (e.repeat, e.label)))
    if queued and echo is not None:
        shown = ", ".join(f"{label} seed {spec.seed + repeat}" for label, repeat in queued)
        echo(f"adaptive repeats: queued {shown} ({'; '.join(why.values()) or 'pairing'})")
    return queued
