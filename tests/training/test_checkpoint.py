"""A fit state's file: every tensor back bit for bit, a torn or foreign file is no state."""

from __future__ import annotations

import random
from collections import OrderedDict

import numpy as np
import torch

from ablate.training.checkpoint import FitState, load_state, random_states, save_state


def _state() -> FitState:
    model = OrderedDict(weight=torch.randn(3, 4), half=torch.randn(5).to(torch.bfloat16),
                        empty=torch.zeros(0, 2), count=torch.tensor(7))
    model._metadata = OrderedDict({"": {"version": 2}})  # type: ignore[attr-defined]
    return FitState(
        epoch=3, history=[{"epoch": 1.0, "val_iou": 0.5}], best_value=0.5, best_epoch=1,
        stale=2, model=model,
        optimizer={"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.ones(3, 4)}},
                   "param_groups": [{"lr": 0.01, "params": [0]}]},
        scheduler={"epoch": 3}, scaler={}, ema=None,
        rng=random_states(torch.Generator().manual_seed(4)), loss_bound=None,
        best_state={"weight": torch.arange(12.0).reshape(3, 4)}, seconds=(1.0, 0.5, 8),
        extra={"trial": 2})


def test_a_state_comes_back_bit_for_bit(tmp_path):
    state = _state()
    path = tmp_path / "state.pt"
    save_state(state, path)
    back = load_state(path, torch.device("cpu"))
    assert back is not None
    for key in ("weight", "half", "empty", "count"):
        assert back.model[key].dtype == state.model[key].dtype
        assert torch.equal(back.model[key], state.model[key])
    assert back.model._metadata == state.model._metadata  # type: ignore[attr-defined]
    assert torch.equal(back.optimizer["state"][0]["exp_avg"], torch.ones(3, 4))
    assert back.optimizer["param_groups"] == state.optimizer["param_groups"]
    assert torch.equal(back.best_state["weight"], state.best_state["weight"])  # type: ignore[index]
    assert (back.epoch, back.history, back.stale, back.extra) == (3, state.history, 2,
                                                                  {"trial": 2})
    assert torch.equal(back.rng["torch"], state.rng["torch"])
    assert back.rng["torch"].device.type == "cpu"  # torch keeps random states there
    random.setstate(back.rng["python"])
    np.random.set_state(back.rng["numpy"])


def test_a_torn_or_foreign_file_is_no_state(tmp_path):
    path = tmp_path / "state.pt"
    save_state(_state(), path)
    whole = path.read_bytes()
    path.write_bytes(whole[:-10])  # cut short in the tensors
    assert load_state(path, torch.device("cpu")) is None
    path.write_bytes(whole[:40])  # cut short in the header
    assert load_state(path, torch.device("cpu")) is None
    torch.save({"format": 1, "state": {}}, path)  # the old torch.save layout
    assert load_state(path, torch.device("cpu")) is None
    assert load_state(tmp_path / "none.pt", torch.device("cpu")) is None
