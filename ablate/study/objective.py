"""One Optuna trial: choose the configuration, train it (x repeats), track every run."""

from __future__ import annotations

import json
import logging
import math
import statistics
import traceback
from collections.abc import Callable
from typing import Any

import optuna

from ablate.designs import Configuration, configurations
from ablate.errors import AblateError
from ablate.runs.applied import device_applied, given_paths, ignored_tags, warning_lines
from ablate.runs.tracked import train_tracked
from ablate.spec import RunConfig, StudySpec, set_dotted
from ablate.study.search import suggest
from ablate.study.storage import (
    CONFIG_PARAM,
    INEXACT_ATTR,
    ORIGIN_ATTR,
    REASON_ATTR,
    REPEAT_ATTR,
    RUN_ID_ATTR,
)
from ablate.testing.faults import fault_point
from ablate.tracking import RunLog, Tracker, localize, run_tags
from ablate.tracking import names as keys
from ablate.training.memory import halved_batch, is_out_of_memory, release_memory
from ablate.training.result import TrainResult
from ablate.training.train import TrainingError

# Failed trials' tracebacks: to the study's log file (see ablate.study.runner.trial_log).
TRIAL_LOG = logging.getLogger("ablate.trials")


class TrialFailed(Exception):
    """One trial failed; the study goes on (Optuna records the trial as FAIL)."""


class TrialObjective:
    """Callable given to ``study.optimize``; one call = one trial."""

    def __init__(
        self,
        spec: StudySpec,
        tracker: Tracker,
        parent_id: str,
        progress: bool,
        on_start: Callable[[], None] = lambda: None,
        echo: Callable[[str], None] = print,
        on_interrupt: Callable[[], None] = lambda: None,
    ):
        self.spec = spec
        self.tracker = tracker
        self.parent_id = parent_id
        self.progress = progress
        self.on_start = on_start
        self.echo = echo
        self.on_interrupt = on_interrupt
        self.design = {c.label: c for c in configurations(spec.design)}
        self.last_trial: int | None = None
        self.warned: set[str] = set()  # settings already reported as not applying
        self.given = given_paths(spec)
        # the spec file whose git state each run records: this process's, or the creator's
        self.spec_path = spec.path or run_tags(tracker, parent_id).get(keys.TAG_SPEC_PATH) or None

    def _choose(self, trial: optuna.Trial) -> tuple[Configuration, list[int]]:
        """The trial's configuration and the repeat indices it trains."""
        if self.design:
            label = trial.suggest_categorical(CONFIG_PARAM, list(self.design))
            return self.design[label], [int(trial.user_attrs.get(REPEAT_ATTR, 0))]
        values = suggest(trial, self.spec.search)
        # A retried trial keeps its first number's label (user attrs travel with the retry).
        origin = trial.user_attrs.get(ORIGIN_ATTR)
        if origin is None:
            origin = trial.number
            trial.set_user_attr(ORIGIN_ATTR, origin)
        return Configuration(f"trial-{origin}", values), list(range(self.spec.design.min_repeats))

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        self.last_trial = trial.number
        self.on_start()  # the trial exists now: other workers may count it
        chosen, repeats = self._choose(trial)
        results = []
        for repeat in repeats:
            config = self.spec.resolve({**chosen.values, "seed": self.spec.seed + repeat})
            config, ignored = device_applied(localize(self.tracker, config))
            self._warn(ignored)
            run = self._start_run(trial, config, chosen, repeat, len(repeats) > 1, ignored)
            results.append(self._train_tracked(trial, config, run, prune=len(repeats) == 1))
        if any(r.applied.get("reproducible", "").startswith("no") for r in results):
            trial.set_user_attr(INEXACT_ATTR, True)  # adaptive repeats: never "identical"
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
        suffix: bool, ignored: dict[str, str],
    ) -> RunLog:
        tags = {keys.TAG_CONFIG: chosen.label, keys.TAG_REPEAT: str(repeat),
                **ignored_tags(ignored)}
        if chosen.components:
            tags[keys.TAG_COMPONENTS] = json.dumps(chosen.components)
        name = f"trial-{trial.number:03d}" + (f"-r{repeat}" if suffix else "")
        # The run carries the trial number from its first write, so a run whose id never
        # reaches Optuna (killed in between) is still found and closed by the recovery.
        run = self.tracker.start_run(
            self.spec.name, config, role="trial", name=name, parent_id=self.parent_id,
            trial=trial.number, values=chosen.values or None, extra_tags=tags,
        )
        fault_point("after_run_create")
        trial.set_user_attr(RUN_ID_ATTR, run.run_id)
        return run

    def _train_tracked(
        self, trial: optuna.Trial, config: RunConfig, run: RunLog, prune: bool
    ) -> TrainResult:
        key = config.objective.metric
        prune = prune and not self.spec.multi_objective

        def on_epoch(epoch: int, record: dict[str, float]) -> None:
            fault_point("mid_log")  # the epoch is logged; training goes on
            value = record[key]
            if prune and math.isfinite(value):
                trial.report(value, epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at epoch {epoch} ({key}={value:.4f})")

        try:
            result = self._train_with_oom_policy(trial, config, run, on_epoch)
        except optuna.TrialPruned as err:
            run.end("PRUNED", str(err))
            raise
        except KeyboardInterrupt:
            self.on_interrupt()  # a second Ctrl-C must not cut the clean-up short
            run.end("FAIL", "interrupted", killed=True)
            raise
        except Exception as err:  # noqa: BLE001 - one trial's failure must not end the study
            self._failed(trial, run, failure_reason(err))
            if isinstance(err, AblateError):
                raise
            raise TrialFailed(failure_reason(err)) from err
        finally:
            release_memory()
        if not math.isfinite(result.objective):
            reason = f"objective {key} is not finite ({result.objective})"
            self._failed(trial, run, reason)
            raise TrialFailed(reason)
        run.end("COMPLETE")
        fault_point("after_run_end")
        return result

    def _failed(self, trial: optuna.Trial, run: RunLog, reason: str) -> None:
        """Record a failed trial: its reason in Optuna and MLflow, the traceback (if any) in the
        run's ``traceback.txt`` and the study's log file; the terminal gets one line."""
        trace = traceback.format_exc()
        if trace.strip() != "NoneType: None":
            run.log_text(trace, "traceback.txt")
            TRIAL_LOG.error("trial %d failed (%s); run %s\n%s", trial.number, reason,
                            run.run_id, trace.rstrip())
        else:
            TRIAL_LOG.error("trial %d failed (%s); run %s", trial.number, reason, run.run_id)
        run.end("FAIL", reason)
        trial.set_user_attr(REASON_ATTR, reason)

    def _train_with_oom_policy(
        self, trial: optuna.Trial, config: RunConfig, run: RunLog, on_epoch: Any
    ) -> TrainResult:
        while True:
            try:
                return train_tracked(config, run, on_epoch, self.progress,
                                     f"trial {trial.number}", self.spec_path)
            except Exception as err:
                if not is_out_of_memory(err):
                    raise
                batch = config.data.batch_size
                if self.spec.on_oom != "halve_batch" or batch // 2 < self.spec.min_batch_size:
                    raise TrainingError(f"out of memory at batch size {batch}") from err
            # Out of the except block: the failed attempt's traceback (its frames, their
            # tensors) is dropped, so the memory it held can be released before the retry.
            release_memory()
            data = config.model_dump(mode="json")
            for path, value in halved_batch(config).items():
                set_dotted(data, path, value)
            config = RunConfig.model_validate(data)
            self.echo(f"trial {trial.number}: out of memory at batch size {batch}; "
                      f"retrying with {config.data.batch_size} x {config.optim.grad_accum}")
            tags = {keys.TAG_OOM_BATCH: str(config.data.batch_size),
                    keys.TAG_OOM_ACCUM: str(config.optim.grad_accum)}
            if config.data.eval_batch_size is not None:
                tags[keys.TAG_OOM_EVAL_BATCH] = str(config.data.eval_batch_size)
            run.set_tags(tags)

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
                trial.set_user_attr(REASON_ATTR, reason)
                raise TrialFailed(reason)
        return tuple(values) if self.spec.multi_objective else values[0]


def failure_reason(err: BaseException) -> str:
    """The short reason recorded for a failed trial."""
    if isinstance(err, TrainingError):
        return err.reason
    if isinstance(err, AblateError):
        return str(err)
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0][:200]}" if text else type(err).__name__


