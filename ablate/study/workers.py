"""Several worker processes on one machine, each pulling trials from the shared storage."""

from __future__ import annotations

import os
import subprocess
import sys

from ablate.stores import Stores
from ablate.study.create import check_spec, create_study, is_spec_file, resolve_target


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
    """Start ``workers`` processes on the study (created here first); returns the worst exit code.

    With ``gpus``, worker i sees only GPU ``gpus[i % len(gpus)]`` (CUDA_VISIBLE_DEVICES).
    """
    spec, create = resolve_target(target, stores, overrides, profile)
    check_spec(spec)
    if create:
        create_study(spec, stores, checked=True)
    procs = []
    for index in range(workers):
        command = [sys.executable, "-m", "ablate.cli", "study", "run", spec.name, "--quiet",
                   "--storage", stores.storage, "--tracking-uri", stores.tracking_uri]
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
