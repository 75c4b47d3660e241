"""``deterministic``: torch's settings per run, cuBLAS's workspace before CUDA starts, the
operations that have no deterministic implementation recorded, and what a run says about
being reproducible."""

from __future__ import annotations

import os
import warnings

import pytest
import torch
from torch._prims_common import alert_not_deterministic

from ablate.spec import RunConfig
from ablate.training import determinism
from tests.conftest import spec_dict

CUDA, CPU = torch.device("cuda", 0), torch.device("cpu")


@pytest.fixture
def torch_flags():
    """Restore torch's process-wide flags after the test."""
    saved = (torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    yield
    torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[2:]


def _flags() -> tuple[bool, bool, bool, bool]:
    return (torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled(),
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)


def test_deterministic_is_the_default_and_a_top_level_key():
    spec = spec_dict()
    for key in ("name", "trials", "sampler", "search"):
        spec.pop(key)
    assert RunConfig.model_validate(spec).deterministic is True
    assert RunConfig.model_validate({**spec, "deterministic": False}).deterministic is False


def test_settings_per_run(torch_flags):
    determinism.apply(True, CUDA)
    assert _flags() == (True, True, True, False)  # deterministic, warn where impossible
    determinism.apply(False, CUDA)
    assert _flags() == (False, True, False, True)  # cuDNN autotunes
    determinism.apply(True, CPU)  # CPU kernels are deterministic: nothing switched on
    assert _flags()[0] is False and _flags()[2:] == (False, False)


def test_cublas_workspace_is_set_unless_the_user_set_it(monkeypatch):
    monkeypatch.delenv(determinism.CUBLAS_ENV, raising=False)
    determinism.prepare_process()
    assert os.environ[determinism.CUBLAS_ENV] == ":4096:8"
    monkeypatch.setenv(determinism.CUBLAS_ENV, ":16:8")
    determinism.prepare_process()
    assert os.environ[determinism.CUBLAS_ENV] == ":16:8"


def _run_ops() -> list[str]:
    with determinism.nondeterministic_ops(True) as ops:
        for _ in range(3):
            alert_not_deterministic("upsample_bilinear2d_backward_out_cuda")
        alert_not_deterministic("nll_loss2d_forward_out_cuda_template")
        warnings.warn("something else", UserWarning, stacklevel=1)
    return ops


def test_operations_without_a_deterministic_implementation_are_recorded(torch_flags):
    torch.use_deterministic_algorithms(True, warn_only=True)
    expected = ["upsample_bilinear2d_backward_out_cuda", "nll_loss2d_forward_out_cuda_template"]
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        assert _run_ops() == expected
    texts = [str(w.message) for w in shown]
    assert texts.count("something else") == 1  # other warnings are shown as usual
    assert sum("upsample_bilinear2d" in t for t in texts) == 1  # once per operation
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("ignore")  # the user's filters hide them: recorded all the same
        assert _run_ops() == expected
    assert shown == []
    with warnings.catch_warnings(record=True):
        with determinism.nondeterministic_ops(False) as ops:  # not a deterministic CUDA run
            alert_not_deterministic("anything")
    assert ops == []


def test_what_is_reproducible_where():
    assert determinism.reproducibility(CPU, True, []) == "same machine"
    assert determinism.reproducibility(CPU, False, []) == "same machine"
    assert determinism.reproducibility(CUDA, True, []) == "same GPU model"
    assert determinism.reproducibility(CUDA, False, []).startswith("no: deterministic is false")
    assert determinism.reproducibility(CUDA, True, ["op_a", "op_b"]) == (
        "no: ran without a deterministic implementation: op_a, op_b")
