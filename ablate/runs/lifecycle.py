"""A tracked run's life: whatever stops it, it ends with exactly one outcome.

``ablate train``, ``ablate rerun`` and every trial of a study run their training inside
:func:`run_outcome`:

| what happens | the run ends | ``ablate.state`` | ``ablate.reason`` |
|---|---|---|---|
| training returns | FINISHED | COMPLETE | |
| a pruner stops it (:class:`Pruned`) | FINISHED | PRUNED | why |
| Ctrl-C or SIGTERM | KILLED | FAIL | interrupted |
| SIGTERM or Slurm's warning (USR2) in a Slurm job | KILLED | FAIL | e.g. time limit (...) |
| another worker took its trial over | KILLED | FAIL | taken over by another worker |
| any other error | FAILED | FAIL | the error in one line (traceback in ``traceback.txt``) |
| its store vanished (StoreLost) | untouched: nothing can be written there | | |

What follows for the study (a trial queued again, the Optuna trial told) is the study's.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from contextlib import contextmanager

from ablate.errors import AblateError, StoreLost, TakenOver
from ablate.runs import interrupts
from ablate.tracking import RunLog, names
from ablate.training import TrainingError

INTERRUPTED = "interrupted"
TAKEN_OVER = "taken over by another worker"


class Pruned(Exception):
    """A pruner stopped the run early (the message says why)."""


def failure_reason(err: BaseException) -> str:
    """The short reason recorded for a failed run."""
    if isinstance(err, TrainingError):
        return err.reason
    if isinstance(err, AblateError):
        return str(err)
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0][:200]}" if text else type(err).__name__


def end_taken_over(run: RunLog) -> None:
    """Close a run whose trial another worker now owns: KILLED, nothing else of it written."""
    run.end("FAIL", TAKEN_OVER, killed=True, owned=False)


@contextmanager
def run_outcome(run: RunLog) -> Iterator[RunLog]:
    """End ``run`` by what happens inside the block (see the module's table); the exception
    is raised on after the run is closed."""
    try:
        yield run
    except Pruned as err:
        run.end("PRUNED", str(err))
        raise
    except TakenOver:
        end_taken_over(run)
        raise
    except StoreLost:
        raise
    except KeyboardInterrupt as err:
        interrupts.shield()  # a second Ctrl-C must not cut the clean-up short
        run.end("FAIL", interrupts.reason(err), killed=True)
        raise
    except BaseException as err:
        _failed(run, failure_reason(err), traceback.format_exc())
        raise
    try:
        run.end("COMPLETE")
    except TakenOver:
        end_taken_over(run)
        raise


def _failed(run: RunLog, reason: str, trace: str) -> None:
    """End a failed run with its reason and the traceback as an artifact."""
    try:
        run.log_text(trace, names.TRACEBACK_ARTIFACT)
        run.end("FAIL", reason)
    except TakenOver:
        end_taken_over(run)
