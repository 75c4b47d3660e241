"""Torch datasets and data loaders over loaded samples."""

from __future__ import annotations

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


class SegmentationDataset(Dataset):
    """Samples through an albumentations pipeline: (float32 (C, H, W) normalised, int64 (H, W)).

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
        # Scale to float [0, 1] first: every transform handles float32 with any channel count,
        # which uint16 multi-band images would not get otherwise.
        out = self.transform(image=to_unit_float(sample.image), mask=sample.mask)
        image = append_derived(out["image"], self.derived)
        image = (image - self.mean) / self.std
        image_t = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), np.float32))
        # astype copies: the tensor must not share memory with the (reused) sample's mask.
        mask_t = torch.from_numpy(out["mask"].astype(np.int64))
        return image_t, mask_t


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
    drops its last partial batch each epoch if ``data.drop_last``. For a CUDA ``device``
    batches come in pinned memory (asynchronous copies); workers persist across epochs."""
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
            num_workers=spec.num_workers,
            # the loader draws its workers' base seed from here, never from torch's global RNG
            generator=torch.Generator().manual_seed(seed),
            persistent_workers=spec.num_workers > 0,
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
