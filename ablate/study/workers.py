"""Several worker processes on one machine, each pulling trials from the shared storage."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

from ablate.stores import Stores
from ablate.study.create import check_spec, create_study, is_spec_file, resolve_target

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
    """Start ``workers`` processes on the study (created here first); returns the worst exit code.

    With ``gpus``, worker i sees only GPU ``gpus[i % len(gpus)]`` (CUDA_VISIBLE_DEVICES). Each
    worker runs :func:`threads_per_worker` torch threads (``OMP_NUM_THREADS`` and friends too).
    """
    spec, create = resolve_target(target, stores, overrides, profile)
    check_spec(spec)
    if create:
        create_study(spec, stores, checked=True)
    per_worker = threads_per_worker(workers, threads)
    echo(f"{workers} worker(s) x {per_worker} torch thread(s) on {available_cores()} core(s)"
         + ("" if threads is not None else " (--threads N to change)"))
    procs = []
    for index in range(workers):
        command = [sys.executable, "-m", "ablate.cli", "study", "run", spec.name, "--quiet",
                   "--storage", stores.storage, "--tracking-uri", stores.tracking_uri,
                   "--threads", str(per_worker)]
        if stores.folder is not None:
            command += ["--store", str(stores.folder)]
        if n_trials is not None:
            share = n_trials // workers + (1 if index < n_trials % workers else 0)
            if share == 0:
                continue
            command += ["-n", str(share)]
        if timeout is not None:
            command += ["--timeout", str(timeout)]
        if not is_spec_file(target):
            for item in overrides or []:  # a spec file's overrides are stored with the study
                command += ["--set", item]
        env = dict(os.environ, ABLATE_WORKER=f"w{index}")
        env.update({var: str(per_worker) for var in THREAD_VARS})
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)]
        procs.append(subprocess.Popen(command, env=env))
    try:
        codes = [p.wait() for p in procs]
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()  # each worker re-queues its current trial
        for p in procs:
            p.wait()
        raise
    return max(codes, default=0)
