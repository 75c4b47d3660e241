"""Ctrl-C, SIGTERM and Slurm's warning signal: a polite stop that always finishes its clean-up.

While a worker runs, SIGTERM and SIGUSR2 are raised as :class:`Interrupted` (a
KeyboardInterrupt, like Ctrl-C), so the current trial is closed and queued again. SIGUSR2 is
the signal Slurm sends a job shortly before its time limit (``ablate study submit`` asks for
``--signal=USR2@90``, submitit's default) and, where the cluster sends user signals on
preemption, before a preemption; SIGTERM is what Slurm sends when it cancels, requeues or
preempts a job. Once the clean-up has started, further signals are ignored: a second Ctrl-C
cannot cut it short and leave a RUNNING run behind (SIGKILL still stops the process; the next
start-up recovers from that).

Python runs a signal handler between two bytecodes of the main thread, which may be inside a
``__del__`` method or a weakref callback of the garbage collector; an exception raised there is
printed and dropped ("Exception ignored in ..."), and the worker would train on into Slurm's
kill. So the interrupt stays pending until the clean-up starts (:func:`shield`): a timer raises
it again every :data:`RETRY_S` seconds.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

INTERRUPTED = 130  # the exit code of a process stopped by SIGINT, as shells report it
WARNING = signal.SIGUSR2  # Slurm's warning before a time limit (or a preemption)

_SIGNALS = (signal.SIGINT, signal.SIGTERM, WARNING)
RETRY_S = 2.0  # an interrupt not taken up (dropped in a __del__) is raised again this late
_pending: list[int] = []  # the signal of an interrupt raised but not yet taken up


class Interrupted(KeyboardInterrupt):
    """A worker stopped by a signal (``signum``)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_interrupt(signum: int, frame: Any) -> None:
    _pending[:] = [signum]
    signal.setitimer(signal.ITIMER_REAL, RETRY_S)
    raise Interrupted(signum)


def _raise_again(signum: int, frame: Any) -> None:
    if _pending:
        _raise_interrupt(_pending[0], frame)


def _taken_up() -> None:
    """The pending interrupt is being handled: no more raising it again."""
    if _pending:
        _pending.clear()
        signal.setitimer(signal.ITIMER_REAL, 0)


def is_warning(err: BaseException) -> bool:
    """Whether ``err`` is Slurm's warning signal (time limit or preemption ahead)."""
    return getattr(err, "signum", None) == WARNING


def reason(err: BaseException) -> str:
    """Why a worker stopped, as its trial's run records it: "interrupted" for Ctrl-C and
    SIGTERM, or what Slurm did (preempted, time limit, cancelled or requeued) inside a Slurm
    job. Computed once per interrupt (it may ask Slurm)."""
    cached = getattr(err, "reason", None)
    if isinstance(cached, str):
        return cached
    signum = getattr(err, "signum", signal.SIGINT)
    text = "interrupted"
    if signum != signal.SIGINT and os.environ.get("SLURM_JOB_ID"):
        from ablate.runs.slurm import slurm_reason

        text = slurm_reason(signum)
    try:
        err.reason = text  # type: ignore[attr-defined]
    except AttributeError:
        pass
    return text


def ignore_warning() -> None:
    """Ignore Slurm's warning signal from now on: this worker's work is done, and the signal's
    default action would kill it while it exits."""
    try:
        signal.signal(WARNING, signal.SIG_IGN)
    except ValueError:  # not the main thread
        pass


def shield() -> None:
    """Ignore further signals (the clean-up after an interrupt has begun)."""
    for sig in _SIGNALS:
        try:
            signal.signal(sig, signal.SIG_IGN)
        except ValueError:  # not the main thread
            return
    _taken_up()


@contextmanager
def interruptible() -> Iterator[None]:
    """SIGTERM and SIGUSR2 raise :class:`Interrupted` inside the block (again, until the
    clean-up starts); the previous handlers (including any :func:`shield`) are restored
    after it."""
    previous: dict[int, Any] = {}
    try:
        previous[signal.SIGINT] = signal.getsignal(signal.SIGINT)
        previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, _raise_again)
        for sig in (signal.SIGTERM, WARNING):
            previous[sig] = signal.signal(sig, _raise_interrupt)
    except ValueError:  # not the main thread (e.g. inside a test runner): leave them be
        previous = {}
    try:
        yield
    finally:
        if previous and previous[signal.SIGALRM] is not _raise_again:  # the outermost block
            _taken_up()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
