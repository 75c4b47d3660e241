"""The pieces one training run is made of: model, loss, precision, EMA, and the epoch passes."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ablate.data import DataSplits
from ablate.losses import build_loss
from ablate.metrics.counts import (
    ConfusionMatrix,
    ThresholdCounts,
    predict,
    predict_scores,
    threshold_codes,
)
from ablate.spec import RunConfig
from ablate.training.models import build_model
from ablate.training.optim import EncoderFreezer
from ablate.training.precision import amp_dtype


class TrainingError(RuntimeError):
    """A trial that cannot go on (e.g. a non-finite loss); ``reason`` is short and loggable."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def cutmix(
    images: torch.Tensor, masks: torch.Tensor, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Paste a random box of another image of the batch, and the same box of its mask
    (``generator``: a CPU generator the box is drawn from)."""
    n, _, height, width = images.shape
    # A shifted order (never the identity): every image receives a box of another one.
    shift = int(torch.randint(1, n, (), generator=generator)) if n > 1 else 0
    perm = torch.roll(torch.arange(n, device=images.device), shift)
    # box side as a fraction of the image
    side = math.sqrt(1.0 - float(torch.rand((), generator=generator)))
    box_h, box_w = int(height * side), int(width * side)
    cy = int(torch.randint(height, (), generator=generator))
    cx = int(torch.randint(width, (), generator=generator))
    y0, y1 = max(cy - box_h // 2, 0), min(cy + box_h // 2, height)
    x0, x1 = max(cx - box_w // 2, 0), min(cx + box_w // 2, width)
    images, masks = images.clone(), masks.clone()
    images[:, :, y0:y1, x0:x1] = images[perm, :, y0:y1, x0:x1]
    masks[:, y0:y1, x0:x1] = masks[perm, y0:y1, x0:x1]
    return images, masks


def resize_labels(labels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A (B, H, W) label map resized to ``size`` with nearest neighbour (labels stay labels)."""
    if tuple(labels.shape[-2:]) == tuple(size):
        return labels
    if labels.dtype == torch.uint8 and labels.device.type == "cpu":  # no float round trip
        return torch.nn.functional.interpolate(labels[:, None], size=size, mode="nearest")[:, 0]
    resized = torch.nn.functional.interpolate(labels[:, None].float(), size=size, mode="nearest")
    return resized[:, 0].to(labels.dtype)


class Engine:
    """Model, loss and precision settings of one run, and its train and evaluation passes."""

    def __init__(self, config: RunConfig, data: DataSplits, device: torch.device):
        self.config = config
        self.device = device
        self.task = config.data.task
        self.num_classes = config.data.num_classes
        self.model = build_model(config.model, data.in_channels,
                                 config.data.out_channels).to(device)
        self.loss_fn = build_loss(
            config.loss, self.task, self.num_classes, config.data.ignore_index, data.class_pixels
        ).to(device)
        cuda = device.type == "cuda"
        self.amp_dtype = amp_dtype(device, config.optim.amp)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.memory_format = (
            torch.channels_last if cuda and config.optim.channels_last else torch.contiguous_format
        )
        self.freezer = EncoderFreezer(config.optim, self.model)
        self.ema: AveragedModel | None = None
        self.watch = LossWatch(config.optim.divergence_factor, device)
        # CutMix draws from its own generator: nothing else (loaders, models) shifts its stream
        self.rng = torch.Generator().manual_seed(config.seed)
        # binary: the run's threshold and the scanned ones, ascending (what codes count)
        self.thresholds = sorted({float(config.eval.threshold),
                                  *map(float, config.eval.thresholds)})

    def start_ema(self) -> None:
        """Begin averaging (after the model has its final device and memory format)."""
        if self.config.optim.ema:
            self.ema = AveragedModel(
                self.model, multi_avg_fn=get_ema_multi_avg_fn(self.config.optim.ema_decay),
                use_buffers=True,
            )

    @property
    def eval_model(self) -> nn.Module:
        """The weights that are evaluated: the moving average when EMA is on."""
        return self.ema.module if self.ema is not None else self.model

    def autocast(self) -> Any:
        """Mixed precision as the run trains and evaluates (nothing without an AMP dtype)."""
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def to_device(self, images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, ...]:
        images = images.to(self.device, non_blocking=True).contiguous(
            memory_format=self.memory_format
        )
        return images, masks.to(self.device, non_blocking=True)

    def train_epoch(
        self, loader: Any, optimizer: torch.optim.Optimizer, epoch: int, bar: Any
    ) -> tuple[float, int]:
        """One pass over the training split in epoch number ``epoch`` (1-based); returns the
        mean loss and the images seen.

        The losses stay on the device: the host waits for them every :data:`CHECK_EVERY`
        steps and at the end of the epoch (:class:`LossWatch`), not at every step.
        """
        self.freezer.apply(epoch - 1)  # epochs done before this one
        self.model.train()
        optim, augment = self.config.optim, self.config.augment
        total = torch.zeros((), dtype=self.watch.dtype, device=self.device)  # loss x images
        seen = 0
        optimizer.zero_grad(set_to_none=True)
        for step, (images, masks) in enumerate(loader):
            images, masks = self.to_device(images, masks)
            if (augment.cutmix and len(images) > 1
                    and float(torch.rand((), generator=self.rng)) < augment.cutmix_p):
                images, masks = cutmix(images, masks, self.rng)
            with self.autocast():
                logits = self.model(images)
                loss, _ = self.loss_fn(logits.float(), masks)
            value = loss.detach()
            self.watch.observe(value, epoch, step)
            self.scaler.scale(loss / optim.grad_accum).backward()
            if (step + 1) % optim.grad_accum == 0 or step + 1 == len(loader):
                if optim.grad_clip:
                    self.scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(self.model.parameters(), optim.grad_clip)
                self.scaler.step(optimizer)
                self.scaler.update()
                optimizer.zero_grad(set_to_none=True)
                if self.ema is not None:
                    self.ema.update_parameters(self.model)
            total += value.to(self.watch.dtype) * len(images)
            seen += len(images)
            if (step + 1) % CHECK_EVERY == 0:
                self.watch.check(epoch)
                bar.set_postfix(loss=f"{float(total) / seen:.4f}", refresh=False)
        self.watch.check(epoch)
        return float(total) / max(seen, 1), seen

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Evaluation logits (float32), averaged with the flipped image's when TTA is on."""
        model = self.eval_model
        model.eval()
        with self.autocast():
            out = model(images).float()
            if self.config.eval.tta_flip:
                out = (out + model(images.flip(-1)).float().flip(-1)) / 2
        return out

    def codes(self, logits: torch.Tensor) -> torch.Tensor:
        """(B, H, W) label codes, what every count is made from: binary, how many of
        :attr:`thresholds` each probability exceeds (:func:`threshold_codes`); multiclass, the
        argmax class ids (uint8 up to 256 classes)."""
        if self.task == "binary":
            return threshold_codes(predict_scores(logits), self._thresholds(logits.device))
        labels = predict(logits, self.task)
        return labels.to(torch.uint8) if self.num_classes <= 256 else labels

    def _thresholds(self, device: torch.device) -> torch.Tensor:
        return torch.tensor(self.thresholds, dtype=torch.float32, device=device)

    def labels(self, codes: torch.Tensor, threshold: float | None = None) -> torch.Tensor:
        """int64 class ids from :meth:`codes`: binary ``sigmoid > threshold`` (the run's by
        default), as :func:`~ablate.metrics.counts.predict` gives them."""
        if self.task != "binary":
            return codes.long()
        if threshold is None:
            threshold = self.config.eval.threshold
        return (codes > self.thresholds.index(float(threshold))).long()

    def counter(self, per_image: bool) -> ConfusionMatrix | ThresholdCounts:
        """An empty accumulator for :meth:`codes`."""
        ignore = self.config.data.ignore_index
        if self.task == "binary":
            return ThresholdCounts(self.thresholds, ignore, self.device, per_image)
        return ConfusionMatrix(self.num_classes, ignore, self.device, per_image)

    def at_resolution(self, codes: torch.Tensor, masks: torch.Tensor | None,
                      originals: list | None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(codes, target) pairs to count: the batch as it is, or with ``originals`` (its
        masks at original size) the codes resized back to them, one resize per run of images
        of the same size (nearest neighbour picks pixels, so resizing codes gives the labels
        that thresholding a resized prediction gives)."""
        if originals is None:
            assert masks is not None
            return [(codes, masks)]
        out, start = [], 0
        while start < len(originals):
            shape = tuple(np.shape(originals[start]))
            end = start + 1
            while end < len(originals) and tuple(np.shape(originals[end])) == shape:
                end += 1
            target = torch.as_tensor(np.stack(originals[start:end]), device=self.device)
            out.append((resize_labels(codes[start:end], shape), target))
            start = end
        return out

    @torch.no_grad()
    def evaluate(
        self, loader: Any, scan: tuple[float, ...] = (), originals: list | None = None,
        per_image: bool = False, keep: bool = False, reuse: SplitPass | None = None,
    ) -> SplitCounts:
        """Mean loss and confusion counts over the whole split (binary: also at each ``scan``
        threshold, one of :attr:`thresholds`).

        With ``originals`` (the split's masks at their original size, in loader order) the
        counts compare each label map resized back to its mask's size with that mask. With
        ``per_image`` the split's counts also keep every image's own (same pass, same
        bincount). With ``keep`` the result keeps the pass's codes (up to
        :data:`KEEP_BYTES`); ``reuse`` (a kept pass of the same weights over the same loader)
        counts its codes again instead of running the model.
        """
        counts = self.counter(per_image)
        kept: list[torch.Tensor] | None = [] if keep else None
        kept_bytes = 0
        totals = [0.0, 0]  # loss x images, images
        batches = (self._replay(reuse, loader, originals) if reuse is not None
                   else self._forward(loader, totals))
        seen = 0
        for codes, masks in batches:
            if kept is not None:
                kept.append(codes.cpu())
                kept_bytes += codes.numel() * codes.element_size()
                if kept_bytes > KEEP_BYTES:
                    kept = None  # too large to keep: a later count runs the model again
            batch = originals[seen:seen + len(codes)] if originals is not None else None
            for pair_codes, target in self.at_resolution(codes, masks, batch):
                counts.update(pair_codes, target)
            seen += len(codes)
        loss = reuse.loss if reuse is not None else float(totals[0]) / max(int(totals[1]), 1)
        if isinstance(counts, ThresholdCounts):
            matrix = counts.at(self.config.eval.threshold)
            scanned = {t: matrix if t == self.config.eval.threshold else counts.at(t)
                       for t in scan}
        else:
            matrix, scanned = counts, {}
        return SplitCounts(loss, matrix, scanned, SplitPass(loss, kept))

    def _forward(self, loader: Any, totals: list) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(codes, masks) of each batch, from the model; adds the loss to ``totals``."""
        for images, masks in loader:
            images, masks = self.to_device(images, masks)
            logits = self.logits(images)
            loss, _ = self.loss_fn(logits, masks)
            totals[0] += loss.detach().to(self.watch.dtype) * len(images)  # no host sync
            totals[1] += len(images)
            yield self.codes(logits), masks

    def _replay(self, kept: SplitPass, loader: Any,
                originals: list | None) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        """(codes, masks) of each batch from a kept pass; the loader is read (for its masks,
        no model) only when the counts are made at its resolution."""
        if kept.codes is None:
            raise ValueError("the pass kept no codes")
        if originals is not None:
            for codes in kept.codes:
                yield codes.to(self.device), None
            return
        for codes, (_, masks) in zip(kept.codes, loader, strict=True):
            yield codes.to(self.device), masks.to(self.device)


CHECK_EVERY = 25  # training steps between two looks of the host at the losses


class LossWatch:
    """The checks on each training step's loss, kept on the device: a non-finite loss, or
    one above ``divergence_factor`` x the first step's loss (at least 1; a loss driven to
    1e18 by a huge learning rate is a failure, not a run), fails the run with the epoch and
    step where it first happened. Only the first step's loss (the bound) is read at once;
    :meth:`check` reads the rest, so up to :data:`CHECK_EVERY` - 1 more steps may run
    before a failure is raised."""

    def __init__(self, divergence_factor: float | None, device: torch.device):
        self.factor = divergence_factor
        self.device = device
        # float64 sums add exactly what the per-step Python floats added (MPS has no float64)
        self.dtype = torch.float32 if device.type == "mps" else torch.float64
        self.bound: float | None = None
        self._first = torch.full((), -1, dtype=torch.int64, device=device)  # step, -1: none
        self._value = torch.zeros((), dtype=self.dtype, device=device)

    def observe(self, loss: torch.Tensor, epoch: int, step: int) -> None:
        """Note one step's (detached) loss; the very first one is checked at once."""
        value = loss.to(self.dtype)
        if self.bound is None:
            first = float(value)
            self._raise_if_bad(first, epoch, step)
            self.bound = self.factor * max(first, 1.0) if self.factor is not None else math.inf
            return
        bad = ~torch.isfinite(value) | (value > self.bound)
        fresh = bad & (self._first < 0)
        self._first = torch.where(fresh, step, self._first)
        self._value = torch.where(fresh, value, self._value)

    def check(self, epoch: int) -> None:
        """Raise :class:`TrainingError` for the first bad step of ``epoch`` noted so far."""
        step = int(self._first)
        if step >= 0:
            self._raise_if_bad(float(self._value), epoch, step)

    def _raise_if_bad(self, loss: float, epoch: int, step: int) -> None:
        if not math.isfinite(loss):
            raise TrainingError(f"non-finite loss at epoch {epoch}, step {step}")
        if self.bound is not None and loss > self.bound:
            raise TrainingError(
                f"loss diverged at epoch {epoch}, step {step}: {loss:.3g} > "
                f"{self.factor:g} x the first step's loss (optim.divergence_factor)"
            )


KEEP_BYTES = 256 * 2**20  # codes a validation pass keeps for the final count (uint8: pixels)


@dataclass
class SplitPass:
    """What an evaluation pass over a split leaves for a later count without the model: its
    mean loss and each batch's codes at model resolution (``None`` when not kept)."""

    loss: float
    codes: list[torch.Tensor] | None


@dataclass
class SplitCounts:
    """One split's evaluation: mean loss, the counts at the run's threshold (per image with
    ``per_image``), binary the counts at each scanned threshold, and the pass's codes."""

    loss: float
    counts: ConfusionMatrix
    scanned: dict[float, ConfusionMatrix]
    kept: SplitPass
