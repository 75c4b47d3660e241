"""Several worker processes on one machine, each pulling trials from the shared storage."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable

from ablate.runs import interrupts
from ablate.stores import Stores
from ablate.study.create import is_spec_file, prepare

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_per_worker(workers: int, threads: int | None = None) -> int:
    """Torch threads for each of ``workers`` processes: ``threads`` if given, else an equal
    share of the cores (at least 1), so that workers do not oversubscribe the CPU."""
    return threads if threads is not None else max(1, available_cores() // workers)


def run_workers(
    target: str,
    stores: Stores,
    workers: int,
    gpus: list[str] | None = None,
    n_trials: int | None = None,
    timeout: float | None = None,
    overrides: list[str] | None = None,
    profile: str | None = None,
    threads: int | None = None,
    echo: Callable[[str], None] = print,
) -> int:
    """Start ``workers`` processes on the study (created or joined here first); returns the
    worst exit code (130 when interrupted).

    The workers share one process group of their own: Ctrl-C or SIGTERM to this launcher
    is passed on to all of them as SIGTERM, each queues its current trial again and closes
    its run, and the launcher waits for them. With ``gpus``, worker i sees only GPU
    ``gpus[i % len(gpus)]`` (CUDA_VISIBLE_DEVICES). Each worker runs
    :func:`threads_per_worker` torch threads (``OMP_NUM_THREADS`` and friends too).
    """
    spec = prepare(target, stores, overrides, profile)
    per_worker = threads_per_worker(workers, threads)
    echo(f"{workers} worker(s) x {per_worker} torch thread(s) on {available_cores()} core(s)"
         + ("" if threads is not None else " (--threads N to change)"))
    procs: list[subprocess.Popen] = []
    with interrupts.interruptible():
        try:
            for index in range(workers):
                command = _command(spec.name, stores, index, workers, n_trials, timeout,
                                   [] if is_spec_file(target) else overrides or [], per_worker)
                if command is None:
                    continue
                env = dict(os.environ, ABLATE_WORKER=f"w{index}")
                env.update({var: str(per_worker) for var in THREAD_VARS})
                if gpus:
                    env["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)]
                group = procs[0].pid if procs else 0
                procs.append(subprocess.Popen(command, env=env, process_group=group))
            codes = [p.wait() for p in procs]
        except KeyboardInterrupt:
            interrupts.shield()
            if procs:
                try:
                    os.killpg(procs[0].pid, signal.SIGTERM)
                except ProcessLookupError:  # every worker has exited already
                    pass
            for p in procs:
                p.wait()
            raise
    return max(codes, default=0)


def _command(name: str, stores: Stores, index: int, workers: int, n_trials: int | None,
             timeout: float | None, overrides: list[str], threads: int) -> list[str] | None:
    """Worker ``index``'s command line (None when its share of ``n_trials`` is 0)."""
    command = [sys.executable, "-m", "ablate.cli", "study", "run", name, "--quiet",
               "--storage", stores.storage, "--tracking-uri", stores.tracking_uri,
               "--threads", str(threads)]
    if stores.folder is not None:
        command += ["--store", str(stores.folder)]
    if n_trials is not None:
        share = n_trials // workers + (1 if index < n_trials % workers else 0)
        if share == 0:
            return None
        command += ["-n", str(share)]
    if timeout is not None:
        command += ["--timeout", str(timeout)]
    for item in overrides:  # a spec file's overrides are stored with the study
        command += ["--set", item]
    return command
