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

GalleryRow = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # image, mask, prediction (CPU)

if TYPE_CHECKING:
    from ablate.spec import RunConfig
    from ablate.training.engine import Engine, SplitPass


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
    the validation objective per epoch (numbered from 1)."""
    epochs = np.arange(1, len(history) + 1)
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
    # fixed margins: tight_layout would measure every tick label to find about the same
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.16, top=0.9, wspace=0.22)
    fig.savefig(path, dpi=90, pil_kwargs={"compress_level": 1})


def _display(image: torch.Tensor) -> np.ndarray:
    """A normalised (C, H, W) tensor as something imshow can show: RGB or the first channel."""
    array = image.float().cpu().numpy()
    array = array[:3] if array.shape[0] >= 3 else array[:1]
    low, high = array.min(), array.max()
    array = (array - low) / (high - low + 1e-8)
    return array.transpose(1, 2, 0) if array.shape[0] == 3 else array[0]


@torch.no_grad()
def gallery_rows(engine: Engine, loader: Any, config: RunConfig,
                 kept: SplitPass | None = None) -> list[GalleryRow]:
    """Image, ground truth and prediction of the first ``eval.gallery`` validation images
    (the predictions from ``kept``, a val pass of the same weights, when it kept its codes)."""
    count = config.eval.gallery
    rows: list[GalleryRow] = []
    if count == 0:
        return rows
    kept_codes = iter(kept.codes) if kept is not None and kept.codes is not None else None
    for images, masks in loader:
        if kept_codes is not None:
            codes = next(kept_codes)
        else:
            images_d, _ = engine.to_device(images, masks)
            codes = engine.codes(engine.logits(images_d))
        preds = engine.labels(codes).cpu()
        rows.extend(zip(images, masks, preds, strict=True))
        if len(rows) >= count:
            break
    return rows[:count]


GAP = 6  # white pixels between gallery tiles
TITLE_PX = 22  # height of the gallery's title strip
TILE_PX = 128  # gallery tiles are scaled up (nearest, by a whole factor) to at least this


def _colour(values: np.ndarray, cmap: str, vmax: int) -> np.ndarray:
    """(H, W, 3) uint8 of class ids through ``cmap`` over ``0..vmax``, as imshow shows them."""
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    rgba: np.ndarray = colormaps[cmap](Normalize(0, vmax)(values), bytes=True)
    return rgba[..., :3]


def _image_tile(image: torch.Tensor) -> np.ndarray:
    """(H, W, 3) uint8 of a normalised (C, H, W) tensor: RGB, or its first channel in grey."""
    shown = (np.clip(_display(image), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return shown if shown.ndim == 3 else np.repeat(shown[..., None], 3, axis=2)


def _tile_scale(height: int) -> int:
    """The whole factor that brings a tile of ``height`` pixels to at least TILE_PX."""
    return max(1, -(-TILE_PX // height))


def gallery_mosaic(rows: list[GalleryRow], config: RunConfig) -> np.ndarray:
    """(H, W, 3) uint8: image | ground truth | prediction per row, each tile scaled up by a
    whole factor (nearest neighbour: every pixel stays a visible block) and separated by
    white gaps; ignored mask pixels are shown as class 0."""
    vmax = max(config.data.num_classes - 1, 1)
    cmap = "tab20" if vmax > 1 else "gray"
    lines = []
    for image, mask, pred in rows:
        shown = mask.numpy().copy()
        if config.data.ignore_index is not None:
            shown[shown == config.data.ignore_index] = 0
        tiles = [_image_tile(image), _colour(shown, cmap, vmax), _colour(pred.numpy(), cmap, vmax)]
        scale = _tile_scale(tiles[0].shape[0])
        gap = np.full((tiles[0].shape[0] * scale, GAP, 3), 255, np.uint8)
        scaled = [t.repeat(scale, axis=0).repeat(scale, axis=1) for t in tiles]
        lines.append(np.concatenate([scaled[0], gap, scaled[1], gap, scaled[2]], axis=1))
    width = max(line.shape[1] for line in lines)
    out = []
    for line in lines:
        pad = np.full((line.shape[0], width - line.shape[1], 3), 255, np.uint8)
        out += [np.concatenate([line, pad], axis=1), np.full((GAP, width, 3), 255, np.uint8)]
    return np.concatenate(out[:-1], axis=0)


def draw_gallery(rows: list[GalleryRow], config: RunConfig, path: Path) -> None:
    """Image | ground truth | prediction, one row per image (nothing without rows): the
    :func:`gallery_mosaic` pixel for pixel under a title strip, written by Pillow (a
    matplotlib figure would resample the mosaic and lay out nine axes for nothing)."""
    if not rows:
        return
    from PIL import Image, ImageDraw, ImageFont

    mosaic = gallery_mosaic(rows, config)
    height, width = mosaic.shape[:2]
    canvas = Image.new("RGB", (width, height + TITLE_PX), "white")
    canvas.paste(Image.fromarray(mosaic), (0, TITLE_PX))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=13)
    mask = rows[0][1]  # the first row's tiles place the titles
    column = mask.shape[-1] * _tile_scale(mask.shape[-2])
    for i, title in enumerate(("image", "ground truth", "prediction")):
        left, top, right, bottom = draw.textbbox((0, 0), title, font=font)
        x = i * (column + GAP) + (column - (right - left)) / 2 - left
        draw.text((x, (TITLE_PX - (bottom - top)) / 2 - top), title, fill="black", font=font)
    canvas.save(path, compress_level=1)  # speed over bytes: the gallery is written per run


def gallery(engine: Engine, loader: Any, config: RunConfig, path: Path) -> None:
    """The gallery figure of the first ``eval.gallery`` validation images."""
    draw_gallery(gallery_rows(engine, loader, config), config, path)
