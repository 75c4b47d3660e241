"""Running a study: a worker takes trials until the study's configurations are all done.

Any number of workers (processes, machines) may run one study at once. Each counts the
study's trials and starts one under a lock, so a search never overshoots its trial budget and
a fixed design runs each configuration exactly once; a trial left by a dead worker is
detected by its stale heartbeat, failed with reason "worker died" and queued again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from ablate.designs import configurations
from ablate.errors import AblateError, StoreLost
from ablate.runs import interrupts
from ablate.spec import StudySpec
from ablate.stores import DEFAULT_STORE, Stores
from ablate.study.adaptive import top_up
from ablate.study.create import ensure_parent_run, prepare
from ablate.study.objective import TrialObjective
from ablate.study.pruners import build_pruner
from ablate.study.queue import design_entries, queue_once
from ablate.study.recovery import (
    StaleTrialHandler,
    close_runs,
    fail_stale_trials,
    requeue,
    requeue_lost,
    sweep_runs,
)
from ablate.study.resume import checkpoint_root
from ablate.study.samplers import build_sampler
from ablate.study.search import grid_size
from ablate.study.storage import (
    REASON_ATTR,
    RETRIED_ATTR,
    BudgetLock,
    CreationLock,
    heartbeat_interval,
    open_storage,
)
from ablate.study.tables import best_configuration
from ablate.study.trial import Watches, run_trial
from ablate.study.weights import keep_representatives
from ablate.testing.faults import fault_point
from ablate.tracking import Tracker, probe_tracking_server
from ablate.training.fit import Progress
from ablate.training.memory import release_memory

Printer = Callable[[str], None]


class TooManyFailures(Exception):
    """The worker stopped after ``max_failures`` failed trials (the study itself is intact)."""


def budget(spec: StudySpec) -> int:
    """How many trials the study should finish."""
    design = configurations(spec.design)
    if design:
        return len(design) * spec.design.min_repeats
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


def run_study(
    target: str | StudySpec,
    stores: Stores,
    n_trials: int | None = None,
    timeout: float | None = None,
    overrides: list[str] | None = None,
    progress: Progress = True,
    echo: Printer = print,
    profile: str | None = None,
    threads: int | None = None,
    after_trial: Callable[[optuna.Study, FrozenTrial], None] | None = None,
) -> optuna.Study:
    """Run a study given by spec file, spec or name, creating (or joining) it from a spec.

    Without ``n_trials`` the worker runs until the study's budget (``trials``, or every
    configuration x repeat of a fixed design) is done, so a second call after an interruption
    finishes the job; with it, it runs ``n_trials`` more. It stops after ``max_failures``
    failed trials of its own. ``threads``: torch's intra-op threads in this worker (default:
    torch's own choice, all cores).
    """
    if threads is not None:
        torch.set_num_threads(threads)
    spec = prepare(target, stores, overrides, profile)
    return work(spec, stores, n_trials, timeout, progress, echo, after_trial)


def recover(study: optuna.Study, storage: optuna.storages.RDBStorage, tracker: Tracker,
            spec: StudySpec) -> None:
    """Finish what dead workers left half done (callers hold the BudgetLock): fail dead
    trials, queue again the ones never queued again, queue the design entries never queued."""
    fail_stale_trials(study, storage)
    requeue_lost(study, storage, tracker, spec.max_worker_deaths)
    queue_once(study, storage, design_entries(spec))


def _next(study: optuna.Study, storage: optuna.storages.RDBStorage, tracker: Tracker,
          spec: StudySpec, total: int, fixed: bool, more: bool, echo: Printer) -> str:
    """The next action, dead trials failed first, then the seeds adaptive repeats want
    queued (callers hold the BudgetLock). Before waiting or stopping, also dead trials a
    killed worker failed but never queued again."""
    fail_stale_trials(study, storage)
    top_up(study, storage, spec, echo)
    action = next_action(study, total, fixed, more)
    if action != "run" and requeue_lost(study, storage, tracker, spec.max_worker_deaths):
        action = next_action(study, total, fixed, more)
    return action


def log_path(stores: Stores, study: str) -> Path:
    """The study's log file: ``<store>/logs/<study>.log`` (failed trials' tracebacks)."""
    return (stores.folder or Path(DEFAULT_STORE).absolute()) / "logs" / f"{study}.log"


@contextlib.contextmanager
def trial_log(stores: Stores, study: str) -> Iterator[Path]:
    """Failed trials' tracebacks and Optuna's warnings go to the study's log file, not to the
    terminal (which gets one line per trial)."""
    path = log_path(stores, study)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(name)s %(message)s"))
    trials = logging.getLogger("ablate.trials")
    loggers = [trials, logging.getLogger("optuna")]
    for logger in loggers:
        logger.addHandler(handler)
    trials.setLevel(logging.INFO)
    trials.propagate = False
    optuna.logging.disable_default_handler()
    try:
        yield path
    finally:
        optuna.logging.enable_default_handler()
        for logger in loggers:
            logger.removeHandler(handler)
        trials.propagate = True
        handler.close()


def work(
    spec: StudySpec,
    stores: Stores,
    n_trials: int | None,
    timeout: float | None,
    progress: Progress,
    echo: Printer,
    after_trial: Callable[[optuna.Study, FrozenTrial], None] | None = None,
) -> optuna.Study:
    """The worker loop on an existing study. ``after_trial(study, trial)`` runs after each
    finished trial (the CLI publishes the study's summary with it)."""
    probe_tracking_server(stores.tracking_uri)
    handler = StaleTrialHandler(stores, spec.name, spec.max_worker_deaths)
    storage = open_storage(stores, handler, write=True)
    handler.storage = storage
    tracker = Tracker(stores)
    study = optuna.load_study(
        study_name=spec.name,
        storage=storage,
        sampler=build_sampler(spec.sampler, spec.search, spec.seed),
        pruner=build_pruner(spec.pruner),
    )
    with CreationLock(storage, stores, spec.name).held():
        parent_id = ensure_parent_run(tracker, spec)
    lock = BudgetLock(storage, stores, spec.name)
    objective = TrialObjective(spec, tracker, parent_id, progress, lock.release, echo,
                               checkpoint_root(stores, spec.name, spec.checkpoint_dir))
    watches = Watches.of(stores)
    total = budget(spec)
    adaptive = (f", up to {len(objective.design) * spec.design.max_repeats} with adaptive "
                "repeats" if spec.design.adaptive else "")
    echo(f"study '{spec.name}' ({spec.design.kind}, {total} trial(s) planned{adaptive}, "
         f"{torch.get_num_threads()} torch thread(s) in this worker)\n{stores.describe()}")
    with interrupts.interruptible(), trial_log(stores, spec.name) as log:
        try:
            with lock.held():
                recover(study, storage, tracker, spec)
            sweep_runs(study, tracker, tracker.experiment_id(spec.name) or "")
            ran = _loop(study, storage, tracker, spec, objective, lock, watches, total,
                        n_trials, timeout, echo, log, after_trial)
        except KeyboardInterrupt as err:
            interrupts.shield()
            why = interrupts.reason(err)  # "interrupted"; in a Slurm job, e.g. "time limit"
            _stopped(study, tracker, spec, objective.last_trial, watches, why)
            echo(f"{why}: the current trial is queued again; `ablate study run {spec.name}` "
                 "resumes")
            raise
        except StoreLost:
            interrupts.shield()
            _stopped(study, tracker, spec, objective.last_trial, watches, STORE_FAILED)
            raise
        finally:
            _end_parent(tracker, parent_id, watches)
    if ran == 0:
        echo(f"nothing to run: the {total} planned trial(s) of '{spec.name}' are done "
             "(pass -n N to run N more)")
    return study


def _end_parent(tracker: Tracker, parent_id: str, watches: Watches) -> None:
    """The study's parent run marked finished, unless its store is gone."""
    try:
        watches.all.check()
    except StoreLost:
        return
    tracker.end_parent(parent_id)


def _loop(
    study: optuna.Study, storage: optuna.storages.RDBStorage, tracker: Tracker,
    spec: StudySpec, objective: TrialObjective, lock: BudgetLock, watches: Watches,
    total: int, n_trials: int | None, timeout: float | None, echo: Printer, log: Path,
    hook: Callable[[optuna.Study, FrozenTrial], None] | None = None,
) -> int:
    """Take trials until the budget is met (or ``n_trials`` ran); returns how many ran.
    ``hook``: the caller's, after each finished trial's line."""
    failures: list[int] = []

    def on_trial_end(frozen: FrozenTrial) -> None:
        fault_point("after_tell")
        line = trial_line(study, frozen, spec)
        retried = frozen.user_attrs.get(RETRIED_ATTR)  # out of memory: tried again smaller
        if frozen.state == TrialState.FAIL and REASON_ATTR in frozen.user_attrs and not retried:
            failures.append(frozen.number)
            line += f"; traceback in {log}"
        echo(line)
        _keep_weights(study, tracker, spec, echo)
        if hook is not None:
            hook(study, frozen)

    started, ran, told = time.monotonic(), 0, False
    while n_trials is None or ran < n_trials:
        if timeout is not None and time.monotonic() - started > timeout:
            echo(f"timeout: {timeout:g} s passed; not starting another trial")
            break
        with lock.held():
            action = _next(study, storage, tracker, spec, total, bool(objective.design),
                           n_trials is not None, echo)
            if action == "run":
                frozen = run_trial(study, storage, objective, watches)
        if action == "run":
            release_memory()  # after the trial's exception (and its tensors) are gone
            if frozen is None:
                echo(f"trial {objective.last_trial}: taken over by another worker (this one "
                     "was taken for dead); its run is closed, going on with the next trial")
            else:
                on_trial_end(frozen)
        if action == "done":
            _keep_weights(study, tracker, spec, echo, done=True)
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
    sweep_runs(study, tracker, tracker.experiment_id(spec.name) or "")
    return ran


def _keep_weights(study: optuna.Study, tracker: Tracker, spec: StudySpec, echo: Printer,
                  done: bool = False) -> None:
    """``eval.save_weights: best``: the weights of runs that do not represent their
    configuration are deleted; a failure to delete is one warning line, never a failed trial."""
    try:
        keep_representatives(study, tracker, spec, done)
    except AblateError as err:
        echo(f"warning: {err}")


STORE_FAILED = "stopped: a store could not be written"


def _stopped(study: optuna.Study, tracker: Tracker, spec: StudySpec, last: int | None,
             watches: Watches, reason: str) -> None:
    """After Ctrl-C, SIGTERM or a store that failed: the current trial is failed (if a
    second signal cut the clean-up short), queued again unless another worker took it over,
    and its runs closed; nothing is written to a store that is gone."""
    if last is None:
        return
    try:
        watches.storage.check()
    except StoreLost:
        return  # the Optuna storage is gone: nothing to queue it in
    trial = study.get_trials(deepcopy=True)[last]
    if trial.state == TrialState.RUNNING:
        study.tell(last, state=TrialState.FAIL)
        trial = study.get_trials(deepcopy=True)[last]
    if requeue(study, last):
        try:
            watches.all.check()
            close_runs(tracker, spec.name, trial, reason)
        except StoreLost:
            pass


def trial_line(study: optuna.Study, trial: FrozenTrial, spec: StudySpec) -> str:
    """One line per finished trial: state, value(s), best so far or reason."""
    prefix = f"[{os.environ['ABLATE_WORKER']}] " if os.environ.get("ABLATE_WORKER") else ""
    label = trial.params.get("config")
    head = f"{prefix}trial {trial.number}" + (f" ({label})" if label else "")
    if trial.state == TrialState.COMPLETE:
        names = [o.metric for o in spec.objectives] or [spec.objective.metric]
        values = ", ".join(f"{n}={v:.4f}" for n, v in zip(names, trial.values, strict=True))
        text = f"{head}: COMPLETE {values}"
        best = best_configuration(study)  # the rule of ablate.selection
        if best is not None:
            text += f" (best so far: {best.config}, mean {best.mean:.4f})"
        return text
    reason = trial.user_attrs.get(REASON_ATTR, "")
    return f"{head}: {trial.state.name}" + (f" ({reason})" if reason else "")
