"""Memory is released between trials: no tensors (or CUDA memory) pile up over a long study."""

from __future__ import annotations

import gc

import pytest
import torch

from ablate.spec import RunConfig
from ablate.training.memory import release_memory
from ablate.training.train import train
from tests.conftest import spec_dict

pytestmark = pytest.mark.slow  # trains, or starts processes or servers


def _config(device: str) -> RunConfig:
    spec = spec_dict(device=device, optim={"epochs": 1}, eval={"gallery": 0,
                                                               "latency_repeats": 1})
    for key in ("name", "trials", "sampler", "search"):
        spec.pop(key)
    return RunConfig.model_validate(spec)


def _live_tensors() -> int:
    return sum(1 for o in gc.get_objects() if isinstance(o, torch.Tensor))


def test_no_tensors_survive_a_trial():
    config = _config("cpu")
    counts = []
    for _ in range(6):
        train(config, progress=False)
        release_memory()
        counts.append(_live_tensors())
    # after the first trial (which may warm caches) the count must stay flat
    assert counts[-1] <= counts[1], counts


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_memory_does_not_grow_over_50_trials():
    config = _config("cuda")
    train(config, progress=False)
    release_memory()
    baseline = torch.cuda.memory_allocated()
    for _ in range(50):
        train(config, progress=False)
        release_memory()
    assert torch.cuda.memory_allocated() <= baseline
