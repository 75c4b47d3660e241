"""Fault injection for the crash-safety tests: SIGKILL (or freeze) this process at a named point.

``ABLATE_FAULT=NAME`` (or ``NAME:N``, the N-th time the point is reached) makes
:func:`fault_point` kill the process with SIGKILL when it reaches ``NAME``: no cleanup, no
``finally`` block, exactly like a power cut there. ``NAME:N:stop`` freezes it there instead
(SIGSTOP, as a suspended job or a paused machine; SIGCONT wakes it). Unset (always, outside
tests) it does nothing. The named points are the windows between two writes that must stay
consistent; ``WINDOWS`` lists them in the order a study passes them.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter

FAULT_ENV = "ABLATE_FAULT"
# Held by a background thread while it writes to a store (the heartbeat): a freeze at a fault
# point waits for it, so that a frozen worker never holds a database's write lock (a SQLite
# writer frozen mid-transaction would block every other worker, which is not what the freeze
# tests are about).
WRITES = threading.RLock()

WINDOWS = (
    "after_study_row",  # study create: the Optuna study row written, not yet committed
    "mid_queue",  # study create: half of the fixed design queued, not yet committed
    "after_study_commit",  # study create: the Optuna study committed, no MLflow parent run yet
    "after_parent_create",  # the MLflow parent run created, its params and spec not yet logged
    "after_running",  # a trial turned RUNNING, before its first heartbeat
    "after_run_create",  # a trial's MLflow run created, its id not yet stored in Optuna
    "mid_log",  # a trial's epoch logged (and its state kept), training goes on
    "before_evaluation",  # a trial's epochs done, its final evaluation about to start
    "mid_artifact",  # a trial's final metrics logged, its artifacts half written
    "after_run_end",  # a trial's MLflow run ended COMPLETE, the Optuna trial not yet told
    "after_tell",  # a trial told COMPLETE in Optuna, before the next one starts
    "after_stale_fail",  # a dead worker's trial failed as stale, not yet queued again
)

_hits: Counter[str] = Counter()


def fault_point(name: str) -> None:
    """SIGKILL (or SIGSTOP, with ``:stop``) this process if ``ABLATE_FAULT`` names ``name``
    (at its N-th hit with ``:N``)."""
    wanted = os.environ.get(FAULT_ENV)
    if not wanted:
        return
    target, _, rest = wanted.partition(":")
    if target != name:
        return
    count, _, action = rest.partition(":")
    _hits[name] += 1
    if _hits[name] != (int(count) if count.isdigit() else 1):
        return
    if action == "stop":
        with WRITES:
            os.kill(os.getpid(), signal.SIGSTOP)
    else:
        os.kill(os.getpid(), signal.SIGKILL)
