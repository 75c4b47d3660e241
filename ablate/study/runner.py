"""Running a study: a worker takes trials until the study's configurations are all done.

Any number of workers (processes, machines) may run one study at once. Each counts the
study's trials and starts one under a lock, so a search never overshoots its trial budget and
a fixed design runs each configuration exactly once; a trial left by a dead worker is
detected by its stale heartbeat, failed with reason "worker died" and queued again.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from ablate.design import baseline_label
from ablate.search import build_pruner, build_sampler, grid_size
from ablate.spec import StudySpec
from ablate.stores import Stores
from ablate.study.create import check_spec, create_study, resolve_target
from ablate.study.objective import TrialFailed, TrialObjective
from ablate.study.recovery import StaleTrialHandler, requeue, sweep_runs
from ablate.study.storage import REASON_ATTR, BudgetLock, heartbeat_interval, open_storage
from ablate.tracking import Tracker, probe_tracking_server

Printer = Callable[[str], None]


class TooManyFailures(Exception):
    """The worker stopped after ``max_failures`` failed trials (the study itself is intact)."""


def budget(spec: StudySpec, objective: TrialObjective) -> int:
    """How many trials the study should finish."""
    if objective.design:
        return len(objective.design) * spec.design.repeats
    if spec.sampler.name == "grid":
        return min(spec.trials, grid_size(spec.search))
    return spec.trials


def next_action(study: optuna.Study, total: int, fixed: bool, more: bool) -> str:
    """``run`` a trial, ``wait`` for other workers' running trials, or ``done``.

    A search replaces failed trials until its budget is met; a fixed design counts a failed
    configuration as done (it would fail again) but re-runs one whose worker died.
    """
    trials = study.get_trials(deepcopy=False)
    states = Counter(t.state for t in trials)
    if states[TrialState.WAITING]:
        return "run"
    if not fixed:
        finished = states[TrialState.COMPLETE] + states[TrialState.PRUNED]
        if more or finished + states[TrialState.RUNNING] < total:
            return "run"
    return "wait" if states[TrialState.RUNNING] else "done"


def _sigterm_as_interrupt() -> None:
    # A polite kill (SIGTERM) re-queues the current trial like Ctrl-C does.
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (e.g. inside a test runner)
        pass


def run_study(
    target: str,
    stores: Stores,
    n_trials: int | None = None,
    timeout: float | None = None,
    overrides: list[str] | None = None,
    progress: bool = True,
    echo: Printer = print,
    profile: str | None = None,
    after_trial: Callable[[optuna.Study, FrozenTrial], None] | None = None,
) -> optuna.Study:
    """Run a study given by spec file or name, creating it first from a spec file.

    Without ``n_trials`` the worker runs until the study's budget (``trials``, or every
    configuration x repeat of a fixed design) is done, so a second call after an interruption
    finishes the job; with it, it runs ``n_trials`` more. It stops after ``max_failures``
    failed trials of its own.
    """
    spec, create = resolve_target(target, stores, overrides, profile)
    check_spec(spec)
    if create:
        create_study(spec, stores, checked=True)
    return work(spec, stores, n_trials, timeout, progress, echo, after_trial)


def work(
    spec: StudySpec,
    stores: Stores,
    n_trials: int | None,
    timeout: float | None,
    progress: bool,
    echo: Printer,
    after_trial: Callable[[optuna.Study, FrozenTrial], None] | None = None,
) -> optuna.Study:
    """The worker loop on an existing study. ``after_trial(study, trial)`` runs after each
    finished trial (the CLI publishes the study's summary with it)."""
    _sigterm_as_interrupt()
    probe_tracking_server(stores.tracking_uri)
    storage = open_storage(stores, StaleTrialHandler(stores), write=True)
    tracker = Tracker(stores)
    study = optuna.load_study(
        study_name=spec.name,
        storage=storage,
        sampler=build_sampler(spec.sampler, spec.search, spec.seed),
        pruner=build_pruner(spec.pruner),
    )
    parent_id = tracker.parent_run(spec, baseline_label(spec.design))
    optuna.storages.fail_stale_trials(study)
    sweep_runs(study, tracker, tracker.experiment_id(spec.name) or "")
    lock = BudgetLock(storage, stores, spec.name)
    objective = TrialObjective(spec, tracker, parent_id, progress, lock.release, echo)
    total = budget(spec, objective)
    echo(f"study '{spec.name}' ({spec.design.kind}, {total} trial(s) planned)\n"
         f"{stores.describe()}")
    failures: list[int] = []

    def on_trial_end(study: optuna.Study, frozen: FrozenTrial) -> None:
        echo(trial_line(study, frozen, spec))
        if frozen.state == TrialState.FAIL and REASON_ATTR in frozen.user_attrs:
            failures.append(frozen.number)
        if after_trial is not None:  # the caller's hook (ablate.publish), after the line
            after_trial(study, frozen)

    started, ran, told = time.monotonic(), 0, False
    try:
        while n_trials is None or ran < n_trials:
            if timeout is not None and time.monotonic() - started > timeout:
                echo(f"timeout: {timeout:g} s passed; not starting another trial")
                break
            with lock.held():
                optuna.storages.fail_stale_trials(study)
                action = next_action(study, total, bool(objective.design), n_trials is not None)
                if action == "run":
                    study.optimize(objective, n_trials=1, catch=(TrialFailed,),
                                   callbacks=[on_trial_end])
            if action == "done":
                break
            if action == "wait":
                if not told:
                    echo("waiting for trials still running elsewhere (a dead worker's trial is "
                         f"re-queued after {3 * heartbeat_interval()} s without a heartbeat)")
                    told = True
                time.sleep(min(5, heartbeat_interval()))
                continue
            ran += 1
            if len(failures) >= spec.max_failures:
                raise TooManyFailures(
                    f"stopping: {len(failures)} trials failed (max_failures="
                    f"{spec.max_failures}); see `ablate study show {spec.name}` for reasons"
                )
    except KeyboardInterrupt:
        if objective.last_trial is not None:
            requeue(study, objective.last_trial)
        echo("interrupted: the current trial is queued again; `ablate study run "
             f"{spec.name}` resumes")
        raise
    finally:
        tracker.end_parent(parent_id)
    if ran == 0:
        echo(f"nothing to run: the {total} planned trial(s) of '{spec.name}' are done "
             "(pass -n N to run N more)")
    return study


def trial_line(study: optuna.Study, trial: FrozenTrial, spec: StudySpec) -> str:
    """One line per finished trial: state, value(s), best so far or reason."""
    prefix = f"[{os.environ['ABLATE_WORKER']}] " if os.environ.get("ABLATE_WORKER") else ""
    label = trial.params.get("config")
    head = f"{prefix}trial {trial.number}" + (f" ({label})" if label else "")
    if trial.state == TrialState.COMPLETE:
        names = [o.metric for o in spec.objectives] or [spec.objective.metric]
        values = ", ".join(f"{n}={v:.4f}" for n, v in zip(names, trial.values, strict=True))
        text = f"{head}: COMPLETE {values}"
        if not spec.multi_objective:
            best = study.best_trial
            text += f" (best {best.value:.4f}, trial {best.number})"
        return text
    reason = trial.user_attrs.get(REASON_ATTR, "")
    return f"{head}: {trial.state.name}" + (f" ({reason})" if reason else "")
