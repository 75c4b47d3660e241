"""Ctrl-C and SIGTERM: a polite stop that always finishes its clean-up.

While a worker runs, SIGTERM is raised as KeyboardInterrupt (like Ctrl-C), so the current
trial is closed and queued again. Once the clean-up has started, further SIGINT/SIGTERM are
ignored: a second Ctrl-C cannot cut it short and leave a RUNNING run behind (SIGKILL still
stops the process; the next start-up recovers from that).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

INTERRUPTED = 130  # the exit code of a process stopped by SIGINT, as shells report it

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def shield() -> None:
    """Ignore further SIGINT/SIGTERM (the clean-up after an interrupt has begun)."""
    for sig in _SIGNALS:
        try:
            signal.signal(sig, signal.SIG_IGN)
        except ValueError:  # not the main thread
            pass


@contextmanager
def interruptible() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt inside the block; the previous handlers (including
    any :func:`shield`) are restored after it."""
    previous: dict[int, Any] = {}
    try:
        previous[signal.SIGINT] = signal.getsignal(signal.SIGINT)
        previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, _raise_interrupt)
    except ValueError:  # not the main thread (e.g. inside a test runner): leave them be
        previous = {}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
