"""Who draws the report's figures: the calling process, or a helper process beside it.

Importing matplotlib and drawing three figures take longer than reading 1,000 runs and
building every table. :class:`ForkedDrawer` forks a helper before the report imports pandas
or reads a run; the helper imports matplotlib meanwhile, forks a second helper that shares the
import, and both draw each figure as soon as the report hands it over, while the report goes on
with its tables. :meth:`Drawer.close` waits for
every figure, so nothing is written that links a figure not drawn. Where ``fork`` is missing
(or the caller holds threads, e.g. a training worker) :class:`Drawer` draws in the caller.

This module imports neither pandas nor matplotlib: the CLI starts the helper first.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

from ablate.errors import AblateError


class Drawer:
    """Draws in the calling process: ``draw`` returns once the PNG is written."""

    def draw(self, plot: str, *args: Any) -> Path:
        """Draw ``ablate.reporting.plots.<plot>(*args)`` (its last argument: the PNG's path)."""
        from ablate.reporting import plots

        path: Path = getattr(plots, plot)(*args)
        return path

    def close(self) -> None:
        """Return once every figure handed over is written (raises if one failed)."""

    def __enter__(self) -> Drawer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Give up the helper, if any (figures not drawn yet are not drawn)."""


class ForkedDrawer(Drawer):
    """Draws in forked helper processes: one imports matplotlib, then forks a second that
    shares it; figures go to the helper with the least work handed over (the parallel
    coordinates plot counts double)."""

    WORK = {"parallel_plot": 2}

    def __init__(self, helpers: int = 2) -> None:
        import multiprocessing

        context = multiprocessing.get_context("fork")
        pipes = [context.Pipe() for _ in range(helpers)]
        self._conns = [mine for mine, _ in pipes]
        self._work = [0] * helpers
        theirs = [child for _, child in pipes]
        # not a daemon: it forks the other helpers itself (they end when the pipes close)
        self._process = context.Process(target=_start, args=(theirs, self._conns),
                                        name="ablate-report-figures")
        self._process.start()
        for conn in theirs:
            conn.close()
        self._closed = False

    def draw(self, plot: str, *args: Any) -> Path:
        helper = self._work.index(min(self._work))
        self._work[helper] += self.WORK.get(plot, 1)
        try:
            self._conns[helper].send((plot, args))
        except OSError as err:
            raise _ended(err) from None
        path: Path = args[-1]
        return path

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        errors: list[str] = []
        try:
            for conn in self._conns:
                conn.send(None)
            for conn in self._conns:
                errors += conn.recv()
        except (EOFError, OSError) as err:
            raise _ended(err) from None
        finally:
            self._process.join(timeout=30)
        if errors:
            raise AblateError(f"drawing the report's figures failed: {errors[0]}")

    def stop(self) -> None:
        for conn in self._conns:
            conn.close()  # a helper waiting for work reads EOF and ends
        if self._process.is_alive():  # not closed: the report failed; do not wait for it
            self._process.terminate()
        self._process.join(timeout=5)


def _ended(err: BaseException) -> AblateError:
    return AblateError(f"a process drawing the report's figures ended early "
                       f"({type(err).__name__}); nothing was written")


def _start(conns: list[Any], parents: list[Any]) -> None:
    """The first helper: import the plots (matplotlib) at once, fork one more helper per
    extra pipe (sharing the import), then draw what arrives on the first pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the report decides; it stops the helpers
    for conn in parents:
        conn.close()  # the report's ends: EOF reaches the helpers only if no one else holds them
    from ablate.reporting import plots

    plots.prepare()
    children = []
    for index in range(1, len(conns)):
        pid = os.fork()
        if pid == 0:
            for other in conns[:index] + conns[index + 1:]:
                other.close()
            _serve(conns[index])
            os._exit(0)
        children.append(pid)
        conns[index].close()
    _serve(conns[0])
    for pid in children:
        os.waitpid(pid, 0)


def _serve(conn: Any) -> None:
    """Draw each figure that arrives until told to stop (or the report is gone); send back
    what failed."""
    from ablate.reporting import plots

    errors: list[str] = []
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return  # the report stopped
        if job is None:
            break
        plot, args = job
        try:
            getattr(plots, plot)(*args)
        except Exception as err:  # noqa: BLE001 - reported by close() in the report's process
            first = str(err).splitlines()[0][:200] if str(err) else ""
            errors.append(f"{Path(args[-1]).name}: {type(err).__name__}: {first}")
    conn.send(errors)
    conn.close()


def start_drawer(parallel: bool = True) -> Drawer:
    """A :class:`ForkedDrawer` where fork is available and ``parallel``; else a
    :class:`Drawer`."""
    if parallel and sys.platform == "linux" and hasattr(os, "fork"):
        return ForkedDrawer()
    return Drawer()
