"""The final evaluation: every split once, on the chosen weights, counts over whole splits."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader

from ablate.data import DataSplits, make_dataset
from ablate.engine import Engine
from ablate.metrics import compute_metrics


@dataclass
class Evaluation:
    """Per split: metrics, the confusion matrix and (binary) the matrices at each scanned
    threshold."""

    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    matrices: dict[str, np.ndarray] = field(default_factory=dict)
    threshold_matrices: dict[str, dict[float, np.ndarray]] = field(default_factory=dict)


def eval_loaders(data: DataSplits, engine: Engine,
                 loaders: dict[str, DataLoader]) -> dict[str, DataLoader]:
    """Un-augmented loaders for every split (train is re-read without augmentation)."""
    config = engine.config
    batch = config.data.eval_batch_size or config.data.batch_size
    train_eval = DataLoader(
        make_dataset(data.splits["train"], data, config, train=False),
        batch_size=batch,
        shuffle=False,
        num_workers=config.data.num_workers,
    )
    out = {"train": train_eval, "val": loaders["val"]}
    if "test" in loaders:
        out["test"] = loaders["test"]
    return out


def evaluate_splits(engine: Engine, data: DataSplits,
                    loaders: dict[str, DataLoader]) -> Evaluation:
    """Metrics of train, val and test with the engine's current (best) weights.

    With ``eval.full_resolution`` the counts compare each predicted label map, resized back
    to its mask's original size, with that mask. Class balance figures are added per split.
    """
    config = engine.config
    spec = config.data
    scan = tuple(config.eval.thresholds) if spec.task == "binary" else ()
    out = Evaluation()
    for split, loader in eval_loaders(data, engine, loaders).items():
        originals = None
        if config.eval.full_resolution:
            originals = [sample.mask for sample in data.splits[split]]
        loss, counts, scanned = engine.evaluate(loader, scan, originals)
        matrix = counts.matrix.cpu().numpy()
        out.matrices[split] = matrix
        out.threshold_matrices[split] = {t: m.matrix.cpu().numpy() for t, m in scanned.items()}
        out.metrics[split] = compute_metrics(matrix, spec.task, spec.names, spec.ignore_index)
        out.metrics[split]["loss"] = loss
    for split, balance in data.class_balance().items():
        out.metrics.setdefault(split, {}).update(balance)
    return out


def load_best(engine: Engine, state: dict[str, torch.Tensor] | None) -> None:
    """Put the best epoch's weights back into the evaluated model."""
    if state is not None:
        engine.eval_model.load_state_dict(state)
