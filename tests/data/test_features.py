"""Tests of the data features: derived channels, no-data, drop_empty, upscale, class balance,
train-only statistics and the file-based stand-in data sets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from ablate.data import load_data, make_loaders
from ablate.data.channels import (
    derived_channels,
    excess_green,
    excess_red,
    minmax,
    sobel_magnitude,
)
from ablate.data.prepare import upscale_mask
from ablate.data.standins import make_standin, write_plants, write_satellite
from ablate.errors import DataError
from ablate.metrics.counts import ConfusionMatrix
from ablate.spec import DataSpec, RunConfig

# ------------------------------------------------------------------------------------ helpers


def save(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix in (".tif", ".tiff"):
        tifffile.imwrite(path, array, photometric="minisblack")
    else:
        Image.fromarray(array).save(path)
    return path


def rgb(seed: int, size: tuple[int, int] = (8, 10), channels: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*size, channels), dtype=np.uint8)


def binary_mask(seed: int, size: tuple[int, int] = (8, 10)) -> np.ndarray:
    mask = np.random.default_rng(seed).integers(0, 2, size, dtype=np.uint8)
    mask.flat[:2] = (0, 1)
    return mask


def layout(root: Path, **data: Any) -> dict[str, Any]:
    return {"root": str(root), "images": "images", "masks": "masks"} | data


def lists(root: Path, **splits: list[str]) -> dict[str, str]:
    """Write ``<split>.txt`` list files and return data.split_lists."""
    for split, members in splits.items():
        (root / f"{split}.txt").write_text("\n".join(members) + "\n")
    return {split: f"{split}.txt" for split in splits}


def config(data: dict[str, Any], **sections: Any) -> RunConfig:
    return RunConfig.model_validate({"data": data, **sections})


# ------------------------------------------------------------------------- derived channels


# Four pixels (R, G, B) in a 2x2 image, values chosen for easy arithmetic.
PIXELS = np.array(
    [[[0.2, 0.6, 0.1], [0.5, 0.5, 0.5]], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], np.float32
)


def test_excess_green_and_red_by_hand() -> None:
    # ExG = 2G - R - B: 1.2-0.3 = 0.9, 0, -1, 2
    np.testing.assert_allclose(excess_green(PIXELS), [[0.9, 0.0], [-1.0, 2.0]], atol=1e-6)
    # ExR = 1.4R - G: 0.28-0.6 = -0.32, 0.7-0.5 = 0.2, 1.4, -1
    np.testing.assert_allclose(excess_red(PIXELS), [[-0.32, 0.2], [1.4, -1.0]], atol=1e-6)
    # min-max per image: ExG (x + 1) / 3, ExR (x + 1) / 2.4
    out = derived_channels(PIXELS, ["exr", "exg"])  # canonical order whatever the input order
    assert out.shape == (2, 2, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, :, 0], [[1.9 / 3, 1 / 3], [0.0, 1.0]], atol=1e-6)
    np.testing.assert_allclose(out[:, :, 1], [[0.68 / 2.4, 0.5], [1.0, 0.0]], atol=1e-6)


def test_sobel_by_hand_and_against_cv2() -> None:
    # Grey = R = G = B (the luma weights sum to 1): a vertical step between columns 1 and 2.
    grey = np.array([[0, 0, 1, 1]] * 4, np.float32)
    image = np.repeat(grey[:, :, None], 3, axis=2)
    # Gx at column 1: (1 + 2 + 1) - 0 = 4, at column 2: 4 - 0 = 4; columns 0 and 3 see their
    # mirrored neighbours (reflect-101), which are equal: 0. Gy = 0 everywhere.
    np.testing.assert_allclose(sobel_magnitude(image), [[0, 4, 4, 0]] * 4, atol=1e-6)
    np.testing.assert_allclose(derived_channels(image, ["sobel"])[:, :, 0], [[0, 1, 1, 0]] * 4)
    # A random RGB image: the numpy Sobel equals cv2's (BORDER_REFLECT_101) on the grey image.
    rand = np.random.default_rng(0).random((9, 7, 4)).astype(np.float32)  # 4th band ignored
    gray = 0.299 * rand[:, :, 0] + 0.587 * rand[:, :, 1] + 0.114 * rand[:, :, 2]
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    np.testing.assert_allclose(sobel_magnitude(rand), np.hypot(gx, gy), atol=1e-5)


def test_minmax_constant_is_zero() -> None:
    assert not minmax(np.full((3, 3), 0.7, np.float32)).any()
    flat = np.full((3, 4, 3), 0.4, np.float32)
    assert not derived_channels(flat, ["exg", "exr", "sobel"]).any()
    np.testing.assert_allclose(minmax(np.array([2.0, 4.0, 3.0])), [0.0, 1.0, 0.5])


def test_derived_channels_through_load_data_and_loaders(tmp_path: Path) -> None:
    for i in range(4):
        save(tmp_path / "images" / f"{i}.png", rgb(i, (12, 12)))
        save(tmp_path / "masks" / f"{i}.png", binary_mask(i, (12, 12)))
    data_spec = layout(tmp_path, derived={"exg": True, "sobel": True}, batch_size=2,
                       split_lists=lists(tmp_path, train=["0", "1"], val=["2", "3"]))
    cfg = config(data_spec)
    data = load_data(cfg.data)
    assert data.in_channels == 5 and data.bands == 3 and data.derived == ["exg", "sobel"]
    assert data.mean[3:] == [0.0, 0.0] and data.std[3:] == [1.0, 1.0]
    assert len(data.mean) == len(data.std) == 5
    x, _ = next(iter(make_loaders(data, cfg, seed=0)["val"]))
    assert x.shape == (2, 5, 12, 12)
    image = data.splits["val"][0].image / np.float32(255.0)
    np.testing.assert_allclose(x[0, 3].numpy(), minmax(excess_green(image)), atol=1e-5)
    np.testing.assert_allclose(x[0, 4].numpy(), minmax(sobel_magnitude(image)), atol=1e-5)
    expected = (image - np.array(data.mean[:3])) / np.array(data.std[:3])
    np.testing.assert_allclose(x[0, :3].numpy(), expected.transpose(2, 0, 1), atol=1e-5)

    # Computed after the pipeline: on the resized image (12 -> 8: area, in uint8 like the
    # 8-bit file), not resized afterwards.
    cfg = config(data_spec | {"size": [8, 8]})
    x, _ = next(iter(make_loaders(data, cfg, seed=0)["val"]))
    stored = data.splits["val"][0].image
    resized = cv2.resize(stored, (8, 8), interpolation=cv2.INTER_AREA) / np.float32(255.0)
    assert x.shape == (2, 5, 8, 8)
    np.testing.assert_allclose(x[0, 3].numpy(), minmax(excess_green(resized)), atol=1e-5)


def test_derived_channels_on_synthetic_train_loader() -> None:
    cfg = config({"synthetic": {"num_images": 8, "size": 32}, "batch_size": 2, "crop": [16, 16],
                  "derived": {"exg": True, "exr": True, "sobel": True}},
                 augment={"hflip": True, "color_jitter": True, "p": 1.0})
    data = load_data(cfg.data)
    assert data.in_channels == 6
    x, _ = next(iter(make_loaders(data, cfg, seed=0)["train"]))
    assert x.shape == (2, 6, 16, 16)
    derived = x[:, 3:]  # mean 0, std 1: still min-max normalised per image
    assert float(derived.min()) == 0.0 and float(derived.max()) == 1.0


def test_derived_channels_need_three_bands(tmp_path: Path) -> None:
    for i in range(3):
        save(tmp_path / "images" / f"{i}.png", rgb(i)[:, :, 0])
        save(tmp_path / "masks" / f"{i}.png", binary_mask(i))
    with pytest.raises(DataError, match=r"^data\.derived: exr need .*1 channel") as err:
        load_data(DataSpec.model_validate(layout(tmp_path, derived={"exr": True})))
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------------------------- nodata


def nodata_folder(root: Path, count: int = 4) -> dict[str, np.ndarray]:
    """uint16 4-band tiles with a no-data (0 in every band) top strip of 3 rows, and one pixel
    with only some bands 0 (valid data)."""
    rng = np.random.default_rng(0)
    tiles = {}
    for i in range(count):
        tile = rng.integers(1, 65536, (10, 12, 4), dtype=np.uint16)
        tile[:3] = 0
        tile[5, 5, :2] = 0  # partly zero: not no-data
        tiles[str(i)] = tile
        save(root / "images" / f"{i}.tif", tile)
        save(root / "masks" / f"{i}.png", binary_mask(i, (10, 12)))
    return tiles


def test_nodata_pixels_are_ignored_by_masks_and_metrics(tmp_path: Path) -> None:
    tiles = nodata_folder(tmp_path)
    data = load_data(DataSpec.model_validate(layout(
        tmp_path, nodata=0, ignore_index=255,
        split_lists=lists(tmp_path, train=["0", "1"], val=["2", "3"]))))
    for samples in data.splits.values():
        for sample in samples:
            raw = binary_mask(int(sample.name), (10, 12))
            assert (sample.mask[:3] == 255).all()
            np.testing.assert_array_equal(sample.mask[3:], raw[3:])  # incl. the partly-0 pixel
    # Counts and statistics leave the no-data pixels out.
    train = [binary_mask(i, (10, 12))[3:] for i in (0, 1)]
    assert data.class_pixels.tolist() == [sum(int((m == c).sum()) for m in train) for c in (0, 1)]
    valid = np.concatenate([tiles[n][3:].reshape(-1, 4) for n in ("0", "1")]) / 65535.0
    np.testing.assert_allclose(data.mean, valid.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(data.std, valid.std(axis=0), rtol=1e-9)

    matrix = ConfusionMatrix(2, ignore_index=255)
    for sample in data.splits["val"]:
        target = torch.from_numpy(sample.mask.astype(np.int64))
        matrix.update(torch.ones_like(target), target)  # predicts 1 everywhere, no-data too
    assert int(matrix.matrix.sum()) == 2 * 7 * 12  # only the 7 valid rows of each tile
    assert int(matrix.matrix[:, 1].sum()) == 2 * 7 * 12

    # Without data.nodata the same pixels are ordinary background.
    plain = load_data(DataSpec.model_validate(layout(
        tmp_path, split_lists={"train": "train.txt", "val": "val.txt"})))
    assert not any((s.mask == 255).any() for s in plain.splits["train"])


def test_nodata_survives_the_loader(tmp_path: Path) -> None:
    nodata_folder(tmp_path)
    cfg = config(layout(tmp_path, nodata=0, ignore_index=255, batch_size=2, size=[20, 24],
                        split_lists=lists(tmp_path, train=["0", "1"], val=["2", "3"])))
    _, y = next(iter(make_loaders(load_data(cfg.data), cfg, seed=0)["val"]))
    assert (y[:, :6] == 255).all() and not (y[:, 6:] == 255).any()


# ------------------------------------------------------------------------------ drop_empty


def test_drop_empty_drops_background_only_samples_from_every_split(tmp_path: Path) -> None:
    masks = {
        "a": binary_mask(0),
        "b": np.zeros((8, 10), np.uint8),  # all background
        "c": binary_mask(2),
        "d": np.where(np.arange(80).reshape(8, 10) % 2, 255, 0).astype(np.uint8),  # 0 + ignore
        "e": binary_mask(4),
        "f": np.zeros((8, 10), np.uint8),
    }
    for i, (name, mask) in enumerate(masks.items()):
        save(tmp_path / "images" / f"{name}.png", rgb(i))
        save(tmp_path / "masks" / f"{name}.png", mask)
    split_lists = lists(tmp_path, train=["a", "b"], val=["c", "d"], test=["e", "f"])
    base = layout(tmp_path, ignore_index=255, split_lists=split_lists)
    kept = load_data(DataSpec.model_validate(base))
    assert {s: [x.name for x in v] for s, v in kept.splits.items()} == {
        "train": ["a", "b"], "val": ["c", "d"], "test": ["e", "f"]}
    dropped = load_data(DataSpec.model_validate(base | {"drop_empty": True}))
    assert {s: [x.name for x in v] for s, v in dropped.splits.items()} == {
        "train": ["a"], "val": ["c"], "test": ["e"]}
    assert dropped.dropped == {"train": ["b"], "val": ["d"], "test": ["f"]}
    assert dropped.class_pixels.tolist() == np.bincount(masks["a"].ravel()).tolist()

    lists(tmp_path, train=["a", "c"], val=["b", "d"])  # every val mask is empty
    with pytest.raises(DataError, match=r"^data\.drop_empty: .*the val split") as err:
        load_data(DataSpec.model_validate(base | {"drop_empty": True, "split_lists": {
            "train": "train.txt", "val": "val.txt"}}))
    assert "\n" not in str(err.value)


def test_drop_empty_multiclass_counts_any_non_zero_class(tmp_path: Path) -> None:
    only_two = np.zeros((8, 10), np.uint8)
    only_two[2:4, 2:4] = 2
    for i, mask in enumerate([only_two, np.zeros((8, 10), np.uint8), only_two]):
        save(tmp_path / "images" / f"{i}.png", rgb(i))
        save(tmp_path / "masks" / f"{i}.png", mask)
    data = load_data(DataSpec.model_validate(layout(
        tmp_path, task="multiclass", num_classes=3, drop_empty=True,
        split_lists=lists(tmp_path, train=["0", "1"], val=["2"]))))
    assert [s.name for s in data.splits["train"]] == ["0"]


# --------------------------------------------------------------------------------- upscale


def test_upscale_images_cubic_masks_nearest(tmp_path: Path) -> None:
    for i in range(4):
        save(tmp_path / "images" / f"{i}.png", rgb(i))
        save(tmp_path / "masks" / f"{i}.png", binary_mask(i))
    split_lists = lists(tmp_path, train=["0", "1"], val=["2", "3"])
    data = load_data(DataSpec.model_validate(layout(tmp_path, upscale=2.0,
                                                    split_lists=split_lists)))
    sample = data.splits["train"][0]
    assert sample.image.shape == (16, 20, 3) and sample.image.dtype == np.uint8
    assert sample.mask.shape == (16, 20)
    raw = binary_mask(0)
    np.testing.assert_array_equal(sample.mask, raw.repeat(2, axis=0).repeat(2, axis=1))
    expected = cv2.resize(rgb(0), (20, 16), interpolation=cv2.INTER_CUBIC)
    np.testing.assert_array_equal(sample.image, expected)
    assert data.split_pixels["train"].sum() == 2 * 16 * 20

    # A non-integer factor: rounded size, labels still only the stored values.
    odd = load_data(DataSpec.model_validate(layout(tmp_path, upscale=1.5,
                                                   split_lists=split_lists)))
    assert odd.splits["val"][0].image.shape == (12, 15, 3)
    assert set(np.unique(odd.splits["val"][0].mask)) == {0, 1}

    # Crops are taken from the upscaled image; data.size still fixes the final size.
    cfg = config(layout(tmp_path, upscale=2.0, crop=[12, 12], batch_size=2,
                        split_lists=split_lists))
    loaders = make_loaders(load_data(cfg.data), cfg, seed=0)
    x, y = next(iter(loaders["train"]))
    assert x.shape == (2, 3, 12, 12) and set(y.unique().tolist()) <= {0, 1}
    assert next(iter(loaders["val"]))[0].shape == (2, 3, 16, 20)
    cfg = config(layout(tmp_path, upscale=2.0, size=[8, 8], batch_size=2,
                        split_lists=split_lists))
    assert next(iter(make_loaders(load_data(cfg.data), cfg, 0)["val"]))[0].shape == (2, 3, 8, 8)


def test_upscale_mask_keeps_labels_and_nodata_region(tmp_path: Path) -> None:
    labels = np.array([[0, 1, 2], [3, 255, 4]], np.int32)
    up = upscale_mask(labels, 2.5)
    assert up.shape == (5, 8) and up.dtype == np.int32
    assert set(np.unique(up)) == set(np.unique(labels))
    nodata_folder(tmp_path)
    data = load_data(DataSpec.model_validate(layout(
        tmp_path, nodata=0, ignore_index=255, upscale=2.0,
        split_lists=lists(tmp_path, train=["0", "1"], val=["2", "3"]))))
    mask = data.splits["val"][0].mask
    assert mask.shape == (20, 24) and (mask[:6] == 255).all() and not (mask[6:] == 255).any()


# --------------------------------------------------------------------------- class balance


def test_class_balance_binary(tmp_path: Path) -> None:
    for i in range(4):
        save(tmp_path / "images" / f"{i}.png", rgb(i))
        mask = binary_mask(i)
        mask[0, 2:5] = 255  # ignored: not counted
        save(tmp_path / "masks" / f"{i}.png", mask)
    data = load_data(DataSpec.model_validate(layout(
        tmp_path, ignore_index=255, split_lists=lists(tmp_path, train=["0", "1", "2"],
                                                      val=["3"]))))
    balance = data.class_balance()
    assert set(balance) == {"train", "val"}
    assert set(balance["val"]) == {"images", "pixels", "positive_ratio"}
    val = data.splits["val"][0].mask
    assert balance["val"]["pixels"] == 77 and balance["val"]["images"] == 1
    assert balance["val"]["positive_ratio"] == pytest.approx((val == 1).sum() / 77)
    train = np.stack([s.mask for s in data.splits["train"]])
    assert balance["train"]["pixels"] == 3 * 77
    assert balance["train"]["positive_ratio"] == pytest.approx((train == 1).sum() / 231)
    assert data.class_pixels.tolist() == data.split_pixels["train"].tolist()


def test_class_balance_multiclass_uses_class_slugs() -> None:
    data = load_data(DataSpec.model_validate({
        "task": "multiclass", "num_classes": 3, "class_names": ["Soil", "Crop plant", "weed"],
        "synthetic": {"num_images": 9, "size": 16}}))
    balance = data.class_balance()
    for split, row in balance.items():
        assert set(row) == {"images", "pixels", "frac_soil", "frac_crop_plant", "frac_weed"}
        masks = np.stack([s.mask for s in data.splits[split]])
        assert row["pixels"] == masks.size
        assert row["frac_crop_plant"] == pytest.approx((masks == 1).mean())
        assert sum(row[k] for k in ("frac_soil", "frac_crop_plant", "frac_weed")) == (
            pytest.approx(1.0))


# ----------------------------------------------------------------------- train-only stats


def test_band_statistics_come_from_train_only(tmp_path: Path) -> None:
    for i in range(6):
        save(tmp_path / "images" / f"{i}.png", rgb(i))
        save(tmp_path / "masks" / f"{i}.png", binary_mask(i))
    spec = DataSpec.model_validate(layout(
        tmp_path, split_lists=lists(tmp_path, train=["0", "1"], val=["2", "3"],
                                    test=["4", "5"])))
    first = load_data(spec)
    train = np.stack([rgb(0), rgb(1)]).reshape(-1, 3) / 255.0
    np.testing.assert_allclose(first.mean, train.mean(axis=0), rtol=1e-9)
    for i in range(2, 6):  # brighter val and test images: the statistics must not move
        save(tmp_path / "images" / f"{i}.png", np.full((8, 10, 3), 250, np.uint8))
    again = load_data(spec)
    assert again.mean == first.mean and again.std == first.std
    save(tmp_path / "images" / "1.png", np.full((8, 10, 3), 250, np.uint8))
    assert load_data(spec).mean != first.mean  # a train image does change them


# ------------------------------------------------------------------------------- stand-ins


@pytest.fixture(scope="module")
def standins(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict]]:
    """Both stand-ins at their default sizes, written once for this module."""
    root = tmp_path_factory.mktemp("standins")
    return {kind: (root / kind, make_standin(kind, root / kind)) for kind in ("plants",
                                                                              "satellite")}


def folder_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.mark.parametrize("writer", [write_plants, write_satellite])
def test_standins_are_deterministic(tmp_path: Path, writer: Any) -> None:
    first = writer(tmp_path / "a", num_images=6, size=64, seed=3)
    again = writer(tmp_path / "b", num_images=6, size=64, seed=3)
    writer(tmp_path / "c", num_images=6, size=64, seed=4)
    a, b, c = (folder_bytes(tmp_path / x) for x in "abc")
    for files in (a, b, c):
        files.pop("standin.json")  # holds the folder's path
    assert len(a) == 12 and a == b and a != c
    assert {k: v for k, v in first.items() if k != "data"} == (
        {k: v for k, v in again.items() if k != "data"})


def test_plants_labels(standins: dict[str, tuple[Path, dict]]) -> None:
    root, info = standins["plants"]
    images = sorted((root / "images").glob("*.png"))
    assert len(images) == 40 and [p.name for p in images][:2] == ["plant_000.png",
                                                                   "plant_001.png"]
    image = np.asarray(Image.open(images[0]))
    assert image.shape == (128, 128, 3) and image.dtype == np.uint8
    masks = np.stack([np.asarray(Image.open(root / "masks" / p.name)) for p in images])
    assert masks.dtype == np.uint8 and set(np.unique(masks)) == {0, 1, 2, 3, 4}
    crop, weed = np.isin(masks, (1, 2)).mean(), np.isin(masks, (3, 4)).mean()
    assert 0.01 <= weed <= 0.03 and crop > 5 * weed and (masks == 0).mean() > 0.5
    assert info["fractions"]["weed leaf"] == pytest.approx((masks == 3).mean())
    assert info["data"]["mask_map"] == {1: 1, 2: 1, 3: 2, 4: 2}
    assert json.loads((root / "standin.json").read_text())["kind"] == "plants"
    # Learnable: the classes differ in colour (mean RGB of crop vs weed vs soil).
    stack = np.stack([np.asarray(Image.open(p)) for p in images[:8]]).astype(float)
    sub = masks[:8]
    means = [stack[np.isin(sub, values)].mean(axis=0) for values in ((0,), (1, 2), (3, 4))]
    assert min(np.abs(means[i] - means[j]).max() for i, j in ((0, 1), (0, 2), (1, 2))) > 30


def test_plants_load_with_the_suggested_spec(standins: dict[str, tuple[Path, dict]]) -> None:
    _, info = standins["plants"]
    data = load_data(DataSpec.model_validate(info["data"] | {"derived": {"exg": True}}))
    assert data.in_channels == 4 and sum(len(v) for v in data.splits.values()) == 40
    assert all(set(np.unique(s.mask)) <= {0, 1, 2} for s in data.splits["train"])
    balance = data.class_balance()
    assert set(balance["train"]) == {"images", "pixels", "frac_soil", "frac_crop", "frac_weed"}
    assert 0.003 < balance["train"]["frac_weed"] < 0.04 < balance["train"]["frac_crop"]


def test_satellite_tiles(standins: dict[str, tuple[Path, dict]]) -> None:
    root, info = standins["satellite"]
    images = sorted((root / "images").glob("*.tif"))
    assert len(images) == 32
    sites = {p.name.split("_")[0] for p in images}
    assert sites == {"siteA", "siteB", "siteC", "siteD", "siteE"}
    tiles = np.stack([tifffile.imread(p) for p in images])
    assert tiles.shape == (32, 128, 128, 4) and tiles.dtype == np.uint16
    masks = np.stack([np.asarray(Image.open(root / "masks" / (p.stem + ".png")))
                      for p in images])
    assert masks.dtype == np.uint8 and set(np.unique(masks)) == {0, 1}
    nodata = (tiles == 0).all(axis=3)
    assert 3 <= sum(bool(n.any()) for n in nodata) <= 20  # some tiles have no-data strips
    assert not masks[nodata].any() and not (tiles[~nodata] == 0).all(axis=-1).any()
    assert 0.015 <= masks.mean() <= 0.035 and info["positive_ratio"] == pytest.approx(
        masks.mean())
    assert sum(not m.any() for m in masks) == info["empty_tiles"] >= 1
    # Learnable: roads and rivers differ from the land around them (NIR, blue).
    assert tiles[..., 3][masks == 1].mean() < 0.6 * tiles[..., 3][(masks == 0) & ~nodata].mean()


def test_satellite_loads_with_nodata_groups_and_drop_empty(
    standins: dict[str, tuple[Path, dict]],
) -> None:
    _, info = standins["satellite"]
    spec = DataSpec.model_validate(info["data"] | {"drop_empty": True})
    data = load_data(spec)
    assert data.in_channels == 4 and data.splits["train"][0].image.dtype == np.uint16
    owner: dict[str, str] = {}
    for split, samples in data.splits.items():
        for sample in samples:
            assert owner.setdefault(sample.name[:5], split) == split  # sites stay whole
    assert set(data.splits) == {"train", "val", "test"}
    assert sum(len(v) for v in data.dropped.values()) == info["empty_tiles"]
    ignored = sum(int((s.mask == 255).sum()) for v in data.splits.values() for s in v)
    assert ignored > 0
    balance = data.class_balance()
    for row in balance.values():
        assert 0.01 < row["positive_ratio"] < 0.06
    cfg = RunConfig.model_validate({"data": info["data"] | {
        "batch_size": 2, "crop": [64, 64], "derived": {"exg": True, "sobel": True}}})
    x, y = next(iter(make_loaders(load_data(cfg.data), cfg, seed=0)["train"]))
    assert x.shape == (2, 6, 64, 64) and set(y.unique().tolist()) <= {0, 1, 255}


def test_make_standin_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown stand-in 'roads'.*plants, satellite"):
        make_standin("roads", tmp_path)
    make_standin("plants", tmp_path / "p", num_images=2, size=32)
    with pytest.raises(FileExistsError, match="not empty.*overwrite"):
        make_standin("plants", tmp_path / "p", num_images=2, size=32)
    info = make_standin("plants", tmp_path / "p", num_images=1, size=32, overwrite=True)
    assert info["images"] == 1 and len(list((tmp_path / "p" / "images").iterdir())) == 1
    save(tmp_path / "s" / "images" / "mine.png", rgb(0))
    with pytest.raises(FileExistsError, match="not from this stand-in"):
        make_standin("satellite", tmp_path / "s", num_images=2, size=32, overwrite=True)
