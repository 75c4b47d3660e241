"""Out of memory: the errors counted as such, the halved configuration, the batch-1
measurements that survive it, and a retry that starts without the failed attempt's memory
(an injected cuBLAS allocation failure through a real study)."""

from __future__ import annotations

import gc
import weakref

import optuna
import pytest
import torch
from mlflow.tracking import MlflowClient

import ablate.training.train
from ablate.data import load_data, make_loaders
from ablate.spec import RunConfig
from ablate.study import runner
from ablate.tracking import names as keys
from ablate.training.engine import Engine
from ablate.training.memory import halved_batch, is_out_of_memory
from ablate.training.train import measure_model
from tests.conftest import spec_dict

CUBLAS = ("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling "
          "`cublasCreate(handle)`")


def _config(**changes) -> RunConfig:
    spec = spec_dict(**changes)
    for key in ("name", "trials", "sampler", "search"):
        spec.pop(key, None)
    return RunConfig.model_validate(spec)


@pytest.mark.parametrize("err", [
    torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    RuntimeError(CUBLAS),
    RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"),
    RuntimeError("CUDA error: out of memory\nCUDA kernel errors might be reported..."),
    RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate 1 bytes. "
                 "Buy new RAM! out of memory"),
])
def test_allocation_failures_are_out_of_memory(err):
    assert is_out_of_memory(err)


@pytest.mark.parametrize("err", [
    RuntimeError("mat1 and mat2 shapes cannot be multiplied"),
    RuntimeError("CUBLAS_STATUS_EXECUTION_FAILED"),
    ValueError("out of memory"),  # not what torch raises
])
def test_other_errors_are_not(err):
    assert not is_out_of_memory(err)


def test_halving_reaches_the_eval_batch_and_keeps_the_step():
    config = _config(data={"batch_size": 8, "eval_batch_size": 16}, optim={"grad_accum": 2})
    half = halved_batch(config)
    assert half == {"data.batch_size": 4, "data.eval_batch_size": 8, "optim.grad_accum": 4}
    assert half["data.batch_size"] * half["optim.grad_accum"] == 16  # images per step
    # unset, the eval batch follows the batch
    assert halved_batch(_config(data={"batch_size": 8})) == {"data.batch_size": 4,
                                                             "optim.grad_accum": 2}


def test_flops_are_counted_on_a_cpu_copy_when_the_pass_does_not_fit(monkeypatch):
    config = _config()
    data = load_data(config.data)
    engine = Engine(config, data, torch.device("cpu"))
    val = make_loaders(data, config, config.seed)["val"]
    expected = measure_model(engine, val)[2]
    real = ablate.training.train.model_flops
    counted = []

    def flops(spec, model, shape, classes):
        if model is engine.model:  # the model on the run's device: no room for batch 1
            raise torch.cuda.OutOfMemoryError("CUDA out of memory.")
        counted.append(model)
        return real(spec, model, shape, classes)

    monkeypatch.setattr(ablate.training.train, "model_flops", flops)
    shape, params, count = measure_model(engine, val)
    assert count == expected and counted and counted[0] is not engine.model
    assert next(counted[0].parameters()).device.type == "cpu"


# ----------------------------------------------------------------- a retry through a study

FIRST_ATTEMPT: list[weakref.ref] = []


@pytest.fixture
def cublas_fails_at_batch_4(monkeypatch):
    """Engines whose first training step at batch 4 holds a tensor (the failed attempt's
    activations) and raises cuBLAS's allocation failure; each engine records whether that
    tensor was still alive when it was built."""
    real = ablate.training.train.Engine
    alive_at_start: list[bool] = []

    class Failing(real):  # type: ignore[misc, valid-type]
        def __init__(self, config, data, device):
            gc.collect()  # what is still referenced stays, whatever the collector's timing
            alive_at_start.append(any(ref() is not None for ref in FIRST_ATTEMPT))
            super().__init__(config, data, device)

        def train_epoch(self, loader, optimizer, epoch, bar):
            if self.config.data.batch_size >= 4:
                activations = torch.ones(256, 256)  # held by this frame's traceback
                FIRST_ATTEMPT.append(weakref.ref(activations))
                raise RuntimeError(CUBLAS)
            return super().train_epoch(loader, optimizer, epoch, bar)

    released_with: list[bool] = []
    real_release = runner.release_memory

    def release() -> None:  # what is still referenced when the memory is handed back
        released_with.append(any(ref() is not None for ref in FIRST_ATTEMPT))
        real_release()

    monkeypatch.setattr(ablate.training.train, "Engine", Failing)
    monkeypatch.setattr(runner, "release_memory", release)
    FIRST_ATTEMPT.clear()
    return alive_at_start, released_with


@pytest.mark.slow  # trains
def test_cublas_failure_retries_with_half_batches_and_the_memory_freed(
        cli, write_spec, store, cublas_fails_at_batch_4):
    spec = spec_dict(on_oom="halve_batch", trials=1,
                     data={"batch_size": 4, "eval_batch_size": 6})
    result = cli("study", "run", write_spec(spec), "--store", store, "--quiet")
    assert result.exit_code == 0, result.output
    assert ("out of memory at batch size 4; queued again as a new trial with batch size 2 x 2"
            in result.output)
    alive_at_start, released_with = cublas_fails_at_batch_4
    assert alive_at_start == [False, False]  # the retry's engine: attempt 1 is gone
    # the release before the retry came once the failed attempt's traceback was dropped
    assert released_with and released_with[0] is False
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{store / 'optuna.db'}")
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.FAIL,
                                               optuna.trial.TrialState.COMPLETE]
    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    where = f"tags.`{keys.TAG_ROLE}` = 'trial' and attributes.status = 'FINISHED'"
    (run,) = client.search_runs([client.get_experiment_by_name("tiny").experiment_id], where)
    tags = run.data.tags
    assert (tags[keys.TAG_OOM_BATCH], tags[keys.TAG_OOM_ACCUM],
            tags[keys.TAG_OOM_EVAL_BATCH]) == ("2", "2", "3")
