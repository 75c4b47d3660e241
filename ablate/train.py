"""The one train function: every trial, baseline and benchmark goes through :func:`train`."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ablate.data import DataSplits, load_data, make_loaders
from ablate.losses import build_loss
from ablate.metrics import ConfusionMatrix, compute_metrics, predict
from ablate.models import build_model, count_flops, count_params
from ablate.optim import EpochScheduler, build_optimizer
from ablate.spec import RunConfig
from ablate.tracking import threshold_key

EpochCallback = Callable[[int, dict[str, float]], None]


class TrainingError(RuntimeError):
    """A trial that cannot go on (e.g. a non-finite loss); ``reason`` is short and loggable."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


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


def model_size_mb(model: nn.Module) -> float:
    """Size of the weights and buffers in MiB, as stored in memory."""
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors) / 2**20


@torch.no_grad()
def measure_latency(
    model: nn.Module, input_shape: tuple[int, int, int], device: torch.device, repeats: int
) -> float:
    """Median wall time in ms of one batch-1 forward pass on ``device``, after warm-up."""
    if repeats <= 0:
        return float("nan")
    model.eval()
    x = torch.zeros(1, *input_shape, device=device)
    timings = []
    for i in range(repeats + 3):  # three warm-up passes
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        tick = time.perf_counter()
        model(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= 3:
            timings.append(time.perf_counter() - tick)
    return 1000.0 * float(np.median(timings))


class _Runner:
    """Holds the pieces of one run so that the epoch loop reads plainly."""

    def __init__(self, config: RunConfig, data: DataSplits, device: torch.device):
        self.config = config
        self.device = device
        self.task = config.data.task
        self.num_classes = config.data.num_classes or 2
        out_channels = 1 if self.task == "binary" else self.num_classes
        self.model = build_model(config.model, data.in_channels, out_channels).to(device)
        self.loss_fn = build_loss(
            config.loss, self.task, self.num_classes, config.data.ignore_index, data.class_pixels
        ).to(device)
        cuda = device.type == "cuda"
        self.amp_dtype = None
        if cuda and config.optim.amp:
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.memory_format = (
            torch.channels_last if cuda and config.optim.channels_last else torch.contiguous_format
        )

    def autocast(self) -> Any:
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.amp_dtype)

    def to_device(self, images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, ...]:
        images = images.to(self.device, non_blocking=True).contiguous(
            memory_format=self.memory_format
        )
        return images, masks.to(self.device, non_blocking=True)

    def train_epoch(
        self, loader: Any, optimizer: torch.optim.Optimizer, epoch: int, bar: Any
    ) -> tuple[float, int]:
        """One pass over the training split; returns the mean loss and the images seen."""
        self.model.train()
        accum = self.config.optim.grad_accum
        total, seen = 0.0, 0
        optimizer.zero_grad(set_to_none=True)
        for step, (images, masks) in enumerate(loader):
            images, masks = self.to_device(images, masks)
            with self.autocast():
                logits = self.model(images)
                loss, _ = self.loss_fn(logits.float(), masks)
            if not torch.isfinite(loss):
                raise TrainingError(f"non-finite loss at epoch {epoch}, step {step}")
            self.scaler.scale(loss / accum).backward()
            if (step + 1) % accum == 0 or step + 1 == len(loader):
                if self.config.optim.grad_clip:
                    self.scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(self.model.parameters(), self.config.optim.grad_clip)
                self.scaler.step(optimizer)
                self.scaler.update()
                optimizer.zero_grad(set_to_none=True)
            total += float(loss) * len(images)
            seen += len(images)
            bar.set_postfix(loss=f"{total / seen:.4f}", refresh=False)
        return total / max(seen, 1), seen

    @torch.no_grad()
    def evaluate(
        self, loader: Any, scan: tuple[float, ...] = ()
    ) -> tuple[float, ConfusionMatrix, dict[float, ConfusionMatrix]]:
        """Mean loss and confusion counts over the whole split (also at each ``scan`` threshold)."""
        self.model.eval()
        ignore = self.config.data.ignore_index
        counts = ConfusionMatrix(self.num_classes, ignore, self.device)
        scanned = {t: ConfusionMatrix(2, ignore, self.device) for t in scan}
        total, seen = 0.0, 0
        for images, masks in loader:
            images, masks = self.to_device(images, masks)
            with self.autocast():
                logits = self.model(images).float()
            loss, _ = self.loss_fn(logits, masks)
            total += float(loss) * len(images)
            seen += len(images)
            counts.update(predict(logits, self.task, self.config.eval.threshold), masks)
            for threshold, matrix in scanned.items():
                matrix.update(predict(logits, self.task, threshold), masks)
        return total / max(seen, 1), counts, scanned


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
    data = load_data(config.data)
    loaders = make_loaders(data, config, config.seed)
    runner = _Runner(config, data, device)
    model = runner.model

    images, _ = next(iter(loaders["val"]))
    input_shape = (int(images.shape[1]), int(images.shape[2]), int(images.shape[3]))
    params = count_params(model)
    flops = count_flops(model, input_shape)
    model.to(memory_format=runner.memory_format)

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
        train_loss, seen = runner.train_epoch(loaders["train"], optimizer, epoch, bar)
        train_time += time.perf_counter() - tick
        train_images += seen
        val_loss, val_counts, _ = runner.evaluate(loaders["val"])
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
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
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
        model.load_state_dict(best_state)
    metrics: dict[str, dict[str, float]] = {}
    matrices: dict[str, np.ndarray] = {}
    scans: dict[str, dict[float, np.ndarray]] = {}
    scan = tuple(config.eval.thresholds) if config.data.task == "binary" else ()
    for split, loader in _eval_loaders(data, config, loaders).items():
        loss, counts, scanned = runner.evaluate(loader, scan)
        scans[split] = {t: m.matrix.cpu().numpy() for t, m in scanned.items()}
        matrix = counts.matrix.cpu().numpy()
        metrics[split] = compute_metrics(
            matrix, config.data.task, config.data.names, config.data.ignore_index
        )
        metrics[split]["loss"] = loss
        matrices[split] = matrix
    objective = float(metrics["val"][metric])

    if artifact_dir is not None:
        from ablate import plots

        artifact_dir.mkdir(parents=True, exist_ok=True)
        plots.curves(history, artifact_dir / "curves.png")
        plots.gallery(runner, loaders["val"], config, artifact_dir / "gallery.png")

    gflops = flops / 1e9
    latency = measure_latency(model, input_shape, device, config.eval.latency_repeats)
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
        model_size_mb=model_size_mb(model),
        latency_ms=latency,
        peak_memory_mb=peak_memory,
    )


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

