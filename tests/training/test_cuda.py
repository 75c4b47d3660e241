"""The CUDA paths on a real GPU (marker ``cuda``; skipped without one; ``make gpu-check`` runs
them): AMP (bf16 where native, fp16 with a GradScaler), channels_last, pinned batches with
uint8 masks, the kept label codes copied to the CPU, the figure thread, deterministic runs
that repeat bit for bit, a real out-of-memory error and the latency on the evaluation path."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch

import ablate.training.engine
from ablate.data import load_data, make_loaders
from ablate.spec import RunConfig
from ablate.training.determinism import CUBLAS_ENV
from ablate.training.engine import Engine
from ablate.training.memory import is_out_of_memory, release_memory
from ablate.training.optim import build_optimizer
from ablate.training.precision import NATIVE_BF16
from ablate.training.train import measure_latency, train
from tests.conftest import spec_dict

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.slow,
    pytest.mark.skipif(not torch.cuda.is_available(),
                       reason="needs a CUDA device (make gpu-check runs these on a GPU)"),
]
GPU = torch.device("cuda", 0)


def _config(**changes) -> RunConfig:
    spec = spec_dict(device="cuda", **changes)
    for key in ("name", "trials", "sampler", "search"):
        spec.pop(key, None)
    return RunConfig.model_validate(spec)


class _Bar:
    def set_postfix(self, *args, **kwargs):
        pass


def _engine(config: RunConfig) -> tuple[Engine, dict]:
    data = load_data(config.data)
    return Engine(config, data, GPU), make_loaders(data, config, config.seed, GPU)


def test_amp_dtype_is_what_this_gpu_does_natively():
    engine, _ = _engine(_config())
    native = tuple(torch.cuda.get_device_capability(GPU)) >= NATIVE_BF16
    assert engine.amp_dtype == (torch.bfloat16 if native else torch.float16)
    assert engine.scaler.is_enabled() == (not native)


def test_fp16_trains_with_a_grad_scaler(monkeypatch):
    monkeypatch.setattr(ablate.training.engine, "amp_dtype",
                        lambda device, enabled: torch.float16 if enabled else None)
    engine, loaders = _engine(_config(optim={"epochs": 1, "grad_clip": 1.0}))
    engine.model.to(memory_format=engine.memory_format)
    assert engine.amp_dtype == torch.float16 and engine.scaler.is_enabled()
    optimizer = build_optimizer(engine.config.optim, engine.model)
    loss, seen = engine.train_epoch(loaders["train"], optimizer, 0, _Bar())
    assert math.isfinite(loss) and seen > 0
    assert 0 < engine.scaler.get_scale() < math.inf


def test_channels_last_reaches_the_model_and_the_batches():
    engine, loaders = _engine(_config())
    assert engine.memory_format == torch.channels_last
    engine.model.to(memory_format=engine.memory_format)
    conv = next(m for m in engine.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    images, masks = engine.to_device(*next(iter(loaders["train"])))
    assert images.is_contiguous(memory_format=torch.channels_last)
    assert masks.device.type == "cuda" and masks.dtype == torch.uint8


def test_batches_come_pinned_from_persistent_workers():
    _, loaders = _engine(_config())
    loader = loaders["train"]
    assert loader.num_workers >= 1 and loader.persistent_workers and loader.pin_memory
    images, masks = next(iter(loader))
    assert images.is_pinned() and masks.is_pinned() and masks.dtype == torch.uint8


def test_kept_codes_are_copied_to_the_cpu_and_count_the_same():
    engine, loaders = _engine(_config(eval={"full_resolution": False}))
    engine.model.to(memory_format=engine.memory_format)
    first = engine.evaluate(loaders["val"], keep=True)
    assert first.kept.codes and all(c.device.type == "cpu" for c in first.kept.codes)
    again = engine.evaluate(loaders["val"], reuse=first.kept)
    assert torch.equal(first.counts.matrix.cpu(), again.counts.matrix.cpu())


def test_a_run_draws_its_figures_beside_the_evaluation(tmp_path: Path):
    result = train(_config(optim={"epochs": 2}, eval={"latency_repeats": 3}),
                   artifact_dir=tmp_path, progress=False)
    for name in ("curves.png", "gallery.png", "model.pt"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert result.peak_memory_mb is not None and result.peak_memory_mb > 0
    assert math.isfinite(result.latency_ms)
    assert int(result.applied["loader_workers"]) >= 1
    assert os.environ.get(CUBLAS_ENV)  # set before this process's first cuBLAS handle


def test_deterministic_runs_repeat_bit_for_bit():
    config = _config(optim={"epochs": 2}, eval={"latency_repeats": 0, "gallery": 0})
    first = train(config, progress=False)
    second = train(config, progress=False)
    assert first.applied["reproducible"] == "same GPU model", first.applied
    # repr: NaN (an absent class) compares equal to NaN
    assert repr(first.history) == repr(second.history)
    assert repr(first.metrics) == repr(second.metrics)


def test_latency_on_the_gpu_evaluation_path():
    engine, loaders = _engine(_config(eval={"latency_repeats": 3}))
    images, _ = next(iter(loaders["val"]))
    median, iqr, note = measure_latency(engine, tuple(images.shape[1:]))
    assert math.isfinite(median) and median > 0 and note == ""


def test_a_real_out_of_memory_error_is_recognised_and_released():
    before = torch.cuda.memory_allocated(GPU)
    total = torch.cuda.get_device_properties(GPU).total_memory
    try:
        torch.empty(2 * total, dtype=torch.uint8, device=GPU)
    except Exception as err:  # noqa: BLE001 - what torch raises is the point
        assert is_out_of_memory(err), repr(err)
    else:
        pytest.fail("an allocation of twice the GPU's memory succeeded")
    release_memory()
    assert torch.cuda.memory_allocated(GPU) == before
