"""The C allocator of a training process: freed tensors kept for the next step (glibc).

With glibc's defaults every CPU training step hands most of what it freed back to the
operating system (large blocks are unmapped, the heap top is trimmed) and the next step faults
the same memory in again, page by page: on 2 cores a quickstart epoch spent 15-20 % of its
time in the kernel doing that. Fixed thresholds keep the memory of one step for the next; the
process then holds about its peak, which each step reaches anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

# mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 32 * 2**20  # glibc's largest: blocks up to this come from the heap, reused
TRIM_THRESHOLD = 2**30  # free memory at the heap top kept, up to this

# The user's own choice wins: glibc's tunables, or another allocator preloaded.
USER_SETTINGS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES")

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Set glibc's trim and mmap thresholds for this process (and the loader workers it
    forks later); once per process. Returns whether they are set: not off glibc, nor where
    the user tuned the allocator (``MALLOC_*_`` variables, ``GLIBC_TUNABLES``, a preloaded
    jemalloc or tcmalloc)."""
    global _applied
    if _applied is None:
        _applied = _apply()
    return _applied


def _apply() -> bool:
    if any(os.environ.get(name) for name in USER_SETTINGS) or os.environ.get("LD_PRELOAD"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # noqa: B018 - present on glibc only
    except (OSError, AttributeError):
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
