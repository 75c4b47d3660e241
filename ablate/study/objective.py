"""One Optuna trial: choose the configuration, train it (x repeats), track every run."""

from __future__ import annotations

import json
import logging
import math
import statistics
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna

from ablate.designs import Configuration, configurations
from ablate.errors import AblateError, StoreLost, TakenOver
from ablate.runs.applied import device_applied, given_paths, ignored_tags, warning_lines
from ablate.runs.lifecycle import Pruned, end_taken_over, failure_reason, run_outcome
from ablate.runs.tracked import train_tracked
from ablate.spec import RunConfig, StudySpec, set_dotted
from ablate.study.fence import TrialFence, optuna_writes
from ablate.study.recovery import RETRY_HISTORY, retry
from ablate.study.resume import TrialCheckpoint
from ablate.study.search import suggest
from ablate.study.storage import (
    CONFIG_PARAM,
    INEXACT_ATTR,
    OOM_ATTR,
    ORIGIN_ATTR,
    REASON_ATTR,
    REPEAT_ATTR,
    RETRIED_ATTR,
    RUN_ID_ATTR,
)
from ablate.testing.faults import fault_point
from ablate.tracking import RunLog, Tracker, localize, run_tags
from ablate.tracking import names as keys
from ablate.training import TrainingError
from ablate.training.fit import Progress
from ablate.training.memory import halved_batch, is_out_of_memory
from ablate.training.result import TrainResult

# Failed trials' tracebacks: to the study's log file (see ablate.study.runner.trial_log).
TRIAL_LOG = logging.getLogger("ablate.trials")


class TrialFailed(Exception):
    """One trial failed; the study goes on (Optuna records the trial as FAIL)."""


class OutOfMemory(TrainingError):
    """A run that ran out of memory at its batch size."""


def with_values(config: RunConfig, values: dict[str, Any]) -> RunConfig:
    """``config`` with ``{dotted path: value}`` written over it."""
    data = config.model_dump(mode="json")
    for path, value in values.items():
        set_dotted(data, path, value)
    return RunConfig.model_validate(data)


class TrialObjective:
    """Trains one trial when called; ``fence`` is checked before each write for it."""

    def __init__(
        self,
        spec: StudySpec,
        tracker: Tracker,
        parent_id: str,
        progress: Progress,
        on_start: Callable[[], None] = lambda: None,
        echo: Callable[[str], None] = print,
        checkpoints: Path | None = None,
    ):
        self.spec = spec
        self.tracker = tracker
        self.parent_id = parent_id
        self.progress = progress
        self.on_start = on_start
        self.echo = echo
        self.checkpoints = checkpoints if spec.resume else None
        self.design = {c.label: c for c in configurations(spec.design)}
        self.last_trial: int | None = None
        self.warned: set[str] = set()  # settings already reported as not applying
        self.given = given_paths(spec)
        # the spec file whose git state each run records: this process's, or the creator's
        self.spec_path = spec.path or run_tags(tracker, parent_id).get(keys.TAG_SPEC_PATH) or None
        self.fence: TrialFence | None = None  # the current trial's
        self.completed: list[RunLog] = []  # the current trial's runs that ended COMPLETE
        self.saved: list[TrialCheckpoint] = []  # the current trial's resumable states

    def _choose(self, trial: optuna.Trial) -> tuple[Configuration, list[int], str]:
        """The trial's configuration, the repeat indices it trains and the name of its
        lineage (the same for every attempt at it)."""
        if self.design:
            label = trial.suggest_categorical(CONFIG_PARAM, list(self.design))
            return self.design[label], [int(trial.user_attrs.get(REPEAT_ATTR, 0))], label
        values = suggest(trial, self.spec.search)
        # A retried trial keeps its first number's label (user attrs travel with the retry).
        origin = trial.user_attrs.get(ORIGIN_ATTR)
        if origin is None:
            origin = trial.number
            with optuna_writes():
                trial.set_user_attr(ORIGIN_ATTR, origin)
        label = keys.trial_label(origin)
        return Configuration(label, values), list(range(self.spec.design.min_repeats)), label

    def __call__(self, trial: optuna.Trial, fence: TrialFence) -> float | tuple[float, ...]:
        self.last_trial = trial.number
        self.fence = fence
        self.completed, self.saved = [], []
        self.on_start()  # the trial exists now: other workers may count it
        chosen, repeats, lineage = self._choose(trial)
        oom = trial.user_attrs.get(OOM_ATTR)
        results = []
        for repeat in repeats:
            config = self.spec.resolve({**chosen.values, "seed": self.spec.seed + repeat})
            if oom:
                config = with_values(config, oom)
            config, ignored = device_applied(localize(self.tracker, config))
            self._warn(ignored)
            run = self._start_run(trial, config, chosen, repeat, len(repeats) > 1, ignored,
                                  fence, oom)
            saved = self._checkpoint(trial, config, f"{lineage}-r{repeat}", fence)
            results.append(self._train(trial, config, run, saved, prune=len(repeats) == 1))
        if any(r.applied.get("reproducible", "").startswith("no") for r in results):
            with optuna_writes():  # adaptive repeats: never "identical"
                trial.set_user_attr(INEXACT_ATTR, True)
        return self._value(trial, results)

    def _warn(self, ignored: dict[str, str]) -> None:
        """One line per setting given in the spec that does not apply here, the first time
        only."""
        fresh = {path: reason for path, reason in ignored.items() if path not in self.warned}
        self.warned |= fresh.keys()
        for line in warning_lines(fresh, self.given):
            self.echo(line)

    def _start_run(
        self, trial: optuna.Trial, config: RunConfig, chosen: Configuration, repeat: int,
        suffix: bool, ignored: dict[str, str], fence: TrialFence, oom: dict | None,
    ) -> RunLog:
        tags = {keys.TAG_CONFIG: chosen.label, keys.TAG_REPEAT: str(repeat),
                **ignored_tags(ignored)}
        if chosen.components:
            tags[keys.TAG_COMPONENTS] = json.dumps(chosen.components)
        if oom:
            tags[keys.TAG_OOM_BATCH] = str(config.data.batch_size)
            tags[keys.TAG_OOM_ACCUM] = str(config.optim.grad_accum)
            if config.data.eval_batch_size is not None:
                tags[keys.TAG_OOM_EVAL_BATCH] = str(config.data.eval_batch_size)
        name = keys.trial_run_name(trial.number, repeat if suffix else None)
        fence.check()
        # The run carries the trial number from its first write, so a run whose id never
        # reaches Optuna (killed in between) is still found and closed by the recovery.
        run = self.tracker.start_run(
            self.spec.name, config, role="trial", name=name, parent_id=self.parent_id,
            trial=trial.number, extra_tags=tags,
            values=None if self.design else chosen.values or None,  # a design samples nothing
        )
        run.fence = fence
        fault_point("after_run_create")
        with optuna_writes():
            trial.set_user_attr(RUN_ID_ATTR, run.run_id)
        return run

    def _checkpoint(self, trial: optuna.Trial, config: RunConfig, key: str,
                    fence: TrialFence) -> TrialCheckpoint | None:
        """Where this configuration x seed keeps its state after each epoch (None: off)."""
        if self.checkpoints is None:
            return None
        attempts = fence.storage.get_trial_system_attrs(fence.trial_id).get(RETRY_HISTORY, [])
        saved = TrialCheckpoint(self.checkpoints, key, trial.number, list(attempts), config,
                                fence.check)
        self.saved.append(saved)
        return saved

    def _train(self, trial: optuna.Trial, config: RunConfig, run: RunLog,
               saved: TrialCheckpoint | None, prune: bool) -> TrainResult:
        key = config.objective.metric
        prune = prune and not self.spec.multi_objective

        def report(epoch: int, record: dict[str, float]) -> None:
            value = record[key]
            if prune and math.isfinite(value):
                with optuna_writes():
                    trial.report(value, epoch)

        def on_epoch(epoch: int, record: dict[str, float]) -> None:
            fault_point("mid_log")  # the epoch is logged; training goes on
            report(epoch, record)
            if prune and math.isfinite(record[key]) and trial.should_prune():
                raise Pruned(f"pruned at epoch {epoch} ({key}={record[key]:.4f})")

        try:
            with run_outcome(run):
                result = self._fit(trial, config, run, saved, on_epoch, report)
        except Pruned as err:
            raise optuna.TrialPruned(str(err)) from None
        except (TakenOver, StoreLost, KeyboardInterrupt):
            raise
        except Exception as err:  # noqa: BLE001 - one trial's failure must not end the study
            self._failed(trial, run, err)
            if isinstance(err, AblateError):
                raise
            raise TrialFailed(failure_reason(err)) from err
        self.completed.append(run)
        fault_point("after_run_end")
        return result

    def _fit(self, trial: optuna.Trial, config: RunConfig, run: RunLog,
             saved: TrialCheckpoint | None, on_epoch: Any, report: Any) -> TrainResult:
        """Train into ``run``; an out-of-memory error becomes :class:`OutOfMemory`."""
        try:
            result = train_tracked(config, run, on_epoch, self.progress,
                                   f"trial {trial.number}", self.spec_path,
                                   saved.resume if saved is not None else None, report)
        except Exception as err:
            if is_out_of_memory(err):
                raise OutOfMemory(f"out of memory at batch size {config.data.batch_size}") \
                    from err
            raise
        if not math.isfinite(result.objective):
            raise TrainingError(f"objective {config.objective.metric} is not finite "
                                f"({result.objective})")
        return result

    def _failed(self, trial: optuna.Trial, run: RunLog, err: Exception) -> None:
        """Record a failed trial: its reason in Optuna (the run has ended with it), the
        traceback in the study's log file; the terminal gets one line. A run out of memory
        under ``on_oom: halve_batch`` is queued again as a new trial with half the batch (a
        fresh run, whose curves and pruning start clean)."""
        reason = failure_reason(err)
        halved = self._oom_retry(run, err)
        if halved is not None:
            reason += (f"; queued again as a new trial with batch size "
                       f"{halved['data.batch_size']} x {halved['optim.grad_accum']}")
        TRIAL_LOG.error("trial %d failed (%s); run %s\n%s", trial.number, reason, run.run_id,
                        traceback.format_exc().rstrip())
        with optuna_writes():
            trial.set_user_attr(REASON_ATTR, reason)
            if halved is not None:
                trial.set_user_attr(OOM_ATTR, halved)
                trial.set_user_attr(RETRIED_ATTR, True)
                # queued while the trial still runs: the budget never looks short meanwhile
                assert self.fence is not None
                retry(trial.study, self.fence.storage.get_trial(self.fence.trial_id),
                      died=False)
        for saved in self.saved:
            saved.discard()

    def _oom_retry(self, run: RunLog, err: Exception) -> dict[str, int] | None:
        """The values a retry after an out-of-memory error trains with (None: no retry)."""
        if not isinstance(err, OutOfMemory) or self.spec.on_oom != "halve_batch":
            return None
        config = run.config
        assert config is not None
        if config.data.batch_size // 2 < self.spec.min_batch_size:
            return None
        return halved_batch(config)

    def taken_over(self) -> None:
        """The trial was taken over after some of its runs ended COMPLETE: close them again
        (KILLED, "taken over by another worker"), so that no result stands for it twice."""
        for run in self.completed:
            end_taken_over(run)
        self.completed = []

    def finished(self) -> None:
        """The trial was told: its resumable states are of no more use."""
        for saved in self.saved:
            saved.discard()
        self.saved = []

    def _value(self, trial: optuna.Trial, results: list[TrainResult]) -> float | tuple:
        """The trial's value(s): each objective averaged over the repeats."""
        objectives = self.spec.objectives or [self.spec.objective]
        values = []
        for objective in objectives:
            per_run = [r.value(objective.metric) for r in results]
            values.append(statistics.fmean(per_run))
            if not math.isfinite(values[-1]):
                # Optuna would fail the trial without a reason (read as a dead worker).
                reason = f"objective {objective.metric} is not finite ({values[-1]})"
                with optuna_writes():
                    trial.set_user_attr(REASON_ATTR, reason)
                raise TrialFailed(reason)
        return tuple(values) if self.spec.multi_objective else values[0]
