"""Loaders that keep a GPU fed: ``num_workers: auto``, persistent workers and pinned memory on
CUDA, 8-bit images through the pipeline as uint8 (floats only at the output size), masks
as uint8 until the device."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ablate.data import load_data, loader_workers, make_loaders
from ablate.data.dataset import CORES_ENV, MAX_AUTO_WORKERS, SegmentationDataset, normalised_chw
from ablate.data.io import to_unit_float
from ablate.data.sample import Sample
from ablate.data.transforms import build_transforms
from ablate.spec import RunConfig
from tests.conftest import spec_dict

CUDA = torch.device("cuda")  # a device object only: nothing runs on it here


def _config(**changes) -> RunConfig:
    spec = spec_dict(**changes)
    for key in ("name", "trials", "sampler", "search"):
        spec.pop(key, None)
    return RunConfig.model_validate(spec)


def test_auto_is_none_off_cuda_and_the_cores_less_one_on_cuda(monkeypatch):
    assert _config().data.num_workers == "auto"  # the default
    monkeypatch.setenv(CORES_ENV, "4")
    assert loader_workers("auto", torch.device("cpu")) == 0
    assert loader_workers("auto", None) == 0
    assert loader_workers("auto", CUDA) == 3  # one core stays with the training loop
    monkeypatch.setenv(CORES_ENV, "1")
    assert loader_workers("auto", CUDA) == 1
    monkeypatch.setenv(CORES_ENV, "64")
    assert loader_workers("auto", CUDA) == MAX_AUTO_WORKERS
    assert loader_workers("auto", CUDA, batches=3) == 3  # no more workers than batches
    assert loader_workers(5, CUDA) == 5 and loader_workers(0, CUDA) == 0  # given: as given


def test_cuda_loaders_persist_and_pin(monkeypatch):
    monkeypatch.setenv(CORES_ENV, "3")
    config = _config()
    data = load_data(config.data)
    for split, loader in make_loaders(data, config, 0, CUDA).items():
        assert loader.num_workers == 2, split
        assert loader.persistent_workers and loader.pin_memory, split
    for loader in make_loaders(data, config, 0, torch.device("cpu")).values():
        assert loader.num_workers == 0 and not loader.pin_memory


def _dataset(sample: Sample, size: list[int] | None, derived: dict | None = None,
             ) -> SegmentationDataset:
    config = _config(data={"size": size})
    transform = build_transforms(config, train=False, in_channels=sample.image.shape[2])
    channels = sample.image.shape[2] + len(derived or {})
    return SegmentationDataset([sample], transform, [0.3] * channels, [0.2] * channels,
                               derived=list(derived or {}))


def _sample(dtype: type, channels: int = 3, mask_dtype: type = np.uint8) -> Sample:
    rng = np.random.default_rng(0)
    high = np.iinfo(dtype).max if np.issubdtype(dtype, np.integer) else 1.0
    image = rng.integers(0, 256, (48, 40, channels)).astype(np.float64) / 255 * high
    mask = rng.integers(0, 2, (48, 40)).astype(mask_dtype)
    return Sample("s", image.astype(dtype), mask)


def _float_path(sample: Sample, size: list[int] | None) -> np.ndarray:
    """What the loader gave before: the image scaled to float first, then resized."""
    config = _config(data={"size": size})
    transform = build_transforms(config, train=False, in_channels=sample.image.shape[2])
    image = transform(image=to_unit_float(sample.image), mask=sample.mask)["image"]
    return ((image - 0.3) / 0.2).transpose(2, 0, 1)


def test_uint8_images_resize_as_uint8_within_half_a_step():
    sample = _sample(np.uint8)
    image, mask = _dataset(sample, [32, 24])[0]
    assert image.dtype == torch.float32 and image.shape == (3, 32, 24)
    # resized in uint8: each value rounded to a whole 8-bit step of the float result
    difference = np.abs(image.numpy() - _float_path(sample, [32, 24]))
    assert 0 < difference.max() <= 0.5 / 255 / 0.2 + 1e-6
    assert mask.dtype == torch.uint8 and mask.shape == (32, 24)


def test_without_a_resize_the_numbers_are_the_float_paths_bit_for_bit():
    sample = _sample(np.uint8)
    image, mask = _dataset(sample, None)[0]
    np.testing.assert_array_equal(image.numpy(), _float_path(sample, None).astype(np.float32))
    np.testing.assert_array_equal(mask.numpy(), sample.mask)
    mask[0, 0] = 7  # a copy: the cached sample's mask is never written
    assert sample.mask[0, 0] != 7


@pytest.mark.parametrize(("dtype", "channels"), [(np.uint16, 3), (np.float32, 3),
                                                 (np.uint8, 5)])
def test_other_images_are_scaled_to_float_first(dtype, channels):
    sample = _sample(dtype, channels)
    image, _ = _dataset(sample, [32, 24])[0]
    np.testing.assert_array_equal(image.numpy(),
                                  _float_path(sample, [32, 24]).astype(np.float32))


def test_derived_channels_see_the_unit_float_image():
    sample = _sample(np.uint8)
    image, _ = _dataset(sample, None, derived={"exg": True})[0]
    assert image.shape == (4, 48, 40)
    np.testing.assert_array_equal(image[:3].numpy(),
                                  _float_path(sample, None).astype(np.float32))


@pytest.mark.parametrize("mask_dtype", [np.int32, np.uint16])
def test_wider_masks_come_as_int64(mask_dtype):
    _, mask = _dataset(_sample(np.uint8, mask_dtype=mask_dtype), None)[0]
    assert mask.dtype == torch.int64


def test_normalised_chw_is_the_three_steps_bit_for_bit():
    rng = np.random.default_rng(1)
    mean = np.asarray([0.2, 0.5, 0.4, 0.1], np.float32)
    std = np.asarray([0.3, 0.1, 0.25, 0.5], np.float32)
    for image in (rng.integers(0, 256, (17, 23, 4)).astype(np.uint8),
                  rng.random((17, 23, 4), dtype=np.float32)):
        steps = (to_unit_float(image) - mean) / std
        expected = np.ascontiguousarray(steps.transpose(2, 0, 1), np.float32)
        np.testing.assert_array_equal(normalised_chw(image, mean, std), expected)
