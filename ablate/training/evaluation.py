"""The final evaluation: every split once, on the chosen weights, counts over whole splits."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader

from ablate.data import DataSplits, loader_workers, make_dataset
from ablate.metrics.counts import compute_metrics
from ablate.metrics.scores import image_counts
from ablate.training.engine import Engine, SplitPass
from ablate.training.result import ImageCounts

IMAGE_SPLITS = ("val", "test")  # splits whose per-image counts are kept


@dataclass
class Evaluation:
    """Per split: metrics, the confusion matrix, (binary) the matrices at each scanned
    threshold, and for val and test the counts of each image."""

    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    matrices: dict[str, np.ndarray] = field(default_factory=dict)
    threshold_matrices: dict[str, dict[float, np.ndarray]] = field(default_factory=dict)
    images: ImageCounts | None = None


def eval_loaders(data: DataSplits, engine: Engine,
                 loaders: dict[str, DataLoader]) -> dict[str, DataLoader]:
    """Un-augmented loaders for every split (train is re-read without augmentation)."""
    config = engine.config
    batch = config.data.eval_batch_size or config.data.batch_size
    samples = data.splits["train"]
    train_eval = DataLoader(
        make_dataset(samples, data, config, train=False),
        batch_size=batch,
        shuffle=False,
        num_workers=loader_workers(config.data.num_workers, engine.device,
                                   math.ceil(len(samples) / batch)),
        pin_memory=engine.device.type == "cuda",
    )
    out = {"train": train_eval, "val": loaders["val"]}
    if "test" in loaders:
        out["test"] = loaders["test"]
    return out


def reads_loader(split: str, engine: Engine, val_pass: SplitPass | None) -> bool:
    """Whether the final evaluation reads ``split``'s loader: not val when the best
    epoch's kept codes are counted at full resolution (no model, no masks from the loader)."""
    kept = split == "val" and val_pass is not None and val_pass.codes is not None
    return not (kept and engine.config.eval.full_resolution)


def eval_sources(data: DataSplits, engine: Engine, loaders: dict[str, DataLoader],
                 val_pass: SplitPass | None = None) -> dict[str, Iterable]:
    """:func:`eval_loaders`, each one that will be read and has worker processes already
    iterated (its workers forked now): called before the figure thread starts, so that no
    worker is forked while another thread of this process may hold a lock (a fork copies the
    calling thread only; a lock held by another thread stays locked in the child)."""
    out: dict[str, Iterable] = {}
    for split, loader in eval_loaders(data, engine, loaders).items():
        read = reads_loader(split, engine, val_pass)
        out[split] = iter(loader) if read and loader.num_workers > 0 else loader
    return out


def evaluate_splits(engine: Engine, data: DataSplits, loaders: dict[str, DataLoader],
                    val_pass: SplitPass | None = None,
                    sources: dict[str, Iterable] | None = None) -> Evaluation:
    """Metrics of train, val and test with the engine's current (best) weights.

    With ``eval.full_resolution`` the counts compare each predicted label map, resized back
    to its mask's original size, with that mask. Class balance figures are added per split.
    Val and test also keep each image's counts, from the same pass. ``val_pass``: the val
    pass of these same weights made while fitting; when it kept its codes, val is counted
    from them (the same labels, without running the model again). ``sources``: the batches
    of each split (:func:`eval_sources`; made here when not given).
    """
    config = engine.config
    spec = config.data
    scan = tuple(config.eval.thresholds) if spec.task == "binary" else ()
    out = Evaluation()
    void = spec.ignore_index if spec.ignore_index is not None else -1
    classes = spec.names[1:] if spec.task == "binary" else spec.names
    out.images = ImageCounts({}, {}, classes, [c != void for c in range(spec.num_classes)]
                             if spec.task == "multiclass" else [True])
    if sources is None:
        sources = eval_sources(data, engine, loaders, val_pass)
    for split, loader in sources.items():
        originals = None
        if config.eval.full_resolution:
            originals = [sample.mask for sample in data.splits[split]]
        per_image = split in IMAGE_SPLITS
        reuse = val_pass if split == "val" and val_pass and val_pass.codes is not None else None
        evaluated = engine.evaluate(loader, scan, originals, per_image, reuse=reuse)
        loss, counts, scanned = evaluated.loss, evaluated.counts, evaluated.scanned
        if per_image:
            out.images.counts[split] = image_counts(counts.image_matrices, spec.task)
            out.images.names[split] = [sample.name for sample in data.splits[split]]
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
