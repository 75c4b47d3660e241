"""The final evaluation: val counted again from the best epoch's kept pass gives exactly what
running the model on the best weights gives; the gallery and the model.pt come from them too."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ablate.data import load_data, make_loaders
from ablate.spec import RunConfig
from ablate.training import engine as engine_module
from ablate.training import figures as plots
from ablate.training.engine import Engine
from ablate.training.evaluation import Evaluation, evaluate_splits, load_best
from ablate.training.fit import fit
from tests.conftest import spec_dict

pytestmark = pytest.mark.slow  # trains (a few seconds)


def _config(**sections) -> RunConfig:
    spec = spec_dict(**sections)
    for key in ("name", "trials", "sampler", "search"):
        spec.pop(key, None)
    return RunConfig.model_validate(spec)


MULTICLASS = {"task": "multiclass", "num_classes": 4, "ignore_index": 3, "size": [24, 24]}
CASES = {
    # binary at the masks' original 32x32 from a 24x24 model input, with a threshold scan
    "binary": {"data": {"size": [24, 24]}, "eval": {"thresholds": [0.3, 0.5, 0.7]}},
    "binary, TTA and EMA": {"data": {"size": [24, 24]}, "eval": {"tta_flip": True},
                           "optim": {"ema": True, "ema_decay": 0.5}},
    "binary at model resolution": {"data": {"size": [24, 24]},
                                   "eval": {"full_resolution": False}},
    "multiclass with a void class": {"data": MULTICLASS, "loss": {"weights": {"ce": 1.0}},
                                     "objective": {"metric": "val_miou",
                                                   "direction": "maximize"}},
}


def _fitted(config: RunConfig):
    torch.manual_seed(0)
    data = load_data(config.data)
    loaders = make_loaders(data, config, 0)
    engine = Engine(config, data, torch.device("cpu"))
    engine.start_ema()
    fitted = fit(engine, loaders, progress=False)
    load_best(engine, fitted.best_state)
    return engine, data, loaders, fitted


def _same(a: Evaluation, b: Evaluation) -> None:
    assert a.metrics == b.metrics
    assert a.matrices.keys() == b.matrices.keys()
    for split in a.matrices:
        assert np.array_equal(a.matrices[split], b.matrices[split]), split
        assert a.threshold_matrices[split].keys() == b.threshold_matrices[split].keys()
        for t, m in a.threshold_matrices[split].items():
            assert np.array_equal(m, b.threshold_matrices[split][t]), (split, t)
    assert a.images is not None and b.images is not None
    for split, counts in a.images.counts.items():
        assert np.array_equal(counts, b.images.counts[split]), split


@pytest.mark.parametrize("case", list(CASES))
def test_val_from_the_kept_pass_equals_running_the_best_weights(case):
    config = _config(**{"optim": {"epochs": 3, "lr": 0.02}, **CASES[case]})
    engine, data, loaders, fitted = _fitted(config)
    assert fitted.best_pass is not None and fitted.best_pass.codes is not None
    assert fitted.best_pass.loss == fitted.history[fitted.best_epoch - 1]["val_loss"]

    replayed = evaluate_splits(engine, data, loaders, fitted.best_pass)
    recomputed = evaluate_splits(engine, data, loaders)
    _same(replayed, recomputed)
    assert replayed.metrics["val"]["loss"] == pytest.approx(recomputed.metrics["val"]["loss"],
                                                            rel=1e-6)


def test_a_val_split_too_large_to_keep_is_evaluated_again(monkeypatch):
    monkeypatch.setattr(engine_module, "KEEP_BYTES", 10)  # less than one batch of codes
    config = _config(optim={"epochs": 2}, data={"size": [24, 24]})
    engine, data, loaders, fitted = _fitted(config)
    assert fitted.best_pass is not None and fitted.best_pass.codes is None
    calls = []
    logits = engine.logits
    monkeypatch.setattr(engine, "logits", lambda images: calls.append(1) or logits(images))
    evaluation = evaluate_splits(engine, data, loaders, fitted.best_pass)
    assert len(calls) == sum(len(loader) for loader in loaders.values())  # val ran again
    monkeypatch.undo()
    _same(evaluation, evaluate_splits(engine, data, loaders))


def test_the_gallery_from_the_kept_pass_shows_the_model_s_predictions():
    config = _config(optim={"epochs": 2}, data={"size": [24, 24]}, eval={"gallery": 3})
    engine, _, loaders, fitted = _fitted(config)
    kept = plots.gallery_rows(engine, loaders["val"], config, fitted.best_pass)
    ran = plots.gallery_rows(engine, loaders["val"], config)
    assert len(kept) == len(ran) == 3
    for (image_a, mask_a, pred_a), (image_b, mask_b, pred_b) in zip(kept, ran, strict=True):
        assert torch.equal(image_a, image_b) and torch.equal(mask_a, mask_b)
        assert torch.equal(pred_a, pred_b) and pred_a.dtype == torch.int64
