"""Class weights for cross-entropy, from the train split's pixel counts or the spec."""

from __future__ import annotations

import numpy as np
import torch

from ablate.spec import LossSpec


def class_weights(class_pixels: np.ndarray, kind: str) -> np.ndarray:
    """Per-class weights from pixel counts: ``w_c ∝ 1/f_c`` ("inverse") or ``1/sqrt(f_c)``
    ("inverse_sqrt"), ``f_c`` the class's pixel frequency, normalised to sum to the number of
    classes. A class with 0 pixels gets weight 0: it has no pixels for a weight to act on, and a
    made-up weight would only shift the normalisation of the others.
    """
    counts = np.asarray(class_pixels, dtype=np.float64)
    if counts.ndim != 1 or counts.size < 2:
        raise ValueError(f"class_pixels must be one count per class, got shape {counts.shape}")
    if not np.isfinite(counts).all() or (counts < 0).any():
        raise ValueError(f"class_pixels must be finite counts >= 0, got {counts.tolist()}")
    present = counts > 0
    if not present.any():
        raise ValueError("class_pixels are all 0: no pixels to compute class weights from")
    freq = counts[present] / counts.sum()
    if kind == "inverse":
        raw = 1.0 / freq
    elif kind == "inverse_sqrt":
        raw = 1.0 / np.sqrt(freq)
    else:
        raise ValueError(f"class weight kind must be 'inverse' or 'inverse_sqrt', got {kind!r}")
    weights = np.zeros_like(counts)
    weights[present] = raw
    return weights * (counts.size / weights.sum())


def ce_weights(
    spec: LossSpec, num_classes: int, class_pixels: np.ndarray | None
) -> torch.Tensor | None:
    setting = spec.ce.class_weights
    if setting is None:
        return None
    if isinstance(setting, str):
        if class_pixels is None:
            raise ValueError(
                f"ce.class_weights: {setting} needs the per-class pixel counts (class_pixels)"
            )
        values = class_weights(class_pixels, setting)
    else:
        values = np.asarray(setting, dtype=np.float64)
    if values.shape != (num_classes,):
        raise ValueError(f"ce.class_weights has {values.size} values for {num_classes} classes")
    if values.sum() <= 0:
        raise ValueError("ce.class_weights are all 0")
    return torch.as_tensor(values, dtype=torch.float32)
