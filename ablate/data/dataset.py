"""Torch datasets and data loaders over loaded samples."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import albumentations as A
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ablate.data.channels import append_derived
from ablate.data.io import to_unit_float
from ablate.data.sample import DataSplits, Sample
from ablate.data.seeding import EpochSampler, SampleKey, seed_pipeline
from ablate.data.transforms import build_transforms
from ablate.errors import DataError
from ablate.spec import RunConfig

# The cores a worker process may use (set by `study run --workers`), for num_workers: auto.
CORES_ENV = "ABLATE_WORKER_CORES"
MAX_AUTO_WORKERS = 8  # beyond this a loader's workers mostly cost memory (a fork each)


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def loader_workers(setting: int | str, device: torch.device | None,
                   batches: int | None = None) -> int:
    """The loader worker processes of ``data.num_workers`` = ``setting`` on ``device``:
    ``auto`` is 0 off CUDA (the main process's torch threads already use the cores) and on
    CUDA the cores this process may use (its share under ``study run --workers``) less one
    for the training loop, from 1 to :data:`MAX_AUTO_WORKERS`, and no more than the loader's
    ``batches`` per epoch (a worker prepares whole batches)."""
    if setting != "auto":
        return int(setting)
    if device is None or device.type != "cuda":
        return 0
    try:
        cores = int(os.environ.get(CORES_ENV) or available_cores())
    except ValueError:
        cores = available_cores()
    return max(1, min(MAX_AUTO_WORKERS, cores - 1, batches or MAX_AUTO_WORKERS))


class SegmentationDataset(Dataset):
    """Samples through an albumentations pipeline: (float32 (C, H, W) normalised, (H, W)
    masks: uint8 when stored as uint8, else int64; the loss takes any integer type).

    8-bit images go through the pipeline as uint8 and become float only at the output size
    (a quarter of the bytes to resize and augment; a resized value is rounded to a whole
    8-bit step, at most 0.5 / 255 from the float result); other images are scaled to float
    [0, 1] first.

    ``derived`` channels (``exg``, ``exr``, ``sobel``) are computed on the [0, 1] image after the
    pipeline and appended before normalisation; ``mean``/``std`` cover them too (0/1).
    With ``seed``, an item may be asked for by ``(epoch, index)`` (:class:`EpochSampler`) and
    its augmentation is drawn from (seed, epoch, index) alone (:mod:`ablate.data.seeding`).
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        transform: A.Compose,
        mean: Sequence[float],
        std: Sequence[float],
        derived: Sequence[str] = (),
        seed: int | None = None,
    ) -> None:
        self.samples = list(samples)
        self.seed = seed
        self.transform = transform
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        self.derived = tuple(derived)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: int | SampleKey) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        if self.seed is not None:
            seed_pipeline(self.transform, self.seed, epoch, index)
        sample = self.samples[index]
        image = sample.image
        if not _stays_uint8(image):
            # Scale to float [0, 1] first: every transform handles float32 with any channel
            # count, which uint16 multi-band images would not get otherwise.
            image = to_unit_float(image)
        out = self.transform(image=image, mask=sample.mask)
        image = out["image"]
        if self.derived:  # computed on the [0, 1] image
            image = append_derived(to_unit_float(image), self.derived)
        image_t = torch.from_numpy(normalised_chw(image, self.mean, self.std))
        # a copy either way: the tensor must not share memory with the (reused) sample's mask
        mask = out["mask"]
        mask = np.array(mask, copy=True) if mask.dtype == np.uint8 else mask.astype(np.int64)
        return image_t, torch.from_numpy(mask)


def normalised_chw(image: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(C, H, W) float32 ``(image / scale - mean) / std`` of an (H, W, C) uint8 (scale 255)
    or [0, 1] float image, written channel by channel into one new array: the same float32
    operations as scaling, normalising and transposing one after another, without the
    three full-size temporaries."""
    height, width, channels = image.shape
    out = np.empty((channels, height, width), dtype=np.float32)
    scale = np.float32(1.0 / 255.0) if image.dtype == np.uint8 else None
    for c in range(channels):
        plane = out[c]
        if scale is not None:
            np.multiply(image[:, :, c], scale, out=plane)
        else:
            plane[...] = image[:, :, c]
        np.subtract(plane, mean[c], out=plane)
        np.divide(plane, std[c], out=plane)
    return out


def _stays_uint8(image: np.ndarray) -> bool:
    """Whether ``image`` goes through the pipeline as it is: uint8 with up to 4 channels (what
    every OpenCV routine behind the transforms takes directly)."""
    return image.dtype == np.uint8 and (image.ndim == 2 or image.shape[2] <= 4)


def common_size(samples: Sequence[Sample]) -> tuple[int, int] | None:
    """The (H, W) all samples share, or None if sizes differ."""
    sizes = {s.size for s in samples}
    return next(iter(sizes)) if len(sizes) == 1 else None


def make_dataset(
    samples: Sequence[Sample], data: DataSplits, config: RunConfig, train: bool,
    seed: int | None = None,
) -> SegmentationDataset:
    """A dataset of ``samples``: train gets crop and augmentations, other splits only resize;
    ``seed``: augmentations drawn per (seed, epoch, sample index)."""
    # The pipeline sees the image bands only; derived channels are added after it.
    transform = build_transforms(
        config, train, in_channels=data.bands, image_size=common_size(samples)
    )
    return SegmentationDataset(samples, transform, data.mean, data.std, data.derived, seed)


def make_loaders(data: DataSplits, config: RunConfig, seed: int,
                 device: torch.device | None = None) -> dict[str, DataLoader]:
    """One loader per split; train is augmented and shuffled from ``seed`` and the epoch alone,
    so the batches do not depend on ``data.num_workers`` (:mod:`ablate.data.seeding`); train
    drops its last partial batch each epoch if ``data.drop_last``. ``data.num_workers``
    worker processes (:func:`loader_workers`; none without a ``device``) persist across
    epochs. For a CUDA ``device`` batches come in pinned memory (asynchronous copies)."""
    spec = config.data
    train = data.splits["train"]
    if spec.drop_last and spec.batch_size > len(train):
        raise DataError(
            f"data.batch_size is {spec.batch_size} but the train split has only {len(train)} "
            f"samples; lower data.batch_size to at most {len(train)} (with data.drop_last, "
            "the default, a partial batch is never trained on)"
        )
    loaders: dict[str, DataLoader] = {}
    for split, samples in data.splits.items():
        is_train = split == "train"
        batch = spec.batch_size if is_train else (spec.eval_batch_size or spec.batch_size)
        workers = loader_workers(spec.num_workers, device, math.ceil(len(samples) / batch))
        if batch > 1 and not (spec.size or (is_train and spec.crop)):
            _check_same_size(samples, split)
        dataset = make_dataset(samples, data, config, train=is_train, seed=seed)
        loaders[split] = DataLoader(
            dataset,
            batch_size=batch,
            sampler=EpochSampler(len(samples), seed, shuffle=is_train),
            # data.drop_last (train only): a ragged last batch can be a 1-sample batch, which
            # batch norm cannot normalise; the check above leaves at least one full batch.
            drop_last=is_train and spec.drop_last,
            num_workers=workers,
            # the loader draws its workers' base seed from here, never from torch's global RNG
            generator=torch.Generator().manual_seed(seed),
            persistent_workers=workers > 0,
            pin_memory=device is not None and device.type == "cuda",
        )
    return loaders


def _check_same_size(samples: Sequence[Sample], split: str) -> None:
    first = samples[0]
    for sample in samples[1:]:
        if sample.size != first.size:
            raise DataError(
                f"the {split} split has images of different sizes "
                f"({first.name}: {first.size[0]}x{first.size[1]}, "
                f"{sample.name}: {sample.size[0]}x{sample.size[1]}) that cannot be batched; "
                "set data.size (H, W) to resize them (or data.crop for train)"
            )
