"""Out of memory: recognising it, the smaller batch a retry trains with, and freeing memory.

A retry after an out-of-memory error must not see the failed attempt's tensors: the
exception's traceback holds every frame of that attempt (and so its activations and
gradients) until the exception is dropped. Callers record what they need inside the
``except`` block, leave it, and only then call :func:`release_memory`.
"""

from __future__ import annotations

import gc

import torch

from ablate.spec import RunConfig

# What the CUDA libraries say when an allocation fails: the caching allocator raises
# torch.cuda.OutOfMemoryError, but a failure inside cuBLAS, cuDNN or cuFFT (a workspace, a
# handle) comes back as a plain RuntimeError carrying the library's status name.
OOM_MARKERS = (
    "out of memory",  # torch's allocators, "CUDA error: out of memory" from the driver
    "cublas_status_alloc_failed",
    "cudnn_status_alloc_failed",
    "cudnn_status_not_enough_workspace",
    "cufft_alloc_failed",
    "cusolver_status_alloc_failed",
    "cusparse_status_alloc_failed",
)


def is_out_of_memory(err: BaseException) -> bool:
    """CUDA out of memory, or an allocation failure of cuBLAS/cuDNN/cuFFT/cuSOLVER/cuSPARSE
    (or a CPU allocator) reported as a RuntimeError."""
    if isinstance(err, torch.cuda.OutOfMemoryError):
        return True
    if not isinstance(err, RuntimeError):
        return False
    text = str(err).lower()
    return any(marker in text for marker in OOM_MARKERS)


def halved_batch(config: RunConfig) -> dict[str, int]:
    """The values a retry after an out-of-memory error trains with, by dotted path: half the
    batch and twice the gradient accumulation, so the optimiser steps once per the same number
    of images; ``data.eval_batch_size`` halved too when it is set (when unset it follows
    ``data.batch_size``), so that an error in validation or in the final evaluation gets a
    smaller batch as well. Batch norm sees the smaller batch (its statistics are per forward
    pass, not per optimiser step)."""
    values = {"data.batch_size": max(1, config.data.batch_size // 2),
              "optim.grad_accum": config.optim.grad_accum * 2}
    if config.data.eval_batch_size is not None:
        values["data.eval_batch_size"] = max(1, config.data.eval_batch_size // 2)
    return values


def release_memory() -> None:
    """Collect garbage and give the CUDA caching allocator's free blocks back to the driver
    (call it once the exception of a failed attempt and its traceback are dropped)."""
    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
