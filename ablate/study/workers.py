"""Several worker processes on one machine, each pulling trials from the shared storage."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable

from ablate.data.dataset import CORES_ENV, available_cores
from ablate.errors import AblateError
from ablate.runs import interrupts
from ablate.stores import Stores
from ablate.study.create import is_spec_file, prepare, resolve_target
from ablate.training.determinism import CUBLAS_ENV, CUBLAS_VALUE
from ablate.training.devices import GPU_SHARERS_ENV, WORKER_GPU_ENV

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def threads_per_worker(workers: int, threads: int | None = None) -> int:
    """Torch threads for each of ``workers`` processes: ``threads`` if given, else an equal
    share of the cores (at least 1), so that workers do not oversubscribe the CPU."""
    return threads if threads is not None else max(1, available_cores() // workers)


def parse_gpus(text: str) -> list[int]:
    """``--gpus 0,1`` -> [0, 1]; :class:`AblateError` (one line) for anything but
    comma-separated indices >= 0."""
    items = [item.strip() for item in text.split(",")]
    ids = []
    for item in items:
        if not item.isdigit():
            raise AblateError(f"--gpus {text}: '{item}' is not a GPU index; give comma-separated "
                              "indices as `nvidia-smi` lists them, e.g. --gpus 0,1")
        ids.append(int(item))
    return ids


def check_gpus(ids: list[int], text: str, count: int | None = None) -> None:
    """Every id names a GPU this process sees (``count``: torch's device count, asked when
    None); :class:`AblateError` naming the ones that do not exist."""
    if count is None:
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    missing = sorted({i for i in ids if i >= count})
    if not missing:
        return
    names = ", ".join(str(i) for i in missing)
    if count == 0:
        raise AblateError(f"--gpus {text}: this machine has no CUDA GPU that torch can use, so "
                          f"GPU {names} does not exist; leave --gpus out to train on the CPU")
    raise AblateError(f"--gpus {text}: GPU {names} does not exist here; torch sees {count} "
                      f"GPU(s), 0..{count - 1}")


def check_device_with_gpus(device: str, ids: list[int], text: str, source: str) -> None:
    """A spec's ``device`` that contradicts ``--gpus``: the CPU (or another backend), or a
    ``cuda:N`` pinning a GPU that the list places workers off; :class:`AblateError`."""
    if device == "auto" or not device.startswith("cuda"):
        if device != "auto":
            raise AblateError(f"{source}: device: {device}, but --gpus {text} asks for GPUs; "
                              "use device: auto (or cuda), or leave --gpus out")
        return
    _, _, index = device.partition(":")
    if index and any(i != int(index) for i in ids):
        raise AblateError(f"{source}: device: {device} pins GPU {index}, but --gpus {text} "
                          f"places workers on other GPUs too; use device: cuda (or auto) to let "
                          f"--gpus place them, or --gpus {index}")


def worker_visible(gpu: int, parent: str | None = None) -> str:
    """The ``CUDA_VISIBLE_DEVICES`` of a worker given ``gpu`` (an index as torch numbers this
    process's GPUs): the entry of the launcher's own ``CUDA_VISIBLE_DEVICES`` at that
    position when it has one (a Slurm job's GPUs), else the index itself."""
    if parent is None:
        parent = os.environ.get("CUDA_VISIBLE_DEVICES")
    entries = [e.strip() for e in parent.split(",")] if parent else []
    return entries[gpu] if gpu < len(entries) else str(gpu)


def run_workers(
    target: str,
    stores: Stores,
    workers: int,
    gpus: str | None = None,
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
    its run, and the launcher waits for them. With ``gpus`` (``--gpus 0,1``: checked against
    this machine's GPUs and the spec's device before anything is written), worker i sees
    only GPU ``gpus[i % len(gpus)]`` (:func:`gpu_env`). Each worker runs
    :func:`threads_per_worker` torch threads (``OMP_NUM_THREADS`` and friends too).
    """
    ids = None
    if gpus is not None:
        ids = parse_gpus(gpus)
        check_gpus(ids, gpus)
        planned, _ = resolve_target(target, stores, overrides, profile)
        check_device_with_gpus(planned.device, ids, gpus, planned.source)
    spec = prepare(target, stores, overrides, profile)
    per_worker = threads_per_worker(workers, threads)
    if ids is not None and workers < len(ids):
        echo(f"warning: {workers} worker(s) for {len(ids)} GPU(s): GPU(s) "
             f"{', '.join(str(i) for i in ids[workers:])} stay idle (leave --workers out: one "
             "worker per listed GPU)")
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
                env[CORES_ENV] = str(max(1, available_cores() // workers))
                env.setdefault(CUBLAS_ENV, CUBLAS_VALUE)  # before the worker's CUDA starts
                if ids:
                    env.update(gpu_env(ids, index, workers))
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


def gpu_env(ids: list[int], index: int, workers: int) -> dict[str, str]:
    """The environment of worker ``index`` of ``workers`` on the GPUs ``ids`` (worker i gets
    ``ids[i % len(ids)]``): its visible GPU, which id it was given and how many workers
    share that GPU (``ablate.training.devices``)."""
    gpu = ids[index % len(ids)]
    sharers = sum(1 for i in range(workers) if ids[i % len(ids)] == gpu)
    return {"CUDA_VISIBLE_DEVICES": worker_visible(gpu), WORKER_GPU_ENV: str(gpu),
            GPU_SHARERS_ENV: str(sharers)}


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
