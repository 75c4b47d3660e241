"""What one training run produced: the numbers that get tracked and reported (torch-free)."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field

import numpy as np

from ablate.naming import SPLITS


def efficiency(objective: float, gflops: float) -> float:
    """Objective metric in percent per GFLOP (fvcore FLOPs: one multiply-add = one FLOP)."""
    if gflops <= 0 or not math.isfinite(objective):
        return float("nan")
    return 100.0 * objective / gflops


@dataclass
class ImageCounts:
    """Confusion counts of every image of some splits, taken in the pass that fills each
    split's confusion matrix (so they sum to it).

    - ``counts[split]``: (N, K, 4) int64, TP, FP, FN, TN of each of K classes per image
      (binary: K = 1, the positive class);
    - ``names[split]``: the N images, in the same order;
    - ``classes``: the K class names; ``scored``: which of them enter a mean IoU (False for a
      void class, an ``ignore_index`` inside the class range).
    """

    counts: dict[str, np.ndarray]
    names: dict[str, list[str]]
    classes: list[str]
    scored: list[bool]

    def to_npz(self) -> bytes:
        """The counts as a compressed ``.npz`` file: ``classes``, ``scored`` and per split
        ``<split>_counts`` and ``<split>_names``."""
        arrays: dict[str, np.ndarray] = {"classes": np.array(self.classes, dtype=str),
                                         "scored": np.array(self.scored, dtype=bool)}
        for split, counts in self.counts.items():
            arrays[f"{split}_counts"] = np.asarray(counts, dtype=np.int64)
            arrays[f"{split}_names"] = np.array(self.names[split], dtype=str)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
        return buffer.getvalue()

    @classmethod
    def from_npz(cls, data: bytes) -> ImageCounts:
        """Read back :meth:`to_npz` (no pickled objects are loaded)."""
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            splits = [k.removesuffix("_counts") for k in npz.files if k.endswith("_counts")]
            return cls(
                counts={s: npz[f"{s}_counts"] for s in splits},
                names={s: [str(n) for n in npz[f"{s}_names"]] for s in splits},
                classes=[str(c) for c in npz["classes"]],
                scored=[bool(v) for v in npz["scored"]],
            )


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
    latency_ms: float = float("nan")  # median of the timed passes
    latency_iqr_ms: float = float("nan")  # their interquartile range
    peak_memory_mb: float | None = None
    image_counts: ImageCounts | None = None  # val and test, per image
    # How the run trained where the configuration does not say (logged as tags
    # ablate.applied.<key>): loader_workers, reproducible, latency (when shared or missing)
    applied: dict[str, str] = field(default_factory=dict)
    run_id: str | None = None  # the MLflow run it was tracked in, once it was

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
            "latency_iqr_ms": self.latency_iqr_ms,
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
