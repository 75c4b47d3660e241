"""The device a run trains on: ``device`` from the spec, composed with the GPU a worker was
given (``study run --gpus``), never a silent fall-back to the CPU when a GPU was meant.

A worker started with ``--gpus`` sees exactly one GPU (``CUDA_VISIBLE_DEVICES``), which torch
calls ``cuda:0``; the launcher records which one it was given in :data:`WORKER_GPU_ENV` and
how many workers share it in :data:`GPU_SHARERS_ENV`.
"""

from __future__ import annotations

import os

import torch

from ablate.errors import AblateError

WORKER_GPU_ENV = "ABLATE_WORKER_GPU"  # the --gpus id this worker was given
GPU_SHARERS_ENV = "ABLATE_GPU_SHARERS"  # how many of the launcher's workers share that GPU


def worker_gpu() -> str | None:
    """The ``--gpus`` id this process was given by ``study run --gpus`` (None otherwise)."""
    return os.environ.get(WORKER_GPU_ENV) or None


def gpu_sharers() -> int:
    """How many worker processes of this launcher train on this process's GPU (1: alone)."""
    try:
        return max(1, int(os.environ.get(GPU_SHARERS_ENV, "1")))
    except ValueError:
        return 1


def visible_devices_meant() -> str | None:
    """``CUDA_VISIBLE_DEVICES`` when it names at least one GPU (a scheduler such as Slurm
    gave this process GPUs), else None (unset, empty, or ``-1``: GPUs hidden on purpose)."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    first = value.split(",")[0].strip()
    return None if first in ("", "-1") or first.startswith("-") else value


def resolve_device(name: str) -> torch.device:
    """The torch device of ``device`` = ``name``: ``auto`` is CUDA when present, else the
    CPU; a CUDA device always carries its index (``cuda`` -> ``cuda:0``), so that every
    question about it (capability, memory) is asked of the run's own GPU.

    A process that was given a GPU (``--gpus``, or ``CUDA_VISIBLE_DEVICES`` naming one) and
    sees none raises :class:`AblateError` instead of training on the CPU; in a ``--gpus``
    worker any CUDA device of the spec is the worker's GPU, ``cuda:0``.
    """
    given = worker_gpu()
    if given is not None:
        return _worker_device(name, given)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", 0)
        meant = visible_devices_meant()
        if meant is not None:
            raise AblateError(
                f"device: auto, and CUDA_VISIBLE_DEVICES={meant} gives this process a GPU, but "
                f"torch sees no CUDA device ({_no_cuda_reason()}); fix the driver or torch "
                "build, or set device: cpu to train on the CPU on purpose")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", 0)
    return device


def _worker_device(name: str, given: str) -> torch.device:
    """The device of a ``--gpus`` worker: its one visible GPU, whatever CUDA index the spec
    gave (the launcher refused specs that pin another GPU, or the CPU)."""
    if name != "auto" and torch.device(name).type != "cuda":
        raise AblateError(f"device: {name}, but this worker was given GPU {given} (--gpus); "
                          "use device: auto or cuda with --gpus, or leave --gpus out")
    if not torch.cuda.is_available():
        raise AblateError(f"this worker was given GPU {given} (--gpus) but torch sees no CUDA "
                          f"device ({_no_cuda_reason()}); check `nvidia-smi` and the --gpus ids")
    return torch.device("cuda", 0)


def _no_cuda_reason() -> str:
    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a CPU-only build"
    return f"torch built for CUDA {torch.version.cuda}; no usable GPU or driver"
