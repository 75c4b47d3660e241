"""Bit-reproducible training on CUDA (``deterministic: true``, the default) and what a run
records about it.

What is bit-identical where:

- CPU: two runs of the same configuration and seed on the same machine, libraries and torch
  thread count (CPU kernels are deterministic; nothing is switched here);
- CUDA with ``deterministic: true``: on the same GPU model, driver and libraries, unless an
  operation without a deterministic implementation ran (torch warns; the run records it as
  not reproducible and names the operations);
- CUDA with ``deterministic: false``: nothing (cuDNN autotunes and picks the fastest
  algorithms, atomics sum in any order).

cuBLAS reads ``CUBLAS_WORKSPACE_CONFIG`` when it creates its handle, on the first matrix
product of the process: :func:`prepare_process` sets it before a run touches CUDA (the
launcher of ``--workers`` sets it in each worker's environment too).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch

CUBLAS_ENV = "CUBLAS_WORKSPACE_CONFIG"
CUBLAS_VALUE = ":4096:8"  # torch's documented setting for deterministic cuBLAS (about 24 MiB)
# The start of torch's warning for an operation without a deterministic implementation
# under use_deterministic_algorithms(True, warn_only=True).
_WARNING = "does not have a deterministic implementation"


def prepare_process() -> None:
    """Set ``CUBLAS_WORKSPACE_CONFIG`` for this process unless it is set already (the user's
    value wins); it takes effect only before CUDA's first cuBLAS handle exists."""
    os.environ.setdefault(CUBLAS_ENV, CUBLAS_VALUE)


def apply(deterministic: bool, device: torch.device) -> None:
    """Switch torch's process-wide settings for one run: on CUDA with ``deterministic``,
    deterministic cuDNN algorithms without autotuning and deterministic algorithms wherever
    torch has them (warning where it has none); otherwise cuDNN's autotuner (the fastest
    algorithms). CPU runs leave the deterministic-algorithms mode off (CPU kernels are
    deterministic already; switching it would change some kernels' numbers)."""
    exact = deterministic and device.type == "cuda"
    torch.backends.cudnn.deterministic = exact
    torch.backends.cudnn.benchmark = device.type == "cuda" and not deterministic
    torch.use_deterministic_algorithms(exact, warn_only=True)


@contextmanager
def nondeterministic_ops(active: bool) -> Iterator[list[str]]:
    """Collect the operations torch warned about as having no deterministic implementation
    while the block runs (``active``: a deterministic CUDA run; otherwise nothing is
    collected). Every warning is shown as usual once the block ends."""
    found: list[str] = []
    if not active:
        yield found
        return
    with warnings.catch_warnings(record=True) as caught:
        # recorded whatever the user's filters say (every occurrence: each may name another op)
        warnings.filterwarnings("always", message=f".*{_WARNING}")
        yield found
    for item in caught:
        text = str(item.message)
        if _WARNING in text:
            op = text.split(_WARNING)[0].strip() or "an operation"
            if op in found:
                continue
            found.append(op)
        warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)


def reproducibility(device: torch.device, deterministic: bool, ops: list[str]) -> str:
    """What a run can be reproduced bit for bit on (the ``ablate.reproducible`` tag):
    ``same machine`` (CPU), ``same GPU model`` (deterministic CUDA), or ``no: ...``."""
    if device.type != "cuda":
        return "same machine"
    if not deterministic:
        return "no: deterministic is false (cuDNN autotuning, atomic sums)"
    if ops:
        return f"no: ran without a deterministic implementation: {', '.join(ops)}"[:400]
    return "same GPU model"
