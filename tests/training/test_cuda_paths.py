"""The CUDA paths, checked on the CPU where they can be: the AMP dtype from the run's own GPU
(its capability mocked), the latency timed on the evaluation path, the host looking at the
losses only every few steps, and the figure thread starting after every loader worker.
What needs a GPU is checked by ``make gpu-check`` (benchmarks/gpu_check.py) and the tests
marked ``cuda``."""

from __future__ import annotations

import math

import pytest
import torch

import ablate.training.models as models
from ablate.data import load_data, make_loaders
from ablate.spec import RunConfig
from ablate.training import precision
from ablate.training.engine import CHECK_EVERY, Engine, LossWatch, TrainingError
from ablate.training.evaluation import eval_sources
from ablate.training.train import measure_latency
from tests.conftest import spec_dict


def _config(**changes) -> RunConfig:
    spec = spec_dict(**changes)
    for key in ("name", "trials", "sampler", "search"):
        spec.pop(key, None)
    return RunConfig.model_validate(spec)


# ------------------------------------------------------------------------------ AMP dtype


@pytest.mark.parametrize(("capability", "expected"), [
    ((7, 5), torch.float16),  # T4: bf16 only emulated -> fp16 with a GradScaler
    ((7, 0), torch.float16),  # V100
    ((8, 0), torch.bfloat16),  # A100
    ((8, 6), torch.bfloat16),  # A10, RTX 30xx
    ((9, 0), torch.bfloat16),  # H100
])
def test_amp_dtype_follows_the_capability_of_the_runs_own_gpu(monkeypatch, capability,
                                                               expected):
    asked = []

    def capability_of(device=None):
        asked.append(device)
        return capability

    monkeypatch.setattr(torch.cuda, "get_device_capability", capability_of)
    # is_bf16_supported() says yes on a T4 too (emulation): it must not decide
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    run_gpu = torch.device("cuda", 1)
    assert precision.amp_dtype(run_gpu, enabled=True) == expected
    assert asked == [run_gpu]  # the run's GPU, not the current one
    assert precision.dtype_name(expected) == ("bf16" if expected == torch.bfloat16 else "fp16")


def test_no_amp_off_cuda_or_when_switched_off(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    assert precision.amp_dtype(torch.device("cpu"), enabled=True) is None
    assert precision.amp_dtype(torch.device("cuda", 0), enabled=False) is None
    assert precision.dtype_name(None) == "none"


# --------------------------------------------------------------------------------- latency


def _engine(**changes) -> tuple[Engine, tuple[int, int, int]]:
    config = _config(**changes)
    data = load_data(config.data)
    engine = Engine(config, data, torch.device("cpu"))
    images, _ = next(iter(make_loaders(data, config, config.seed)["val"]))
    return engine, (int(images.shape[1]), int(images.shape[2]), int(images.shape[3]))


def test_latency_times_the_evaluation_path(monkeypatch):
    engine, shape = _engine(eval={"latency_repeats": 2, "tta_flip": True})
    # what a CUDA run evaluates with, set by hand (the CPU runs its autocast for bf16)
    engine.memory_format = torch.channels_last
    engine.amp_dtype = torch.bfloat16
    engine.model.to(memory_format=torch.channels_last)
    monkeypatch.setattr(models, "_LATENCY", {})
    seen: list[tuple] = []
    model_calls = []
    forward = engine.eval_model.forward

    def spy(x):
        model_calls.append(1)
        seen.append((tuple(x.shape), x.device.type,
                     x.is_contiguous(memory_format=torch.channels_last),
                     torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"),
                     engine.eval_model.training))
        return forward(x)

    monkeypatch.setattr(engine.eval_model, "forward", spy)
    median, iqr, note = measure_latency(engine, shape)
    assert math.isfinite(median) and math.isfinite(iqr) and note == ""
    # 3 warm-up + 2 timed passes, each the image and its flip (eval.tta_flip: as evaluated)
    assert len(model_calls) == 2 * 5
    assert {s[0] for s in seen} == {(1, *shape)}
    assert all(device == "cpu" and channels_last and autocast and dtype == torch.bfloat16
               and not training for _, device, channels_last, autocast, dtype, training in seen)


def test_latency_is_cached_per_evaluation_path(monkeypatch):
    engine, shape = _engine(eval={"latency_repeats": 1})
    monkeypatch.setattr(models, "_LATENCY", {})
    timed = []
    real = models.latency_stats
    monkeypatch.setattr(models, "latency_stats",
                        lambda *a, **k: timed.append(a) or real(*a, **k))
    measure_latency(engine, shape)
    measure_latency(engine, shape)  # same path: cached
    engine.amp_dtype = torch.bfloat16  # another autocast dtype: another figure
    measure_latency(engine, shape)
    assert len(timed) == 2


def test_latency_out_of_memory_leaves_the_figure_out(monkeypatch):
    engine, shape = _engine(eval={"latency_repeats": 2})

    def no_memory(*args, **kwargs):
        raise RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate")

    monkeypatch.setattr("ablate.training.train.model_latency", no_memory)
    median, iqr, note = measure_latency(engine, shape)
    assert math.isnan(median) and math.isnan(iqr) and "out of memory" in note


# ------------------------------------------------------------------ losses without host sync


def test_a_bad_step_is_reported_with_its_own_step_when_the_host_looks():
    watch = LossWatch(divergence_factor=10.0, device=torch.device("cpu"))
    watch.observe(torch.tensor(2.0), epoch=0, step=0)  # the bound: 10 x 2
    assert watch.bound == 20.0
    watch.observe(torch.tensor(3.0), epoch=0, step=1)
    watch.observe(torch.tensor(float("nan")), epoch=0, step=2)  # not read yet: no raise
    watch.observe(torch.tensor(50.0), epoch=0, step=3)
    with pytest.raises(TrainingError, match=r"non-finite loss at epoch 0, step 2$"):
        watch.check(epoch=0)

    watch = LossWatch(divergence_factor=10.0, device=torch.device("cpu"))
    for step, value in enumerate([0.5, 0.7, 12.5, float("inf")]):  # bound: 10 x max(0.5, 1)
        watch.observe(torch.tensor(value), epoch=3, step=step)
    with pytest.raises(TrainingError, match=r"diverged at epoch 3, step 2: 12.5 > 10 x"):
        watch.check(epoch=3)


def test_the_first_step_is_checked_at_once_and_no_factor_checks_finiteness_only():
    watch = LossWatch(divergence_factor=None, device=torch.device("cpu"))
    with pytest.raises(TrainingError, match="non-finite loss at epoch 1, step 0"):
        watch.observe(torch.tensor(float("nan")), epoch=1, step=0)
    watch = LossWatch(divergence_factor=None, device=torch.device("cpu"))
    for step, value in enumerate([1.0, 1e30, 2.0]):
        watch.observe(torch.tensor(value), epoch=0, step=step)
    watch.check(epoch=0)  # no bound: a huge finite loss is allowed


def test_device_sums_equal_the_per_step_python_sums():
    generator = torch.Generator().manual_seed(0)
    losses = torch.rand(200, generator=generator, dtype=torch.float32) * 3
    python = 0.0
    device = torch.zeros((), dtype=torch.float64)
    for value in losses:
        python += float(value) * 4
        device += value.to(torch.float64) * 4
    assert float(device) == python  # bit for bit: the curves do not change


def test_the_host_looks_at_the_losses_every_check_every_steps(monkeypatch):
    engine, _ = _engine(data={"synthetic": {"num_images": 40, "size": 32, "channels": 3},
                              "batch_size": 1, "split_ratios": {"train": 0.8, "val": 0.2}})
    loader = make_loaders(load_data(engine.config.data), engine.config, 0)["train"]
    looks = []
    real = LossWatch.check
    monkeypatch.setattr(LossWatch, "check", lambda self, epoch: looks.append(epoch) or
                        real(self, epoch))
    optimizer = torch.optim.SGD(engine.model.parameters(), lr=1e-3)

    class Bar:
        def set_postfix(self, *args, **kwargs):
            pass

    mean, seen = engine.train_epoch(loader, optimizer, 0, Bar())
    steps = len(loader)
    assert seen == steps and math.isfinite(mean)
    assert len(looks) == steps // CHECK_EVERY + 1  # every CHECK_EVERY steps, and at the end


# ------------------------------------------------------------ loader workers and the thread


@pytest.mark.slow  # forks loader worker processes
def test_eval_loader_workers_are_forked_before_the_figure_thread():
    config = _config(data={"num_workers": 1, "synthetic": {"num_images": 12, "size": 32,
                                                                "channels": 3}})
    data = load_data(config.data)
    engine = Engine(config, data, torch.device("cpu"))
    loaders = make_loaders(data, config, config.seed, torch.device("cpu"))
    sources = eval_sources(data, engine, loaders)
    # each read loader is an iterator whose worker processes exist already
    for split, source in sources.items():
        workers = getattr(source, "_workers", None)
        assert workers and all(w.is_alive() for w in workers), split
    for source in sources.values():  # drain them: the workers end cleanly
        list(source)
