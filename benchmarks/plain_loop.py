"""A hand-written PyTorch training loop, the reference of ``benchmarks/parity.py``.

It trains one resolved configuration (:class:`ablate.RunConfig`) the way a careful notebook
would, without ablate's data pipeline, losses, engine or metrics: its own decoding (PIL,
tifffile), mask mapping, resizing (cv2), normalisation, flips, batching, the smp model, the loss
from smp/torch terms, the torch optimiser and schedule, a validation pass after every epoch
(counts over the whole split), the best epoch's weights, and the final validation score at each
image's original size. From ablate it takes only the configuration and each split's file list.

Options outside what the ready studies' baseline configurations use (CutMix, EMA, test-time
flips, other augmentations, upscaling, no-data, custom models) raise :class:`Unsupported`.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import segmentation_models_pytorch as smp
import segmentation_models_pytorch.losses as smp_losses
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

FLIPS = ("hflip", "vflip", "rot90")
OFF = ("shift_scale_rotate", "color_jitter", "blur", "gauss_noise", "random_resized_crop",
       "cutmix")


class Unsupported(ValueError):
    """The configuration uses an option this loop does not implement."""


# ------------------------------------------------------------------------------------ reading


def read_image(path: Path) -> np.ndarray:
    """(H, W, C) float32 in [0, 1]."""
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        array = tifffile.imread(path)
        if array.ndim == 3 and array.shape[0] <= 4 < array.shape[-1]:
            array = np.moveaxis(array, 0, -1)  # bands first -> last
    else:
        array = np.asarray(Image.open(path))
    if array.ndim == 2:
        array = array[:, :, None]
    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(array.dtype, 1.0)
    return array.astype(np.float32) / np.float32(scale)


def read_mask(path: Path, data) -> np.ndarray:
    """(H, W) int64 class ids (``ignore_index`` where ignored)."""
    array = np.asarray(Image.open(path))  # a palette PNG gives its indices
    if data.mask_colors is not None:
        rgb = np.asarray(Image.open(path).convert("RGB")).astype(np.int64)
        code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        out = np.full(code.shape, -1, dtype=np.int64)
        for cls, colours in data.mask_colors.items():
            for colour in (colours if isinstance(colours[0], list | tuple) else [colours]):
                r, g, b = (int(v) for v in colour)
                out[code == (r << 16 | g << 8 | b)] = int(cls)
        if (out < 0).any():
            raise ValueError(f"{path}: colours outside data.mask_colors")
        return out
    if array.ndim == 3:
        array = array[..., 0]
    out = array.astype(np.int64)
    if data.mask_map:
        mapped = out.copy()
        for stored, cls in data.mask_map.items():
            mapped[out == int(stored)] = int(cls)
        out = mapped
    return out


def fit_mask(mask: np.ndarray, shape: tuple[int, int], how: str, ignore: int | None,
             path: Path) -> np.ndarray:
    """The mask brought to its image's (H, W) as ``data.mask_fit`` says."""
    if mask.shape == shape:
        return mask
    if how == "crop":
        out = np.full(shape, -1 if ignore is None else ignore, dtype=np.int64)
        h, w = min(shape[0], mask.shape[0]), min(shape[1], mask.shape[1])
        out[:h, :w] = mask[:h, :w]
        return out
    if how == "resize":
        return cv2.resize(mask.astype(np.int32), shape[::-1],
                          interpolation=cv2.INTER_NEAREST_EXACT).astype(np.int64)
    raise ValueError(f"{path}: mask size {mask.shape} differs from its image's {shape}")


@dataclass
class Split:
    """The decoded images and masks of one split, at their original size."""

    images: list[np.ndarray]
    masks: list[np.ndarray]


def read_split(pairs, data) -> Split:
    images, masks = [], []
    for pair in pairs:
        image = read_image(pair.image)
        mask = fit_mask(read_mask(pair.mask, data), image.shape[:2], data.mask_fit,
                        data.ignore_index, pair.mask)
        images.append(image)
        masks.append(mask)
    return Split(images, masks)


# --------------------------------------------------------------------------------- transforms


def resize(image: np.ndarray, mask: np.ndarray | None, size: tuple[int, int] | None
           ) -> tuple[np.ndarray, np.ndarray | None]:
    """To ``size`` (H, W): images by area when shrinking, cubic otherwise; masks nearest."""
    if size is None or tuple(image.shape[:2]) == tuple(size):
        return image, mask
    shrinks = size[0] < image.shape[0] or size[1] < image.shape[1]
    flag = cv2.INTER_AREA if shrinks else cv2.INTER_CUBIC
    out = cv2.resize(image, (size[1], size[0]), interpolation=flag)
    if out.ndim == 2:
        out = out[:, :, None]
    if mask is not None:
        mask = cv2.resize(mask.astype(np.int32), (size[1], size[0]),
                          interpolation=cv2.INTER_NEAREST_EXACT).astype(np.int64)
    return out, mask


def derived(image: np.ndarray, names: list[str]) -> list[np.ndarray]:
    """Excess green / red and the Sobel magnitude of the [0, 1] RGB image, each min-max
    scaled to [0, 1] per image."""
    out: list[np.ndarray] = []
    if not names:
        return out
    r, g, b = image[:, :, 0], image[:, :, 1], image[:, :, 2]
    for name in names:
        if name == "exg":
            channel = 2 * g - r - b
        elif name == "exr":
            channel = 1.4 * r - g
        else:
            grey = (0.299 * r + 0.587 * g + 0.114 * b).astype(np.float32)
            channel = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3),
                               cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3))
        low, high = float(channel.min()), float(channel.max())
        out.append(((channel - low) / (high - low) if high > low else channel * 0)
                   .astype(np.float32))
    return out


@dataclass
class Prepared:
    """Normalisation and the options every sample goes through."""

    mean: np.ndarray
    std: np.ndarray
    size: tuple[int, int] | None
    crop: tuple[int, int] | None
    flips: list[str]
    p: float
    derived: list[str] = field(default_factory=list)

    def sample(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator | None
               ) -> tuple[np.ndarray, np.ndarray]:
        """(C, H, W) float32 input and (H, W) int64 target; ``rng``: train-time crop and
        flips."""
        image, mask = resize(image, mask, self.size)
        if rng is not None:
            if self.crop is not None:
                h, w = self.crop
                y = int(rng.integers(0, image.shape[0] - h + 1))
                x = int(rng.integers(0, image.shape[1] - w + 1))
                image, mask = image[y:y + h, x:x + w], mask[y:y + h, x:x + w]
            if "hflip" in self.flips and rng.random() < self.p:
                image, mask = image[:, ::-1], mask[:, ::-1]
            if "vflip" in self.flips and rng.random() < self.p:
                image, mask = image[::-1], mask[::-1]
            if "rot90" in self.flips and rng.random() < self.p:
                if image.shape[0] == image.shape[1]:
                    k = int(rng.integers(0, 4))
                    image, mask = np.rot90(image, k), np.rot90(mask, k)
                else:
                    image, mask = image[::-1, ::-1], mask[::-1, ::-1]
        extra = derived(image, self.derived)
        channels = [(image - self.mean) / self.std, *(c[:, :, None] for c in extra)]
        stacked = np.concatenate(channels, axis=2)
        return np.ascontiguousarray(stacked.transpose(2, 0, 1)), np.ascontiguousarray(mask)


def prepare(config, train: Split) -> Prepared:
    """The per-channel mean/std of the train images, and the transform options."""
    data, augment = config.data, config.augment
    for name in OFF:
        if getattr(augment, name):
            raise Unsupported(f"augment.{name}")
    if data.upscale != 1.0 or data.nodata is not None or data.drop_empty:
        raise Unsupported("data.upscale / data.nodata / data.drop_empty")
    if data.normalize == "none":
        channels = train.images[0].shape[2]
        mean, std = np.zeros(channels, np.float32), np.ones(channels, np.float32)
    else:
        pixels = np.concatenate([i.reshape(-1, i.shape[2]) for i in train.images]).astype(
            np.float64)
        mean, std = pixels.mean(axis=0), pixels.std(axis=0)
        std[std < 1e-8] = 1.0
    size = tuple(data.size) if data.size else None
    crop = tuple(data.crop) if data.crop else None
    return Prepared(mean.astype(np.float32), std.astype(np.float32), size, crop,
                    [f for f in FLIPS if getattr(augment, f)], augment.p, data.derived.names)


# --------------------------------------------------------------------------------------- loss


def class_counts(masks: list[np.ndarray], classes: int) -> np.ndarray:
    counts = np.zeros(classes, dtype=np.float64)
    for mask in masks:
        valid = mask[(mask >= 0) & (mask < classes)]
        counts += np.bincount(valid.ravel(), minlength=classes)[:classes]
    return counts


def ce_weights(setting, counts: np.ndarray) -> torch.Tensor | None:
    """``inverse`` / ``inverse_sqrt`` of the train frequencies, summing to the class count."""
    if setting is None:
        return None
    if isinstance(setting, str):
        freq = counts / counts.sum()
        raw = np.where(counts > 0, 1 / np.maximum(freq, 1e-12), 0.0)
        raw = np.sqrt(raw) if setting == "inverse_sqrt" else raw
        setting = raw * len(counts) / raw.sum()
    return torch.tensor(np.asarray(setting), dtype=torch.float32)


def build_loss(config, counts: np.ndarray):
    """``loss(logits, target)``: the spec's weighted sum of smp/torch loss terms."""
    data, spec = config.data, config.loss
    ignore = data.ignore_index
    binary = data.task == "binary"
    terms: dict[str, nn.Module] = {}
    for name, weight in spec.weights.items():
        if weight == 0:
            continue
        if name == "bce":
            terms[name] = _bce(spec.bce.pos_weight, spec.bce.neg_weight, ignore)
        elif name == "ce":
            terms[name] = nn.CrossEntropyLoss(weight=ce_weights(spec.ce.class_weights, counts),
                                              ignore_index=-100 if ignore is None else ignore)
        elif name == "dice":
            terms[name] = smp_losses.DiceLoss(data.task, from_logits=True, ignore_index=ignore)
        elif name == "focal":
            terms[name] = smp_losses.FocalLoss(data.task, alpha=spec.focal.alpha,
                                               gamma=spec.focal.gamma, ignore_index=ignore)
        elif name == "jaccard" and binary:
            terms[name] = _jaccard(spec.jaccard.pos_weight, spec.jaccard.neg_weight, ignore)
        elif name == "jaccard":
            terms[name] = smp_losses.JaccardLoss(data.task, from_logits=True,
                                                 ignore_index=ignore)
        else:
            raise Unsupported(f"loss.weights.{name}")
    weights = {name: float(spec.weights[name]) for name in terms}

    def loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = logits.new_zeros(())
        for name, term in terms.items():
            total = total + weights[name] * term(logits, target)
        return total

    return loss


def _bce(pos: float, neg: float, ignore: int | None):
    """-[pos * y log s(x) + neg * (1 - y) log(1 - s(x))], mean over labelled pixels."""
    def term(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        x = logits[:, 0]
        valid = torch.ones_like(target, dtype=torch.bool) if ignore is None else target != ignore
        y = torch.where(valid, target, 0).float()
        weight = valid.float() * neg
        summed = F.binary_cross_entropy_with_logits(
            x, y, weight=weight, pos_weight=torch.tensor(pos / neg), reduction="sum")
        return summed / valid.sum().clamp_min(1)
    return term


def _jaccard(pos: float, neg: float, ignore: int | None):
    """smp's soft Jaccard of the positive class, plus ``neg`` x that of the background."""
    jaccard = smp_losses.JaccardLoss("binary", from_logits=True, ignore_index=ignore)

    def term(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        out = pos * jaccard(logits, target) if pos else logits.new_zeros(())
        if neg:
            other = 1 - target
            if ignore is not None:
                other = torch.where(target == ignore, target, other)
            out = out + neg * jaccard(-logits, other)
        return out
    return term


# ------------------------------------------------------------------------------ optimisation


def optimiser(config, model: nn.Module) -> torch.optim.Optimizer:
    spec = config.optim
    if spec.encoder_lr_mult != 1.0:
        encoder = {id(p) for p in model.encoder.parameters()}
        groups = [{"params": list(model.encoder.parameters()),
                   "lr": spec.lr * spec.encoder_lr_mult},
                  {"params": [p for p in model.parameters() if id(p) not in encoder],
                   "lr": spec.lr}]
    else:
        groups = [{"params": list(model.parameters()), "lr": spec.lr}]
    if spec.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=spec.lr, weight_decay=spec.weight_decay)
    if spec.optimizer == "adam":
        return torch.optim.Adam(groups, lr=spec.lr, weight_decay=spec.weight_decay)
    return torch.optim.SGD(groups, lr=spec.lr, momentum=spec.momentum,
                           weight_decay=spec.weight_decay)


def schedule(config, opt: torch.optim.Optimizer, maximize: bool):
    """The per-epoch schedule after the warm-up epochs (None: constant)."""
    spec = config.optim
    after = max(1, spec.epochs - spec.warmup_epochs)
    sched = torch.optim.lr_scheduler
    if spec.scheduler == "cosine":
        return sched.CosineAnnealingLR(opt, T_max=after)
    if spec.scheduler == "cosine_restarts":
        return sched.CosineAnnealingWarmRestarts(opt, T_0=spec.restart_epochs,
                                                 T_mult=spec.restart_mult)
    if spec.scheduler == "step":
        return sched.StepLR(opt, step_size=spec.step_size, gamma=spec.gamma)
    if spec.scheduler == "plateau":
        return sched.ReduceLROnPlateau(opt, mode="max" if maximize else "min",
                                       factor=spec.plateau_factor,
                                       patience=spec.plateau_patience)
    return None


def encoder_stages(config, model: nn.Module) -> list[list[nn.Parameter]]:
    """The encoder's children in ``unfreeze_stages`` groups, shallow to deep."""
    spec = config.optim
    if not spec.freeze_encoder_epochs:
        return []
    parts = [list(m.parameters()) for m in model.encoder.children()]
    parts = [p for p in parts if p]
    size = -(-len(parts) // min(spec.unfreeze_stages, len(parts)))
    return [[p for part in parts[i:i + size] for p in part] for i in range(0, len(parts), size)]


def freeze(config, stages: list[list[nn.Parameter]], done: int) -> None:
    """Frozen for ``freeze_encoder_epochs`` epochs, then the deepest stage thaws first."""
    spec = config.optim
    thawed = 0 if done < spec.freeze_encoder_epochs else (
        1 + (done - spec.freeze_encoder_epochs) // spec.unfreeze_every)
    frozen = max(0, len(stages) - thawed)
    for index, params in enumerate(stages):
        for p in params:
            p.requires_grad_(index >= frozen)


# ------------------------------------------------------------------------------------ scoring


def confusion(target: np.ndarray, predicted: np.ndarray, classes: int,
              ignore: int | None) -> np.ndarray:
    keep = (target >= 0) & (target < classes)
    if ignore is not None:
        keep &= target != ignore
    index = target[keep] * classes + predicted[keep]
    return np.bincount(index, minlength=classes * classes).reshape(classes, classes)


def score(matrix: np.ndarray, binary: bool, void: int | None) -> dict[str, float]:
    """IoU of the positive class (binary) or mIoU over the classes present, and accuracy."""
    tp = np.diag(matrix).astype(np.float64)
    fp, fn = matrix.sum(axis=0) - tp, matrix.sum(axis=1) - tp
    accuracy = float(tp.sum() / max(matrix.sum(), 1))
    if binary:
        union = tp[1] + fp[1] + fn[1]
        return {"iou": float(tp[1] / union) if union else math.nan, "accuracy": accuracy}
    union = tp + fp + fn
    present = [c for c in range(len(tp)) if union[c] > 0 and c != void]
    miou = float(np.mean([tp[c] / union[c] for c in present])) if present else math.nan
    return {"miou": miou, "accuracy": accuracy}


# -------------------------------------------------------------------------------------- train


@dataclass
class PlainResult:
    """The best epoch's validation score (at the original size), its epoch and the time."""

    objective: float
    best_epoch: int
    history: list[float]
    seconds: float


def train_plain(config, splits: dict[str, Split], device: str = "cpu") -> PlainResult:
    """Train ``config`` on the decoded ``splits`` (train, val); see the module docstring."""
    started = time.perf_counter()
    data, optim = config.data, config.optim
    if config.model.custom or config.model.init_from or config.optim.ema or config.eval.tta_flip:
        raise Unsupported("model.custom / model.init_from / optim.ema / eval.tta_flip")
    binary = data.task == "binary"
    classes = 2 if binary else data.num_classes
    void = data.ignore_index if data.ignore_index is not None and \
        data.ignore_index < classes else None
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    prep = prepare(config, splits["train"])
    in_channels = splits["train"].images[0].shape[2] + len(prep.derived)
    model = smp.create_model(config.model.arch, encoder_name=config.model.encoder,
                             encoder_weights=config.model.encoder_weights,
                             in_channels=in_channels, classes=1 if binary else classes,
                             **config.model.kwargs).to(device)
    loss_fn = build_loss(config, class_counts(splits["train"].masks, classes))
    opt = optimiser(config, model)
    maximize = config.objective.direction == "maximize"
    sched = schedule(config, opt, maximize)
    base = [g["lr"] for g in opt.param_groups]
    stages = encoder_stages(config, model)
    metric = config.objective.metric.removeprefix("val_")
    logit = math.log(config.eval.threshold / (1 - config.eval.threshold))

    def predict(images: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = model(torch.from_numpy(images).to(device)).cpu()
        return (out[:, 0] > logit).long().numpy() if binary else out.argmax(1).numpy()

    def evaluate(split: Split, full: bool) -> dict[str, float]:
        model.eval()
        matrix = np.zeros((classes, classes), dtype=np.int64)
        for image, mask in zip(split.images, split.masks, strict=True):
            x, small = prep.sample(image, mask, None)
            labels = predict(x[None])[0]
            if full:
                labels = cv2.resize(labels.astype(np.int32), mask.shape[::-1],
                                    interpolation=cv2.INTER_NEAREST_EXACT)
                target = mask
            else:
                target = small
            matrix += confusion(target, labels, classes, data.ignore_index)
        return score(matrix, binary, void)

    train = splits["train"]
    best, best_state, best_epoch, stale, history = None, None, 0, 0, []
    for epoch in range(optim.epochs):
        if optim.warmup_epochs and epoch < optim.warmup_epochs:
            for group, lr in zip(opt.param_groups, base, strict=True):
                group["lr"] = lr * (epoch + 1) / (optim.warmup_epochs + 1)
        elif optim.warmup_epochs and epoch == optim.warmup_epochs:
            for group, lr in zip(opt.param_groups, base, strict=True):
                group["lr"] = lr
        freeze(config, stages, epoch)
        model.train()
        order = rng.permutation(len(train.images))
        steps = len(order) // data.batch_size if data.drop_last else \
            -(-len(order) // data.batch_size)
        opt.zero_grad(set_to_none=True)
        for step in range(steps):
            chosen = order[step * data.batch_size:(step + 1) * data.batch_size]
            pairs = [prep.sample(train.images[i], train.masks[i], rng) for i in chosen]
            x = torch.from_numpy(np.stack([p[0] for p in pairs])).to(device)
            y = torch.from_numpy(np.stack([p[1] for p in pairs])).to(device)
            loss = loss_fn(model(x), y)
            (loss / optim.grad_accum).backward()
            if (step + 1) % optim.grad_accum == 0 or step + 1 == steps:
                if optim.grad_clip:
                    nn.utils.clip_grad_norm_(model.parameters(), optim.grad_clip)
                opt.step()
                opt.zero_grad(set_to_none=True)
        value = evaluate(splits["val"], full=False)[metric]
        history.append(value)
        delta = optim.early_stopping_min_delta if best is not None else 0.0
        better = math.isfinite(value) and (best is None or (
            value > best + delta if maximize else value < best - delta))
        if better:
            best, best_epoch, stale = value, epoch + 1, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
        if epoch + 1 > optim.warmup_epochs:  # the schedule starts after the warm-up
            if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
                sched.step(value)
            elif sched is not None:
                sched.step()
        if optim.early_stopping_patience and stale >= optim.early_stopping_patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    final = evaluate(splits["val"], full=config.eval.full_resolution)[metric]
    return PlainResult(final, best_epoch, history, time.perf_counter() - started)
