"""Tests of ablate.data: reading, pairing, splitting, checking and serving segmentation data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import albumentations as A
import numpy as np
import pytest
import torch
from PIL import Image

from ablate.data import (
    DataSplits,
    clear_cache,
    load_data,
    make_loaders,
    synthetic_samples,
    transforms,
)
from ablate.data import io as data_io
from ablate.data.transforms import AUGMENTATIONS, build_transforms
from ablate.errors import DataError
from ablate.spec import AugmentSpec, DataSpec, RunConfig, SyntheticSpec
from tests.conftest import SHARED_DATA, save_image

MEMBRANE = SHARED_DATA / "membrane"


# ------------------------------------------------------------------------------------ helpers


save = save_image


def rgb(seed: int, size: tuple[int, int] = (8, 10)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def labels(
    seed: int, size: tuple[int, int] = (8, 10), values: tuple[int, ...] = (0, 1)
) -> np.ndarray:
    mask = np.random.default_rng(seed).choice(np.array(values, np.uint8), size=size)
    mask.flat[: len(values)] = values  # every value present
    return mask


def folder(root: Path, names: list[str], image_ext: str = ".jpg", sub: str = "") -> None:
    """Images ``root/sub/images/<name><ext>`` and masks ``root/sub/masks/<name>.png``."""
    for i, name in enumerate(names):
        save(root / sub / "images" / f"{name}{image_ext}", rgb(i))
        save(root / sub / "masks" / f"{name}.png", labels(i))


def spec(root: Path, **data: Any) -> DataSpec:
    layout = {"root": str(root), "images": "images", "masks": "masks"}
    return DataSpec.model_validate(layout | data)


def config(data: dict[str, Any], **sections: Any) -> RunConfig:
    return RunConfig.model_validate({"data": data, **sections})


def names(data: DataSplits) -> dict[str, list[str]]:
    return {split: [s.name for s in samples] for split, samples in data.splits.items()}


# ---------------------------------------------------------------------------- pairing/splits


def test_pairs_by_stem_across_extensions_and_refuses_orphan_masks(tmp_path: Path) -> None:
    folder(tmp_path, [f"img{i}" for i in range(10)], image_ext=".jpg")
    save(tmp_path / "masks" / "orphan.png", labels(0))  # a mask without image: a lost sample
    with pytest.raises(DataError, match=r"orphan\.png has no image"):
        load_data(spec(tmp_path, split_ratios={"train": 0.6, "val": 0.4}))
    (tmp_path / "masks" / "orphan.png").unlink()
    data = load_data(spec(tmp_path, split_ratios={"train": 0.6, "val": 0.4}))
    assert set(data.splits) == {"train", "val"}
    all_names = sorted(n for split in names(data).values() for n in split)
    assert all_names == sorted(f"img{i}" for i in range(10))
    sample = data.splits["train"][0]
    assert sample.image.shape == (8, 10, 3) and sample.image.dtype == np.uint8
    assert sample.mask.shape == (8, 10) and sample.mask.dtype == np.uint8
    assert data.in_channels == 3


def test_split_dirs(tmp_path: Path) -> None:
    folder(tmp_path, ["a", "b", "c"], sub="train")
    folder(tmp_path, ["d", "e"], sub="val")
    folder(tmp_path, ["f"], sub="test", image_ext=".png")
    dirs = {s: {"images": f"{s}/images", "masks": f"{s}/masks"} for s in ("train", "val", "test")}
    data = load_data(DataSpec.model_validate({"root": str(tmp_path), "split_dirs": dirs}))
    assert names(data) == {"train": ["a", "b", "c"], "val": ["d", "e"], "test": ["f"]}


def test_split_dirs_missing_dir_names_key(tmp_path: Path) -> None:
    folder(tmp_path, ["a", "b"], sub="train")
    dirs = {s: {"images": f"{s}/images", "masks": f"{s}/masks"} for s in ("train", "val")}
    with pytest.raises(DataError, match=r"data\.split_dirs\.val\.images: directory .*not found"):
        load_data(DataSpec.model_validate({"root": str(tmp_path), "split_dirs": dirs}))


def test_split_lists(tmp_path: Path) -> None:
    folder(tmp_path, ["a", "b", "c", "d", "e"])
    (tmp_path / "train.txt").write_text("# training\na\nb.jpg\n\nc  # third\n")
    (tmp_path / "val.txt").write_text("d\n")
    data = load_data(spec(tmp_path, split_lists={"train": "train.txt", "val": "val.txt"}))
    assert names(data) == {"train": ["a", "b", "c"], "val": ["d"]}


def test_split_list_unknown_stem(tmp_path: Path) -> None:
    folder(tmp_path, ["a", "b"])
    (tmp_path / "train.txt").write_text("a\nzzz\n")
    (tmp_path / "val.txt").write_text("b\n")
    with pytest.raises(DataError, match=r"train\.txt:2: 'zzz'"):
        load_data(spec(tmp_path, split_lists={"train": "train.txt", "val": "val.txt"}))


def test_split_ratios_deterministic_partial_and_without_test(tmp_path: Path) -> None:
    folder(tmp_path, [f"s{i:02d}" for i in range(20)])
    ratios = {"train": 0.5, "val": 0.25, "test": 0.0}  # sums to 0.75: 5 samples unused
    first = names(load_data(spec(tmp_path, split_ratios=ratios, split_seed=3)))
    again = names(load_data(spec(tmp_path, split_ratios=ratios, split_seed=3)))
    other = names(load_data(spec(tmp_path, split_ratios=ratios, split_seed=4)))
    assert first == again and first != other
    assert set(first) == {"train", "val"}
    assert (len(first["train"]), len(first["val"])) == (10, 5)
    assert not set(first["train"]) & set(first["val"])


def test_group_split_keeps_groups_whole(tmp_path: Path) -> None:
    # 8 patients with 3 slices each; the patient id is the first capture group.
    stems = [f"patient{p}_slice{k}" for p in range(8) for k in range(3)]
    folder(tmp_path, stems, image_ext=".png")
    ratios = {"train": 0.5, "val": 0.25, "test": 0.25}
    kwargs = dict(split_ratios=ratios, group_pattern=r"^(patient\d+)_", split_seed=1)
    data = names(load_data(spec(tmp_path, **kwargs)))
    assert data == names(load_data(spec(tmp_path, **kwargs)))
    owner: dict[str, str] = {}
    for split, members in data.items():
        for name in members:
            assert owner.setdefault(name.split("_")[0], split) == split  # no group in two splits
    assert sum(len(m) for m in data.values()) == 24
    assert all(len(m) % 3 == 0 and m for m in data.values())


def test_group_pattern_leaving_a_split_empty(tmp_path: Path) -> None:
    folder(tmp_path, [f"scan_{k}" for k in range(6)])
    with pytest.raises(DataError, match=r"the (val|test) split is empty.*group_pattern"):
        load_data(spec(tmp_path, group_pattern=r"scan"))


# ----------------------------------------------------------------------------------- masks


def test_mask_map(tmp_path: Path) -> None:
    for i in range(4):
        save(tmp_path / "images" / f"{i}.png", rgb(i))
        save(tmp_path / "masks" / f"{i}.png", labels(i, values=(0, 255)))
    ratios = {"train": 0.5, "val": 0.5}
    data = load_data(spec(tmp_path, mask_map={0: 1, 255: 0}, split_ratios=ratios))
    for samples in data.splits.values():
        for sample in samples:
            raw = labels(int(sample.name), values=(0, 255))
            np.testing.assert_array_equal(sample.mask, np.where(raw == 0, 1, 0))
    train_masks = np.stack([s.mask for s in data.splits["train"]])
    assert data.class_pixels.tolist() == [(train_masks == 0).sum(), (train_masks == 1).sum()]


def test_ignore_index_and_palette_masks(tmp_path: Path) -> None:
    for i in range(3):
        save(tmp_path / "images" / f"{i}.png", rgb(i))
        mask = Image.fromarray(labels(i, values=(0, 1, 2, 11)))
        mask.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [9] * (256 * 3 - 9))  # L -> P
        assert mask.mode == "P"
        (tmp_path / "masks").mkdir(exist_ok=True)
        mask.save(tmp_path / "masks" / f"{i}.png")
    data = load_data(
        spec(
            tmp_path,
            task="multiclass",
            num_classes=3,
            ignore_index=11,
            split_ratios={"train": 0.4, "val": 0.3, "test": 0.3},
        )
    )
    masks = [s.mask for split in data.splits.values() for s in split]
    assert set(np.unique(np.concatenate([m.ravel() for m in masks]))) == {0, 1, 2, 11}
    train = data.splits["train"][0].mask
    assert data.class_pixels.tolist() == [int((train == c).sum()) for c in range(3)]


def test_unknown_mask_values_name_the_file(tmp_path: Path) -> None:
    folder(tmp_path, ["a", "b", "c"])
    save(tmp_path / "masks" / "b.png", labels(1, values=(0, 255)))
    message = r"b\.png: mask values \[255\].*data\.mask_map: \{255: 1\}.*data\.mask_threshold"
    with pytest.raises(DataError, match=message) as err:
        load_data(spec(tmp_path))
    assert "ignore_index" not in str(err.value)  # it would not help a 0/255 mask


def test_rgb_mask_with_equal_channels_is_a_label_map(tmp_path: Path) -> None:
    folder(tmp_path, ["a", "b", "c"])
    save(tmp_path / "masks" / "a.png", np.repeat(labels(0)[:, :, None], 3, axis=2))
    assert load_data(spec(tmp_path)).in_channels == 3
    save(tmp_path / "masks" / "c.png", rgb(5))
    with pytest.raises(DataError, match=r"c\.png: mask is a colour image"):
        load_data(spec(tmp_path))


# ---------------------------------------------------------------------------------- errors


def test_missing_root_and_dirs(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="data.root: directory .* not found"):
        load_data(spec(tmp_path / "nope"))
    (tmp_path / "images").mkdir()
    with pytest.raises(DataError, match="data.masks: directory .* not found"):
        load_data(spec(tmp_path))
    (tmp_path / "masks").mkdir()
    with pytest.raises(DataError, match="data.images: no image files"):
        load_data(spec(tmp_path))


def test_no_pairs(tmp_path: Path) -> None:
    save(tmp_path / "images" / "a.png", rgb(0))
    save(tmp_path / "masks" / "b.png", labels(0))
    with pytest.raises(DataError, match="no image/mask pairs"):
        load_data(spec(tmp_path))


def test_image_without_mask(tmp_path: Path) -> None:
    folder(tmp_path, ["a", "b", "c"])
    save(tmp_path / "images" / "lonely.jpg", rgb(9))
    with pytest.raises(DataError, match=r"lonely\.jpg has no mask"):
        load_data(spec(tmp_path))


def test_size_mismatch(tmp_path: Path) -> None:
    folder(tmp_path, ["a", "b", "c"])
    save(tmp_path / "masks" / "b.png", labels(1, size=(9, 10)))
    with pytest.raises(DataError, match=r"b\.png: mask is 9x10 .* b\.jpg is 8x10"):
        load_data(spec(tmp_path))


def test_corrupt_image(tmp_path: Path) -> None:
    folder(tmp_path, ["a", "b", "c"])
    (tmp_path / "images" / "b.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    with pytest.raises(DataError, match=r"b\.jpg: cannot read this image file"):
        load_data(spec(tmp_path))


def test_different_channel_counts(tmp_path: Path) -> None:
    folder(tmp_path, ["a", "b", "c"])
    save(tmp_path / "images" / "c.jpg", rgb(2)[:, :, 0])
    with pytest.raises(DataError, match=r"c\.jpg: images have different channel counts: c has "
                                        r"1, a has 3"):
        load_data(spec(tmp_path))


def test_batch_larger_than_train(tmp_path: Path) -> None:
    folder(tmp_path, ["a", "b", "c", "d"])
    cfg = config({"root": str(tmp_path), "images": "images", "masks": "masks", "batch_size": 3,
                  "split_ratios": {"train": 0.5, "val": 0.5}})
    with pytest.raises(DataError, match=r"data\.batch_size is 3 but the train split has only 2"):
        make_loaders(load_data(cfg.data), cfg, seed=0)


# ------------------------------------------------------------------------------ multi-band


def test_uint16_four_band_tiff_and_train_only_stats(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    stacks = {}
    for i in range(6):
        stack = rng.integers(0, 65536, (4, 12, 12), dtype=np.uint16)  # planar (C, H, W)
        stack[2] = 1000 * i  # a band that differs per image: catches stats over the wrong split
        stacks[f"t{i}"] = stack
        save(tmp_path / "images" / f"t{i}.tif", stack)
        save(tmp_path / "masks" / f"t{i}.png", labels(i, size=(12, 12)))
    data = load_data(spec(tmp_path, split_ratios={"train": 0.5, "val": 0.5}))
    assert data.in_channels == 4
    sample = data.splits["train"][0]
    assert sample.image.shape == (12, 12, 4) and sample.image.dtype == np.uint16
    train = np.stack([stacks[s.name] for s in data.splits["train"]]).astype(np.float64) / 65535
    np.testing.assert_allclose(data.mean, train.mean(axis=(0, 2, 3)), rtol=1e-9)
    np.testing.assert_allclose(data.std, train.std(axis=(0, 2, 3)), rtol=1e-9)

    cfg = config(
        {"root": str(tmp_path), "images": "images", "masks": "masks", "batch_size": 2,
         "size": [16, 16], "crop": [8, 8], "split_ratios": {"train": 0.5, "val": 0.5}},
        augment={"hflip": True, "rot90": True, "shift_scale_rotate": True, "color_jitter": True,
                 "blur": True, "gauss_noise": True, "random_resized_crop": True, "p": 1.0},
    )
    loaders = make_loaders(data, cfg, seed=0)
    x, y = next(iter(loaders["train"]))
    assert x.shape == (2, 4, 8, 8) and x.dtype == torch.float32
    assert y.shape == (2, 8, 8) and y.dtype == torch.uint8
    x, y = next(iter(loaders["val"]))
    assert x.shape == (2, 4, 16, 16) and y.shape == (2, 16, 16)


def test_normalize_none(tmp_path: Path) -> None:
    folder(tmp_path, ["a", "b", "c"])
    data = load_data(spec(tmp_path, normalize="none"))
    assert data.mean == [0.0] * 3 and data.std == [1.0] * 3


# ------------------------------------------------------------------------------- synthetic


def test_synthetic_is_deterministic_and_has_both_classes() -> None:
    synth = SyntheticSpec(num_images=6, channels=2, size=32, seed=7)
    first, again = synthetic_samples(synth, "binary", 2), synthetic_samples(synth, "binary", 2)
    assert [s.name for s in first] == [f"synth_{i:03d}" for i in range(6)]
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.image, b.image)
        np.testing.assert_array_equal(a.mask, b.mask)
        assert a.image.shape == (32, 32, 2) and a.image.dtype == np.uint8
        assert set(np.unique(a.mask)) == {0, 1}
    other = synthetic_samples(synth.model_copy(update={"seed": 8}), "binary", 2)
    assert not np.array_equal(first[0].image, other[0].image)


def test_synthetic_multiclass_through_load_data() -> None:
    data = load_data(
        DataSpec.model_validate(
            {"task": "multiclass", "num_classes": 4, "synthetic": {"num_images": 12, "size": 32}}
        )
    )
    assert set(data.splits) == {"train", "val", "test"}
    assert sum(len(v) for v in data.splits.values()) == 12
    assert data.in_channels == 3 and (data.class_pixels > 0).all()


# ---------------------------------------------------------------------------------- loaders


def test_loaders_pin_memory_only_for_cuda() -> None:
    cfg = config({"task": "binary", "synthetic": {"num_images": 8, "size": 16}, "batch_size": 2,
                  "num_workers": 1})
    data = load_data(cfg.data)
    for device, pinned in ((None, False), (torch.device("cpu"), False),
                           (torch.device("cuda"), True)):
        loaders = make_loaders(data, cfg, seed=0, device=device)
        assert {split: loader.pin_memory for split, loader in loaders.items()} == dict.fromkeys(
            loaders, pinned)
        assert all(loader.persistent_workers for loader in loaders.values())


def test_loaders_with_all_augmentations() -> None:
    cfg = config(
        {"synthetic": {"num_images": 10, "size": 32, "channels": 3}, "batch_size": 3,
         "eval_batch_size": 2, "crop": [24, 16], "ignore_index": 255},
        augment={name: True for name in ("hflip", "vflip", "rot90", "shift_scale_rotate",
                                         "color_jitter", "blur", "gauss_noise",
                                         "random_resized_crop")} | {"p": 1.0},
    )
    data = load_data(cfg.data)
    loaders = make_loaders(data, cfg, seed=0)
    assert set(loaders) == set(data.splits)
    batches = list(loaders["train"])
    assert len(batches) == len(data.splits["train"]) // 3  # ragged last batch dropped
    for x, y in batches:
        assert x.shape == (3, 3, 24, 16) and x.dtype == torch.float32
        assert y.shape == (3, 24, 16) and y.dtype == torch.uint8
        assert set(y.unique().tolist()) <= {0, 1, 255}  # 255: filled by the affine
    x, y = next(iter(loaders["val"]))
    assert x.shape == (2, 3, 32, 32) and y.shape == (2, 32, 32)
    # Same seed, same batches; the val images are the normalised originals.
    again = list(make_loaders(data, cfg, seed=0)["train"])
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches, again, strict=True))
    sample = data.splits["val"][0]
    expected = (sample.image / 255.0 - np.array(data.mean)) / np.array(data.std)
    np.testing.assert_allclose(x[0].numpy(), expected.transpose(2, 0, 1), atol=1e-5)


def test_every_augment_toggle_has_one_registered_builder() -> None:
    toggles = {name for name, field in AugmentSpec.model_fields.items()
               if field.annotation is bool}
    # random_resized_crop replaces the resize; cutmix acts on batches (ablate.engine)
    assert set(AUGMENTATIONS) == toggles - {"random_resized_crop", "cutmix"}


def test_augmentations_enter_the_pipeline_in_registry_order() -> None:
    cfg = config({"synthetic": {"num_images": 4, "size": 32}, "batch_size": 2},
                 augment={"gauss_noise": True, "hflip": True, "rot90": True})
    steps = build_transforms(cfg, train=True, in_channels=1, image_size=(32, 16)).transforms
    # rot90 on a non-square sample: both flips at once, so the shape stays
    assert [type(t).__name__ for t in steps] == ["HorizontalFlip", "Compose", "GaussNoise"]
    assert build_transforms(cfg, train=False).transforms == []


def test_a_registered_augmentation_is_used_by_its_toggle(monkeypatch) -> None:
    monkeypatch.setattr(transforms, "AUGMENTATIONS", {})
    transforms.register("hflip")(lambda c: A.Transpose(p=c.p))
    cfg = config({"synthetic": {"num_images": 4, "size": 32}, "batch_size": 2},
                 augment={"hflip": True, "vflip": True, "p": 0.25})
    (step,) = build_transforms(cfg, train=True).transforms
    assert isinstance(step, A.Transpose) and step.p == 0.25


def test_different_sizes_need_data_size(tmp_path: Path) -> None:
    folder(tmp_path, ["a", "b", "c", "d"])
    save(tmp_path / "images" / "d.jpg", rgb(3, size=(12, 10)))
    save(tmp_path / "masks" / "d.png", labels(3, size=(12, 10)))
    base = {"root": str(tmp_path), "images": "images", "masks": "masks", "batch_size": 2,
            "split_lists": {"train": "train.txt", "val": "val.txt"}}
    (tmp_path / "train.txt").write_text("a\nd\n")
    (tmp_path / "val.txt").write_text("b\nc\n")
    cfg = config(base)
    with pytest.raises(DataError, match="different sizes .*data.size"):
        make_loaders(load_data(cfg.data), cfg, seed=0)
    cfg = config(base | {"size": [8, 8]})
    x, _ = next(iter(make_loaders(load_data(cfg.data), cfg, seed=0)["train"]))
    assert x.shape == (2, 3, 8, 8)


# ------------------------------------------------------------------------------------ cache


def test_decode_cache_avoids_re_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder(tmp_path, ["a", "b", "c"])
    calls: list[str] = []
    decode = data_io.decode_image

    def counting(path: Path) -> np.ndarray:
        calls.append(path.name)
        return decode(path)

    monkeypatch.setattr(data_io, "decode_image", counting)
    clear_cache()
    load_data(spec(tmp_path))
    load_data(spec(tmp_path, split_seed=5))
    assert sorted(calls) == ["a.jpg", "b.jpg", "c.jpg"]
    image = data_io.read_image(tmp_path / "images" / "a.jpg").pixels
    assert image.dtype == np.uint8 and not image.flags.writeable
    save(tmp_path / "images" / "a.jpg", rgb(7))  # a changed file is decoded again
    Path(tmp_path / "images" / "a.jpg").touch()
    load_data(spec(tmp_path))
    assert sorted(calls) == ["a.jpg", "a.jpg", "b.jpg", "c.jpg"]


# -------------------------------------------------------------------------------- real data


def test_membrane() -> None:
    if not (MEMBRANE / "image").is_dir():
        pytest.skip(f"{MEMBRANE} not available")
    data = load_data(spec(MEMBRANE, images="image", masks="label", mask_map={255: 1}))
    assert data.in_channels == 1
    assert sum(len(v) for v in data.splits.values()) == 30
    sample = data.splits["train"][0]
    assert sample.image.shape == (512, 512, 1) and set(np.unique(sample.mask)) == {0, 1}
    assert 0.3 < data.mean[0] < 0.7 and data.class_pixels.min() > 0
