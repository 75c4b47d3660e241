"""``study run --gpus``: ids checked against the machine (one line, exit 2, nothing written),
one worker per listed GPU, a spec's device composed with the list, and a worker given a GPU
that never trains on the CPU instead. Only the hardware is mocked (torch's view of CUDA)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import torch

from ablate.errors import AblateError
from ablate.runs.preflight import check_device
from ablate.study.workers import (
    check_device_with_gpus,
    check_gpus,
    gpu_env,
    parse_gpus,
    worker_visible,
)
from ablate.training.devices import GPU_SHARERS_ENV, WORKER_GPU_ENV, resolve_device
from tests.conftest import spec_dict


@pytest.fixture
def two_gpus(monkeypatch):
    """torch in this process sees two CUDA GPUs (the launcher's view; workers are real
    processes that see none)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


def _one_error_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


# ------------------------------------------------------------------------------ the ids


def test_ids_are_comma_separated_indices():
    assert parse_gpus("0,1") == [0, 1]
    assert parse_gpus(" 1 , 1 ") == [1, 1]
    for text, bad in (("0,x", "'x'"), ("", "''"), ("-1", "'-1'"), ("0,,1", "''")):
        with pytest.raises(AblateError, match=f"--gpus {text}: {bad} is not a GPU index"):
            parse_gpus(text)


def test_ids_the_machine_lacks_are_named():
    check_gpus([0, 1, 1], "0,1,1", count=2)
    with pytest.raises(AblateError, match=r"--gpus 0,3: GPU 3 does not exist here; torch "
                                          r"sees 2 GPU\(s\), 0..1"):
        check_gpus([0, 3], "0,3", count=2)
    with pytest.raises(AblateError, match="no CUDA GPU that torch can use, so GPU 0, 1 does "
                                          "not exist; leave --gpus out"):
        check_gpus([0, 1], "0,1", count=0)


def test_a_spec_device_composes_with_the_list_unless_it_contradicts_it():
    for device in ("auto", "cuda"):
        check_device_with_gpus(device, [0, 1], "0,1", "spec.yaml")
    check_device_with_gpus("cuda:1", [1, 1], "1,1", "spec.yaml")  # the pinned GPU, twice
    with pytest.raises(AblateError, match=r"spec.yaml: device: cuda:1 pins GPU 1, but --gpus "
                                          r"0,1 places workers on other GPUs too"):
        check_device_with_gpus("cuda:1", [0, 1], "0,1", "spec.yaml")
    with pytest.raises(AblateError, match="spec.yaml: device: cpu, but --gpus 0 asks for GPUs"):
        check_device_with_gpus("cpu", [0], "0", "spec.yaml")


def test_worker_environment_maps_ids_through_the_launchers_visible_gpus(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert worker_visible(1) == "1"
    assert worker_visible(1, "2,3") == "3"  # a Slurm job's GPUs 2 and 3 are torch's 0 and 1
    assert worker_visible(0, "GPU-8a1c,GPU-77f0") == "GPU-8a1c"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5")
    first, second = gpu_env([0, 0], 0, 2), gpu_env([0, 0], 1, 2)
    assert first["CUDA_VISIBLE_DEVICES"] == second["CUDA_VISIBLE_DEVICES"] == "4"
    assert first[WORKER_GPU_ENV] == "0" and first[GPU_SHARERS_ENV] == "2"
    alone = gpu_env([0, 1], 1, 2)
    assert alone["CUDA_VISIBLE_DEVICES"] == "5" and alone[GPU_SHARERS_ENV] == "1"


# --------------------------------------------------------------------- the worker's device


def test_a_worker_given_a_gpu_trains_on_it_or_fails_in_one_line(monkeypatch):
    monkeypatch.setenv(WORKER_GPU_ENV, "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for name in ("auto", "cuda", "cuda:1"):
        with pytest.raises(AblateError, match=r"this worker was given GPU 1 \(--gpus\) but "
                                              "torch sees no CUDA device"):
            resolve_device(name)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for name in ("auto", "cuda", "cuda:1"):  # its one visible GPU is cuda:0
        assert resolve_device(name) == torch.device("cuda", 0)
    with pytest.raises(AblateError, match="device: cpu, but this worker was given GPU 1"):
        resolve_device("cpu")
    check_device("cuda:1")  # preflight in that worker: its GPU, not a missing cuda:1


def test_auto_does_not_fall_back_to_the_cpu_when_a_gpu_was_given(monkeypatch):
    monkeypatch.delenv(WORKER_GPU_ENV, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # e.g. a Slurm job with one GPU
    with pytest.raises(AblateError, match="CUDA_VISIBLE_DEVICES=0 gives this process a GPU"):
        resolve_device("auto")
    for hidden in ("", "-1"):  # GPUs hidden on purpose: the CPU it is
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", hidden)
        assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("cuda") == torch.device("cuda", 0)  # always with its index


# ------------------------------------------------------------------------- the command


@pytest.mark.parametrize(("gpus", "needle"), [
    ("0,x", "'x' is not a GPU index"),
    ("999", "GPU 999 does not exist"),
])
def test_bad_ids_are_refused_before_anything_is_written(cli, write_spec, empty_store, gpus,
                                                        needle):
    line = _one_error_line(cli("study", "run", write_spec(spec_dict()), "--gpus", gpus,
                               "--store", empty_store))
    assert f"--gpus {gpus}" in line and needle in line
    assert not empty_store.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_no_gpu_here_is_one_line(cli, write_spec, empty_store):
    line = _one_error_line(cli("study", "run", write_spec(spec_dict()), "--gpus", "0",
                               "--store", empty_store))
    assert "no CUDA GPU that torch can use, so GPU 0 does not exist" in line
    assert not empty_store.exists()


def test_a_contradicting_spec_device_is_refused(cli, write_spec, empty_store, two_gpus):
    spec = write_spec(spec_dict(device="cuda:1"))
    line = _one_error_line(cli("study", "run", spec, "--gpus", "0,1", "--store", empty_store))
    assert f"{spec}: device: cuda:1 pins GPU 1, but --gpus 0,1" in line
    assert not (empty_store / "optuna.db").exists()


@pytest.mark.slow  # starts worker processes
def test_one_worker_per_listed_gpu_and_none_falls_back_to_the_cpu(
        cli, write_spec, store: Path, two_gpus, capfd):
    result = cli("study", "run", write_spec(spec_dict()), "--gpus", "0,0", "--store", store)
    assert result.exit_code == 2, result.output
    assert "2 worker(s) x" in result.output  # no --workers: one per listed GPU
    errors = capfd.readouterr().err
    # the workers are real processes on this CPU machine: each refuses in one line
    assert errors.count("this worker was given GPU 0 (--gpus) but torch sees no CUDA "
                        "device") == 2, errors
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{store / 'optuna.db'}")
    assert study.trials == []  # nothing trained on the CPU
