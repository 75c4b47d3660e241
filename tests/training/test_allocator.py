"""The training process keeps freed memory for the next step instead of faulting it in again."""

from __future__ import annotations

import resource

import pytest
import torch

from ablate.training import allocator


def _faults_of_steps(steps: int) -> int:
    """Minor page faults of ``steps`` rounds of what a training step does to memory: ten
    4 MiB tensors written, then all freed."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(steps):
        blocks = [torch.ones(2**20) for _ in range(10)]
        del blocks
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def test_a_freed_step_s_memory_is_reused_without_page_faults():
    if not allocator.keep_freed_memory():
        pytest.skip("not glibc, or the allocator is tuned by the environment")
    _faults_of_steps(1)  # the first round faults its pages in
    one_round = 40 * 2**20 // resource.getpagesize()
    # with glibc's defaults the heap top is trimmed after each round: ~one_round faults each
    assert _faults_of_steps(10) < one_round


@pytest.mark.parametrize("name", ["MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES", "LD_PRELOAD"])
def test_the_user_s_allocator_settings_are_left_alone(monkeypatch, name):
    monkeypatch.setenv(name, "1")
    assert allocator._apply() is False
