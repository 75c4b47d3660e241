"""Predictions as files: label PNGs at the original image size, colourised copies, and the
mIoU computed back from those files (it equals the run's logged figure)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from ablate import selection
from ablate.data import load_data, make_dataset
from ablate.errors import AblateError
from ablate.metrics.counts import ConfusionMatrix, compute_metrics, predict
from ablate.spec import RunConfig
from ablate.tracking import (
    Tracker,
    checkpoint,
    run_config,
    run_metrics,
    selection_table,
    trial_runs,
)
from ablate.tracking import names as keys
from ablate.training import determinism
from ablate.training.devices import resolve_device
from ablate.training.engine import Engine, resize_labels


@dataclass
class Prediction:
    """What ``predict_run`` wrote and measured."""

    run_id: str
    split: str
    files: int
    metrics: dict[str, float]
    logged: dict[str, float]


def default_palette(num_classes: int) -> list[tuple[int, int, int]]:
    """Distinct colours from matplotlib's tab20 (binary: black and white)."""
    if num_classes == 2:
        return [(0, 0, 0), (255, 255, 255)]
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    colours = [cmap(i % 20) for i in range(num_classes)]
    return [(int(255 * r), int(255 * g), int(255 * b)) for r, g, b, _ in colours]


def choose_run(tracker: Tracker, target: str) -> str:
    """A run id as given, or the run that represents the best configuration of the study named
    ``target`` (:mod:`ablate.selection`: best mean objective over repeats, then its median
    repeat)."""
    runs = trial_runs(tracker, target, state="COMPLETE")
    if runs is None:
        return target
    if not runs:
        raise AblateError(f"study '{target}' has no complete trial to predict with")
    tags = runs[0].data.tags
    objective = tags.get(keys.TAG_OBJECTIVE, "val_iou")
    table = selection_table(runs, objective)
    choice = selection.best(table, tags.get(keys.TAG_DIRECTION) != "minimize")
    if choice is None:
        raise AblateError(f"study '{target}' has no complete trial with a tracked "
                          f"{objective}")
    return str(table.loc[choice.row, "run_id"])


@torch.no_grad()
def predict_run(tracker: Tracker, target: str, split: str, out: Path) -> Prediction:
    """Write ``split``'s predictions of a run (or a study's best run) under ``out``."""
    run_id = choose_run(tracker, target)
    config = run_config(tracker, run_id)
    weights = checkpoint(tracker, run_id)
    data = load_data(config.data)
    if split not in data.splits:
        raise AblateError(f"--split {split}: the data set has no {split} split "
                          f"(it has {', '.join(data.splits)})")
    # The evaluation path of training itself (device, precision, TTA), with the run's weights.
    config = config.model_copy(
        update={"model": config.model.model_copy(update={"init_from": None})}
    )
    determinism.prepare_process()
    device = resolve_device(config.device)
    determinism.apply(config.deterministic, device)
    engine = Engine(config, data, device)
    engine.model.load_state_dict(torch.load(weights, map_location=engine.device,
                                            weights_only=True))
    engine.model.to(memory_format=engine.memory_format)
    samples = data.splits[split]
    dataset = make_dataset(samples, data, config, train=False)
    palette = np.array(config.data.palette or default_palette(config.data.num_classes),
                       dtype=np.uint8)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    (out / "color").mkdir(parents=True, exist_ok=True)
    # The evaluation's batches: on a GPU the kernels (so the last bits of a logit) depend on
    # the batch size, and a label on a threshold can flip with them.
    batch = config.data.eval_batch_size or config.data.batch_size
    start = 0
    for images, masks in DataLoader(dataset, batch_size=batch, shuffle=False):
        images, _ = engine.to_device(images, masks)
        labels = predict(engine.logits(images), config.data.task, config.eval.threshold)
        for sample, label in zip(samples[start:start + len(labels)], labels, strict=True):
            full = resize_labels(label[None], sample.mask.shape)[0].cpu().numpy()
            full = full.astype(np.uint8)
            Image.fromarray(full, mode="L").save(out / "labels" / f"{sample.name}.png")
            Image.fromarray(palette[full], mode="RGB").save(out / "color" / f"{sample.name}.png")
        start += len(labels)
    metrics = score_files(out / "labels", samples, config)
    logged = run_metrics(tracker, run_id)
    shown = {name: logged[keys.metric_key(name)] for name in (f"{split}_miou", f"{split}_iou")
             if keys.metric_key(name) in logged}
    (out / "metrics.json").write_text(json.dumps({"run_id": run_id, **metrics}, indent=1))
    return Prediction(run_id, split, len(samples), metrics, shown)


def score_files(folder: Path, samples: list, config: RunConfig) -> dict[str, float]:
    """Metrics of the label PNGs in ``folder`` against the ground-truth masks, read back."""
    counts = ConfusionMatrix(config.data.num_classes, config.data.ignore_index)
    for sample in samples:
        written = np.asarray(Image.open(folder / f"{sample.name}.png"), dtype=np.int64)
        counts.update(torch.from_numpy(written), torch.from_numpy(sample.mask.astype(np.int64)))
    return compute_metrics(counts.matrix, config.data.task, config.data.names,
                           config.data.ignore_index)
