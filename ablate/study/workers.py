"""Several worker processes on one machine, each pulling trials from the shared storage."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from ablate.stores import Stores
from ablate.study import interrupts
from ablate.study.create import is_spec_file, prepare


def run_workers(
    target: str,
    stores: Stores,
    workers: int,
    gpus: list[str] | None = None,
    n_trials: int | None = None,
    timeout: float | None = None,
    overrides: list[str] | None = None,
    profile: str | None = None,
) -> int:
    """Start ``workers`` processes on the study (created or joined here first); returns the
    worst exit code (130 when interrupted).

    The workers share one process group of their own: Ctrl-C or SIGTERM to this launcher
    is passed on to all of them as SIGTERM, each queues its current trial again and closes
    its run, and the launcher waits for them. With ``gpus``, worker i sees only GPU
    ``gpus[i % len(gpus)]`` (CUDA_VISIBLE_DEVICES).
    """
    spec = prepare(target, stores, overrides, profile)
    procs: list[subprocess.Popen] = []
    with interrupts.interruptible():
        try:
            for index in range(workers):
                command = _command(spec.name, stores, index, workers, n_trials, timeout,
                                   [] if is_spec_file(target) else overrides or [])
                if command is None:
                    continue
                env = dict(os.environ, ABLATE_WORKER=f"w{index}")
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
             timeout: float | None, overrides: list[str]) -> list[str] | None:
    """Worker ``index``'s command line (None when its share of ``n_trials`` is 0)."""
    command = [sys.executable, "-m", "ablate.cli", "study", "run", name, "--quiet",
               "--storage", stores.storage, "--tracking-uri", stores.tracking_uri]
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
