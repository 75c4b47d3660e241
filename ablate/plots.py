"""Figures logged with each run: training curves and a prediction gallery (PNG).

Figures are built with :class:`matplotlib.figure.Figure` (no pyplot state), so that they may
be drawn off the main thread while it goes on evaluating.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from matplotlib.figure import Figure

from ablate.metrics import predict

GalleryRow = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # image, mask, prediction (CPU)

if TYPE_CHECKING:
    from ablate.engine import Engine
    from ablate.spec import RunConfig


def loss_scale(values: list[float]) -> tuple[str, tuple[float, float] | None]:
    """How to show losses so that their trend is visible: ``("log", None)`` when they span
    two orders of magnitude or more, ``("linear", (low, high))`` clipped to the bulk when a
    few values (typically epoch 0) lie far outside it (more than 10 median absolute
    deviations from the median), else ``("linear", None)``."""
    finite = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    if finite.size < 3:
        return "linear", None
    if finite.min() > 0 and finite.max() / finite.min() >= 100:
        return "log", None
    middle = float(np.median(finite))
    spread = float(np.median(np.abs(finite - middle))) or abs(middle) * 0.1 or 1.0
    inside = finite[np.abs(finite - middle) <= 10 * spread]
    if inside.size == finite.size:
        return "linear", None
    margin = 0.1 * ((inside.max() - inside.min()) or spread)
    return "linear", (float(inside.min() - margin), float(inside.max() + margin))


def curves(history: list[dict[str, float]], path: Path) -> None:
    """Loss curves (train, val), on a scale that shows their trend (:func:`loss_scale`), and
    the validation objective per epoch."""
    epochs = np.arange(len(history))
    objective = next((k for k in (history[0] if history else {}) if k.startswith("val_")
                      and k != "val_loss"), None)
    fig = Figure(figsize=(9, 3.2))
    axes = fig.subplots(1, 2)
    losses = {name: [h[name] for h in history] for name in ("train_loss", "val_loss")}
    axes[0].plot(epochs, losses["train_loss"], label="train loss")
    axes[0].plot(epochs, losses["val_loss"], label="val loss")
    scale, limits = loss_scale(losses["train_loss"] + losses["val_loss"])
    axes[0].set_yscale(scale)
    if limits is not None:
        axes[0].set_ylim(*limits)
        axes[0].set_title("loss (y clipped: outlying epochs off the axis)", fontsize=9)
    elif scale == "log":
        axes[0].set_title("loss (log scale)", fontsize=9)
    axes[0].set_xlabel("epoch")
    axes[0].legend()
    if objective:
        axes[1].plot(epochs, [h[objective] for h in history], color="tab:green")
        axes[1].set_title(objective)
        axes[1].set_xlabel("epoch")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def _display(image: torch.Tensor) -> np.ndarray:
    """A normalised (C, H, W) tensor as something imshow can show: RGB or the first channel."""
    array = image.float().cpu().numpy()
    array = array[:3] if array.shape[0] >= 3 else array[:1]
    low, high = array.min(), array.max()
    array = (array - low) / (high - low + 1e-8)
    return array.transpose(1, 2, 0) if array.shape[0] == 3 else array[0]


@torch.no_grad()
def gallery_rows(engine: Engine, loader: Any, config: RunConfig) -> list[GalleryRow]:
    """Image, ground truth and prediction of the first ``eval.gallery`` validation images."""
    count = config.eval.gallery
    rows: list[GalleryRow] = []
    if count == 0:
        return rows
    for images, masks in loader:
        images_d, _ = engine.to_device(images, masks)
        logits = engine.logits(images_d)
        preds = predict(logits, config.data.task, config.eval.threshold).cpu()
        rows.extend(zip(images, masks, preds, strict=True))
        if len(rows) >= count:
            break
    return rows[:count]


def draw_gallery(rows: list[GalleryRow], config: RunConfig, path: Path) -> None:
    """Image | ground truth | prediction, one row per image (nothing without rows)."""
    if not rows:
        return
    vmax = max(config.data.num_classes - 1, 1)
    fig = Figure(figsize=(7.5, 2.5 * len(rows)))
    axes = fig.subplots(len(rows), 3, squeeze=False)
    for row, (image, mask, pred) in zip(axes, rows, strict=True):
        shown = mask.clone()
        if config.data.ignore_index is not None:
            shown[shown == config.data.ignore_index] = 0
        row[0].imshow(_display(image), cmap="gray")
        row[1].imshow(shown.numpy(), cmap="tab20" if vmax > 1 else "gray", vmin=0, vmax=vmax,
                      interpolation="nearest")
        row[2].imshow(pred.numpy(), cmap="tab20" if vmax > 1 else "gray", vmin=0, vmax=vmax,
                      interpolation="nearest")
        for ax in row:
            ax.set_axis_off()
    for ax, title in zip(axes[0], ("image", "ground truth", "prediction"), strict=True):
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def gallery(engine: Engine, loader: Any, config: RunConfig, path: Path) -> None:
    """The gallery figure of the first ``eval.gallery`` validation images."""
    draw_gallery(gallery_rows(engine, loader, config), config, path)
