"""What one training run produced: the numbers that get tracked and reported (torch-free)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ablate.spec import SPLITS


def efficiency(objective: float, gflops: float) -> float:
    """Objective metric in percent per GFLOP (fvcore FLOPs: one multiply-add = one FLOP)."""
    if gflops <= 0 or not math.isfinite(objective):
        return float("nan")
    return 100.0 * objective / gflops


@dataclass
class TrainResult:
    """The final numbers of one run, by split, plus the model and speed figures."""

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

    def figures(self) -> dict[str, float]:
        """The model and run figures by name (``params``, ``gflops``, ...)."""
        out = {
            "params": float(self.params),
            "gflops": self.gflops,
            "efficiency": self.efficiency,
            "train_seconds": self.train_seconds,
            "images_per_second": self.images_per_second,
            "best_epoch": float(self.best_epoch),
            "epochs_run": float(self.epochs_run),
            "model_size_mb": self.model_size_mb,
            "latency_ms": self.latency_ms,
        }
        if self.peak_memory_mb is not None:
            out["peak_memory_mb"] = self.peak_memory_mb
        return out

    def value(self, name: str) -> float:
        """A number by the name a spec uses for it: ``val_iou``, ``test_miou``, ``gflops``."""
        split, _, metric = name.partition("_")
        if split in SPLITS and metric in self.metrics.get(split, {}):
            return float(self.metrics[split][metric])
        return float(self.figures()[name])
