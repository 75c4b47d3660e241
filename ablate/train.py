"""The one train function: every trial, baseline and benchmark goes through :func:`train`."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ablate.data import DataSplits, load_data, make_loaders
from ablate.engine import Engine, TrainingError
from ablate.metrics import compute_metrics
from ablate.models import count_flops, count_params, measure_latency, model_size_mb
from ablate.optim import EpochScheduler, build_optimizer
from ablate.spec import RunConfig
from ablate.tracking import threshold_key

__all__ = ["TrainResult", "TrainingError", "efficiency", "resolve_device", "train",
           "train_logged"]

EpochCallback = Callable[[int, dict[str, float]], None]


@dataclass
class TrainResult:
    """What one run produced: the numbers that get tracked and reported."""

    objective: float
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    # split -> metric name -> value; counts (tp/fp/fn/tn...) are exact integers held as floats
    metrics: dict[str, dict[str, float]]
    matrices: dict[str, np.ndarray]
    params: int
    gflops: float
    efficiency: float
    train_seconds: float
    images_per_second: float
    input_shape: tuple[int, int, int]
    history: list[dict[str, float]] = field(default_factory=list)
    normalisation: dict[str, list[float]] = field(default_factory=dict)
    # binary: split -> threshold -> 2x2 confusion matrix (rows target, cols prediction)
    threshold_matrices: dict[str, dict[float, np.ndarray]] = field(default_factory=dict)
    model_size_mb: float = float("nan")
    latency_ms: float = float("nan")
    peak_memory_mb: float | None = None

    def flat_metrics(self) -> dict[str, float]:
        """``{split}_{metric}`` for every split, plus the model and speed figures."""
        flat = {
            f"{split}_{k}": v for split, values in self.metrics.items() for k, v in values.items()
        }
        flat.update(
            params=float(self.params),
            gflops=self.gflops,
            efficiency=self.efficiency,
            train_seconds=self.train_seconds,
            images_per_second=self.images_per_second,
            best_epoch=float(self.best_epoch),
            epochs_run=float(self.epochs_run),
            model_size_mb=self.model_size_mb,
            latency_ms=self.latency_ms,
        )
        if self.peak_memory_mb is not None:
            flat["peak_memory_mb"] = self.peak_memory_mb
        for split, by_threshold in self.threshold_matrices.items():
            for threshold, m in by_threshold.items():
                counts = {"tn": m[0, 0], "fp": m[0, 1], "fn": m[1, 0], "tp": m[1, 1]}
                for name, value in counts.items():
                    flat[threshold_key(split, threshold, name)] = float(value)
        return flat


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def efficiency(objective: float, gflops: float) -> float:
    """Objective metric in percent per GFLOP (fvcore FLOPs: one multiply-add = one FLOP)."""
    if gflops <= 0 or not math.isfinite(objective):
        return float("nan")
    return 100.0 * objective / gflops


def _improved(value: float, best: float | None, maximize: bool, min_delta: float) -> bool:
    if not math.isfinite(value):
        return False
    if best is None:
        return True
    return value > best + min_delta if maximize else value < best - min_delta


def train(
    config: RunConfig,
    on_epoch: EpochCallback | None = None,
    artifact_dir: Path | None = None,
    progress: bool = True,
    description: str = "train",
) -> TrainResult:
    """Train one configuration, evaluate its best epoch on every split, return the numbers.

    ``on_epoch(epoch, record)`` is called after each epoch with the train/val loss, the learning
    rate and the validation objective; it may raise (e.g. ``optuna.TrialPruned``) to stop.
    The objective is read on val only; test is evaluated once, on the final (best) weights.
    """
    seed_everything(config.seed)
    device = resolve_device(config.device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)  # the figure is this run's peak
    data = load_data(config.data)
    loaders = make_loaders(data, config, config.seed)
    engine = Engine(config, data, device)
    model = engine.model

    images, _ = next(iter(loaders["val"]))
    input_shape = (int(images.shape[1]), int(images.shape[2]), int(images.shape[3]))
    params = count_params(model)
    flops = count_flops(model, input_shape)
    model.to(memory_format=engine.memory_format)
    engine.start_ema()

    optimizer = build_optimizer(config.optim, model)
    maximize = config.objective.direction == "maximize"
    scheduler = EpochScheduler(config.optim, optimizer, maximize)
    metric = config.objective.metric.removeprefix("val_")
    patience = config.optim.early_stopping_patience
    min_delta = config.optim.early_stopping_min_delta

    history: list[dict[str, float]] = []
    best_value: float | None = None
    best_state: dict[str, torch.Tensor] | None = None
    best_epoch, stale, stopped_early = 0, 0, False
    train_time, train_images = 0.0, 0
    started = time.perf_counter()
    bar = tqdm(
        range(config.optim.epochs), desc=description, unit="epoch", leave=False,
        disable=None if progress else True,  # None: no bar when not on a terminal
        dynamic_ncols=True,
    )
    for epoch in bar:
        lr = scheduler.lr
        tick = time.perf_counter()
        train_loss, seen = engine.train_epoch(loaders["train"], optimizer, epoch, bar)
        train_time += time.perf_counter() - tick
        train_images += seen
        val_loss, val_counts, _ = engine.evaluate(loaders["val"])
        val_metrics = compute_metrics(
            val_counts.matrix, config.data.task, config.data.names, config.data.ignore_index
        )
        val_metrics["loss"] = val_loss
        value = float(val_metrics[metric])
        record = {"train_loss": train_loss, "val_loss": val_loss, "lr": lr, f"val_{metric}": value}
        history.append(record)
        bar.set_postfix({"loss": f"{train_loss:.4f}", f"val_{metric}": f"{value:.4f}"})
        if _improved(value, best_value, maximize, min_delta if best_value is not None else 0.0):
            best_value, best_epoch, stale = value, epoch, 0
            best_state = {
                k: v.detach().to("cpu", copy=True)
                for k, v in engine.eval_model.state_dict().items()
            }
        else:
            stale += 1
        if on_epoch is not None:
            on_epoch(epoch, record)
        scheduler.step(value)
        if patience is not None and stale >= patience:
            stopped_early = True
            break
    bar.close()
    total_seconds = time.perf_counter() - started

    if best_state is not None:
        engine.eval_model.load_state_dict(best_state)
    metrics: dict[str, dict[str, float]] = {}
    matrices: dict[str, np.ndarray] = {}
    scans: dict[str, dict[float, np.ndarray]] = {}
    scan = tuple(config.eval.thresholds) if config.data.task == "binary" else ()
    for split, loader in _eval_loaders(data, config, loaders).items():
        originals = None
        if config.eval.full_resolution:
            originals = [sample.mask for sample in data.splits[split]]
        loss, counts, scanned = engine.evaluate(loader, scan, originals)
        scans[split] = {t: m.matrix.cpu().numpy() for t, m in scanned.items()}
        matrix = counts.matrix.cpu().numpy()
        metrics[split] = compute_metrics(
            matrix, config.data.task, config.data.names, config.data.ignore_index
        )
        metrics[split]["loss"] = loss
        matrices[split] = matrix
    objective = float(metrics["val"][metric])
    for split, balance in data.class_balance().items():
        metrics.setdefault(split, {}).update(balance)

    if artifact_dir is not None:
        from ablate import plots

        artifact_dir.mkdir(parents=True, exist_ok=True)
        plots.curves(history, artifact_dir / "curves.png")
        plots.gallery(engine, loaders["val"], config, artifact_dir / "gallery.png")

    gflops = flops / 1e9
    if artifact_dir is not None and config.eval.save_weights:
        torch.save(engine.eval_model.state_dict(), artifact_dir / "model.pt")
    latency = measure_latency(engine.eval_model, input_shape, device,
                              config.eval.latency_repeats)
    peak_memory = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return TrainResult(
        objective=objective,
        best_epoch=best_epoch,
        epochs_run=len(history),
        stopped_early=stopped_early,
        metrics=metrics,
        matrices=matrices,
        params=params,
        gflops=gflops,
        efficiency=efficiency(objective, gflops),
        train_seconds=total_seconds,
        images_per_second=train_images / train_time if train_time > 0 else float("nan"),
        input_shape=input_shape,
        history=history,
        normalisation={"mean": list(data.mean), "std": list(data.std)},
        threshold_matrices=scans,
        model_size_mb=model_size_mb(engine.eval_model),
        latency_ms=latency,
        peak_memory_mb=peak_memory,
    )


def train_logged(
    config: RunConfig,
    run: Any,
    on_epoch: EpochCallback | None = None,
    progress: bool = True,
    description: str = "train",
) -> TrainResult:
    """:func:`train` with its epochs, final numbers and artifacts logged into ``run`` (a
    :class:`~ablate.tracking.RunLog`); ``on_epoch`` runs after each epoch is logged."""
    import tempfile

    def log_epoch(epoch: int, record: dict[str, float]) -> None:
        run.log_epoch(epoch, record)
        if on_epoch is not None:
            on_epoch(epoch, record)

    with tempfile.TemporaryDirectory(prefix="ablate-") as tmp:
        result = train(config, log_epoch, Path(tmp), progress, description)
        run.log_result(result)
        run.log_artifacts(Path(tmp))
    return result


def _eval_loaders(data: DataSplits, config: RunConfig, loaders: dict[str, Any]) -> dict[str, Any]:
    """Un-augmented loaders for every split (train is re-read without augmentation)."""
    from ablate.data import make_dataset

    batch = config.data.eval_batch_size or config.data.batch_size
    train_eval = torch.utils.data.DataLoader(
        make_dataset(data.splits["train"], data, config, train=False),
        batch_size=batch,
        shuffle=False,
        num_workers=config.data.num_workers,
    )
    out = {"train": train_eval, "val": loaders["val"]}
    if "test" in loaders:
        out["test"] = loaders["test"]
    return out

