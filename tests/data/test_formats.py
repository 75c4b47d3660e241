"""Tests of the data format options: soft masks (mask_threshold), mask_channel, image channel
conversion (channels, keep_alpha), resize interpolation and drop_last."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import tifffile
import torch
from PIL import Image
from pydantic import ValidationError

from ablate.data import formats, load_data, make_loaders
from ablate.data.formats import luminance
from ablate.data.io import read_image
from ablate.errors import DataError
from ablate.spec import DataSpec, RunConfig

# ------------------------------------------------------------------------------------ helpers


def save(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".tif":
        tifffile.imwrite(path, array, photometric="minisblack")
    else:
        Image.fromarray(array, mode=mode).save(path)
    return path


def noise(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def binary(seed: int, size: tuple[int, int] = (6, 8)) -> np.ndarray:
    mask = np.random.default_rng(seed).integers(0, 2, size, dtype=np.uint8)
    mask.flat[:2] = (0, 1)
    return mask


def soft(size: tuple[int, int] = (12, 16)) -> np.ndarray:
    """A disc with an anti-aliased edge: 0 outside, 255 inside, a ramp of values between."""
    yy, xx = np.mgrid[0 : size[0], 0 : size[1]]
    distance = np.hypot(yy - size[0] / 2, xx - size[1] / 2)
    return np.clip((size[0] / 3 - distance) * 80 + 128, 0, 255).astype(np.uint8)


def data_set(root: Path, images: dict[str, np.ndarray], masks: dict[str, np.ndarray] | None = None,
             modes: dict[str, str] | None = None) -> None:
    """Images (PIL modes as given) and masks (binary unless given) under ``root``."""
    for i, (name, image) in enumerate(images.items()):
        suffix = ".tif" if image.dtype == np.uint16 or image.ndim == 3 and image.shape[2] > 4 \
            else ".png"
        save(root / "images" / f"{name}{suffix}", image, (modes or {}).get(name))
        mask = (masks or {}).get(name, binary(i, image.shape[:2]))
        save(root / "masks" / f"{name}{'.tif' if mask.dtype.kind == 'f' else '.png'}", mask)
    (root / "train.txt").write_text("\n".join(list(images)[:-1]) + "\n")
    (root / "val.txt").write_text(list(images)[-1] + "\n")


def spec(root: Path, **data: Any) -> DataSpec:
    return DataSpec.model_validate(layout(root) | data)


def layout(root: Path) -> dict[str, Any]:
    return {"root": str(root), "images": "images", "masks": "masks",
            "split_lists": {"train": "train.txt", "val": "val.txt"}}


def samples(root: Path, **data: Any) -> dict[str, Any]:
    loaded = load_data(spec(root, **data))
    return {s.name: s for split in loaded.splits.values() for s in split}


# ----------------------------------------------------------------------------- soft masks


def test_mask_threshold_makes_soft_masks_binary(tmp_path: Path) -> None:
    raw = soft()
    assert len(np.unique(raw)) > 10  # anti-aliased: many values between 0 and 255
    data_set(tmp_path, {n: noise(i, (12, 16, 3)) for i, n in enumerate("abc")},
             masks={n: raw for n in "abc"})
    got = samples(tmp_path, mask_threshold=128)
    for sample in got.values():
        np.testing.assert_array_equal(sample.mask, (raw >= 128).astype(np.uint8))
    # The threshold maps every stored value: ignore_index then marks no stored value.
    with_ignore = samples(tmp_path, mask_threshold=200, ignore_index=255)
    np.testing.assert_array_equal(with_ignore["a"].mask, (raw >= 200).astype(np.uint8))


def test_mask_threshold_on_16_bit_and_float_masks(tmp_path: Path) -> None:
    ramp16 = (soft().astype(np.uint16) * 257)
    ramp_float = soft().astype(np.float32) / 255.0
    data_set(tmp_path / "u16", {n: noise(i, (12, 16, 3)) for i, n in enumerate("ab")},
             masks={n: ramp16 for n in "ab"})
    got = samples(tmp_path / "u16", mask_threshold=32768)
    np.testing.assert_array_equal(got["a"].mask, (ramp16 >= 32768).astype(np.uint8))
    data_set(tmp_path / "f", {n: noise(i, (12, 16, 3)) for i, n in enumerate("ab")},
             masks={n: ramp_float for n in "ab"})
    with pytest.raises(DataError, match=r"a\.tif: mask has non-integer values \(a soft mask\); "
                                        r"set data\.mask_threshold \(e\.g\. 0\.5"):
        samples(tmp_path / "f")
    got = samples(tmp_path / "f", mask_threshold=0.5)
    np.testing.assert_array_equal(got["b"].mask, (ramp_float >= 0.5).astype(np.uint8))


def test_mask_threshold_spec_errors() -> None:
    base = {"root": "r", "images": "i", "masks": "m"}
    with pytest.raises(ValidationError, match="mask_threshold makes binary masks"):
        DataSpec.model_validate(base | {"task": "multiclass", "num_classes": 3,
                                        "mask_threshold": 128})
    with pytest.raises(ValidationError, match="mask_threshold and mask_map both"):
        DataSpec.model_validate(base | {"mask_threshold": 128, "mask_map": {255: 1}})


def unknown_values(root: Path, mask: np.ndarray, **data: Any) -> str:
    data_set(root, {n: noise(i, mask.shape + (3,)) for i, n in enumerate("abc")},
             masks={"b": mask})
    with pytest.raises(DataError) as err:
        samples(root, **data)
    message = str(err.value)
    assert "\n" not in message and "b.png: mask values [" in message
    return message


def test_unknown_mask_values_suggest_what_fixes_them(tmp_path: Path) -> None:
    # Binary, soft 0..255: the threshold, not ignore_index.
    line = unknown_values(tmp_path / "1", soft())
    assert "for soft (anti-aliased) masks set data.mask_threshold (e.g. 128" in line
    assert "set data.ignore_index" not in line
    # ... and once ignore_index is set, it is not suggested again (only used as a target).
    line = unknown_values(tmp_path / "2", soft(), ignore_index=255)
    assert "mask_threshold" in line and "set data.ignore_index" not in line
    assert "nor ignore_index (255)" in line and "to ignore_index (255)" in line
    # Binary 0/255: mask_map {255: 1} or the threshold.
    line = unknown_values(tmp_path / "3", binary(1) * 255)
    assert line.endswith("set data.mask_map: {255: 1} (or data.mask_threshold: 128)")
    # Multiclass, one stray value: mask_map, or ignore_index naming that value.
    labels = binary(2) + binary(3)
    labels[0, 0] = 11
    line = unknown_values(tmp_path / "4", labels, task="multiclass", num_classes=3)
    assert "map them with data.mask_map" in line and line.endswith(
        "or set data.ignore_index: 11 if it marks pixels to ignore")
    line = unknown_values(tmp_path / "5", labels, task="multiclass", num_classes=3,
                          ignore_index=255)
    assert "set data.ignore_index" not in line and "mask_threshold" not in line
    # A mask_map that misses values: add them to it.
    line = unknown_values(tmp_path / "6", labels, task="multiclass", num_classes=3,
                          mask_map={1: 1})
    assert "add them to data.mask_map" in line


# ---------------------------------------------------------------------------- mask_channel


def test_mask_channel_reads_the_named_channel(tmp_path: Path) -> None:
    labels = binary(0, (6, 8))
    rgb_mask = np.stack([noise(1, (6, 8)), labels, noise(2, (6, 8))], axis=2)
    data_set(tmp_path, {n: noise(i, (6, 8, 3)) for i, n in enumerate("ab")},
             masks={"a": rgb_mask, "b": rgb_mask})
    with pytest.raises(DataError, match=r"a\.png: mask is a colour image with 3 different "
                                        r"channels; set data\.mask_channel \(0\.\.2\)"):
        samples(tmp_path)
    got = samples(tmp_path, mask_channel=1)
    np.testing.assert_array_equal(got["a"].mask, labels)
    with pytest.raises(DataError, match=r"mask has 3 channels \(0\.\.2\), so data\.mask_channel "
                                        r"3 does not exist"):
        samples(tmp_path, mask_channel=3)
    # A single-channel mask has only channel 0.
    for name in "ab":
        save(tmp_path / "masks" / f"{name}.png", labels)
    assert samples(tmp_path, mask_channel=0)["a"].mask.tolist() == labels.tolist()
    with pytest.raises(DataError, match=r"a\.png: mask has a single channel"):
        samples(tmp_path, mask_channel=1)


# ---------------------------------------------------------------------------- image channels


def test_luminance_equals_pil_convert_l() -> None:
    rgb = noise(0, (32, 32, 3))
    expected = np.asarray(Image.fromarray(rgb).convert("L"))
    np.testing.assert_array_equal(luminance(rgb)[:, :, 0], expected)
    wide = np.array([[[65535, 0, 0], [1000, 2000, 3000]]], np.uint16)
    np.testing.assert_array_equal(luminance(wide)[0, :, 0],
                                  [round(0.299 * 65535), round(299 + 1174 + 342)])
    floats = np.array([[[1.0, 0.5, 0.0]]], np.float32)
    assert luminance(floats)[0, 0, 0] == pytest.approx(0.299 + 0.2935)


def grey_alpha_and_rgba(root: Path) -> dict[str, np.ndarray]:
    """Two grey+alpha and two RGBA PNGs side by side (the alpha varies)."""
    images = {"g0": noise(0, (6, 8, 2)), "c0": noise(1, (6, 8, 4)), "g1": noise(2, (6, 8, 2)),
              "c1": noise(3, (6, 8, 4))}
    data_set(root, images, modes={"g0": "LA", "g1": "LA"})
    return images


def test_mixed_grey_alpha_and_rgba_need_data_channels(tmp_path: Path) -> None:
    grey_alpha_and_rgba(tmp_path)
    assert read_image(tmp_path / "images" / "g0.png").alpha
    with pytest.raises(DataError, match=r"different channel counts: c0 has 3, g0 has 1 \(like 2 "
                                        r"of the 4 images; alpha not counted\); set "
                                        r"data\.channels: 3 \(grey repeated to RGB\) or "
                                        r"data\.channels: 1 \(RGB to grey"):
        samples(tmp_path)


def test_channels_1_and_3_convert_grey_and_rgb(tmp_path: Path) -> None:
    images = grey_alpha_and_rgba(tmp_path)
    grey = samples(tmp_path, channels=1)
    np.testing.assert_array_equal(grey["g0"].image[:, :, 0], images["g0"][:, :, 0])  # alpha gone
    np.testing.assert_array_equal(
        grey["c0"].image[:, :, 0],
        np.asarray(Image.fromarray(images["c0"][:, :, :3]).convert("L")))
    assert {s.image.shape for s in grey.values()} == {(6, 8, 1)}
    rgb = samples(tmp_path, channels=3)
    np.testing.assert_array_equal(rgb["g1"].image, np.repeat(images["g1"][:, :, :1], 3, axis=2))
    np.testing.assert_array_equal(rgb["c1"].image, images["c1"][:, :, :3])
    assert load_data(spec(tmp_path, channels=3)).in_channels == 3


def test_alpha_alone_never_becomes_an_input(tmp_path: Path) -> None:
    data_set(tmp_path, {f"g{i}": noise(i, (6, 8, 2)) for i in range(3)},
             modes={f"g{i}": "LA" for i in range(3)})
    data = load_data(spec(tmp_path))
    assert data.in_channels == 1  # grey+alpha: the grey band only


def test_keep_alpha_keeps_it_last_and_warns_once(tmp_path: Path, caplog, monkeypatch) -> None:
    monkeypatch.setattr(formats, "_warned", set())
    images = {"g": noise(0, (6, 8, 2)), "c": noise(1, (6, 8, 3)), "v": noise(2, (6, 8, 4))}
    data_set(tmp_path, images, modes={"g": "LA"})
    with caplog.at_level(logging.WARNING, logger="ablate.data"):
        got = samples(tmp_path, channels=4, keep_alpha=True)
        samples(tmp_path, channels=4, keep_alpha=True)
    np.testing.assert_array_equal(got["g"].image[:, :, :3],
                                  np.repeat(images["g"][:, :, :1], 3, axis=2))
    np.testing.assert_array_equal(got["g"].image[:, :, 3], images["g"][:, :, 1])
    assert (got["c"].image[:, :, 3] == 255).all()  # no alpha: an opaque one
    np.testing.assert_array_equal(got["v"].image, images["v"])
    warnings = [r.getMessage() for r in caplog.records if r.name == "ablate.data"]
    assert warnings == ["warning: data.keep_alpha: the alpha band is model input channel 4 of 4;"
                        " 1 image(s) have none and get an opaque one"]


def test_palette_transparency_is_alpha(tmp_path: Path) -> None:
    image = Image.fromarray(noise(0, (6, 8)), mode="L").convert("P")
    image.info["transparency"] = 0
    image.save(tmp_path / "p.png", transparency=0)
    decoded = read_image(tmp_path / "p.png")
    assert decoded.alpha and decoded.pixels.shape == (6, 8, 4) and decoded.colour_bands == 3


def test_channels_that_cannot_be_converted(tmp_path: Path) -> None:
    bands = np.random.default_rng(0).integers(0, 65535, (6, 8, 4), dtype=np.uint16)
    data_set(tmp_path, {"a": noise(0, (6, 8, 3)), "t": bands, "b": noise(1, (6, 8, 3))})
    assert not read_image(tmp_path / "images" / "t.tif").alpha  # TIFF bands are data
    with pytest.raises(DataError, match=r"t has 4, a has 3 .*convert them to one format"):
        samples(tmp_path)
    with pytest.raises(DataError, match=r"images/t\.tif: a 4-band image cannot become 3 colour"):
        samples(tmp_path, channels=3)
    base = {"root": "r", "images": "i", "masks": "m"}
    with pytest.raises(ValidationError, match="channels counts the kept alpha band"):
        DataSpec.model_validate(base | {"channels": 1, "keep_alpha": True})
    with pytest.raises(ValidationError, match="derived: exg need the R, G, B bands but channels"):
        DataSpec.model_validate(base | {"channels": 1, "derived": {"exg": True}})


# -------------------------------------------------------------------------------- resizing


def config(root: Path, **data: Any) -> RunConfig:
    metric = "val_miou" if data.get("task") == "multiclass" else "val_iou"
    return RunConfig.model_validate({
        "data": layout(root) | {"normalize": "none", "batch_size": 1} | data,
        "objective": {"metric": metric}})


def first_val(cfg: RunConfig) -> tuple[np.ndarray, np.ndarray]:
    x, y = next(iter(make_loaders(load_data(cfg.data), cfg, seed=0)["val"]))
    return x[0].numpy(), y[0].numpy()


def block_means(image: np.ndarray, factor: int) -> np.ndarray:
    """The mean of each ``factor`` x ``factor`` block: what an anti-aliased shrink gives."""
    h, w, c = image.shape
    return image.reshape(h // factor, factor, w // factor, factor, c).mean(axis=(1, 3))


UINT8_ROUNDING = 0.5 / 255 + 1e-6


def test_area_resize_of_stripes_is_their_mean(tmp_path: Path) -> None:
    stripes = np.zeros((12, 24, 3), np.uint8)
    stripes[:, 1::2] = 255  # 1-pixel columns: a 3:1 shrink without anti-aliasing aliases
    data_set(tmp_path, {"a": stripes, "b": stripes})
    expected = block_means(stripes / 255.0, 3)  # 1/3 and 2/3 in turn
    np.testing.assert_allclose(expected[0, :2, 0], [1 / 3, 2 / 3])
    for mode in ("auto", "area"):
        x, _ = first_val(config(tmp_path, size=[4, 8], resize=mode))
        assert x.shape == (3, 4, 8)
        np.testing.assert_allclose(x.transpose(1, 2, 0), expected, atol=1e-6)
    for mode in ("cubic", "linear", "nearest"):
        x, _ = first_val(config(tmp_path, size=[4, 8], resize=mode))
        # Each output pixel is the input pixel at its centre: the stripes alias to 0 or 1.
        np.testing.assert_allclose(x, np.round(x), atol=1e-6, err_msg=mode)
    # A random image shrunk 4:1 under auto is its block means (8-bit images are resized as
    # uint8: each mean rounded to the nearest of 256 levels).
    image = noise(3, (16, 32, 3))
    data_set(tmp_path, {"a": image, "b": image})
    x, _ = first_val(config(tmp_path, size=[4, 8]))
    np.testing.assert_allclose(x.transpose(1, 2, 0), block_means(image / 255.0, 4),
                               atol=UINT8_ROUNDING)


def test_enlarging_is_cubic_under_auto(tmp_path: Path) -> None:
    image = noise(5, (6, 8, 3))
    data_set(tmp_path, {"a": image, "b": image})
    x, _ = first_val(config(tmp_path, size=[12, 16]))
    expected = cv2.resize(image.astype(np.float32) / 255, (16, 12), interpolation=cv2.INTER_CUBIC)
    # resized as uint8: rounded to 256 levels, and a cubic overshoot saturates at 0 and 1
    np.testing.assert_allclose(x.transpose(1, 2, 0), np.clip(expected, 0, 1), atol=UINT8_ROUNDING)


@pytest.mark.parametrize("mode", ["auto", "area", "cubic", "linear", "nearest"])
def test_masks_are_resized_by_nearest_at_pixel_centres(tmp_path: Path, mode: str) -> None:
    labels = np.tile(np.arange(4, dtype=np.uint8), (16, 8))  # columns 0 1 2 3 0 1 2 3 ...
    labels[:4, :4] = 255  # an ignored block
    data_set(tmp_path, {"a": noise(0, (16, 32, 3)), "b": noise(1, (16, 32, 3))},
             masks={"a": labels, "b": labels})
    multiclass = dict(task="multiclass", num_classes=4, ignore_index=255)
    _, y = first_val(config(tmp_path, size=[4, 8], resize=mode, **multiclass))
    assert set(np.unique(y)) <= {0, 1, 2, 3, 255}  # labels stay labels
    # Each output pixel takes the input pixel at its centre: column 4j + 2 has label 2.
    np.testing.assert_array_equal(y[1:], 2)
    _, y = first_val(config(tmp_path, size=[32, 64], resize=mode, **multiclass))
    np.testing.assert_array_equal(y, labels.repeat(2, axis=0).repeat(2, axis=1))


def test_upscale_below_one_shrinks_with_area(tmp_path: Path) -> None:
    stripes = np.zeros((9, 18, 1), np.uint8)
    stripes[:, 1::2] = 210
    data_set(tmp_path, {"a": stripes[:, :, 0], "b": stripes[:, :, 0]})
    got = samples(tmp_path, upscale=1 / 3)
    assert got["a"].image.shape == (3, 6, 1)
    np.testing.assert_array_equal(got["a"].image, block_means(stripes.astype(float), 3))  # 70/140
    cubic = samples(tmp_path, upscale=1 / 3, resize="cubic")
    assert set(np.unique(cubic["a"].image)) == {0, 210}


# ------------------------------------------------------------------------------- drop_last


def test_drop_last_is_a_train_only_setting(tmp_path: Path) -> None:
    data_set(tmp_path, {f"s{i}": noise(i, (6, 8, 3)) for i in range(10)})  # 9 train, 1 val
    (tmp_path / "val.txt").write_text("s8\ns9\n")
    (tmp_path / "train.txt").write_text("\n".join(f"s{i}" for i in range(8)) + "\n")

    def batches(**data: Any) -> dict[str, list[int]]:
        cfg = config(tmp_path, **data)
        loaders = make_loaders(load_data(cfg.data), cfg, seed=0)
        return {split: [len(y) for _, y in loader] for split, loader in loaders.items()}

    assert RunConfig.model_validate({"data": layout(tmp_path)}).data.drop_last is True
    assert batches(batch_size=3) == {"train": [3, 3], "val": [2]}  # 2 of 8 left out
    assert batches(batch_size=3, drop_last=False) == {"train": [3, 3, 2], "val": [2]}
    assert batches(batch_size=3, eval_batch_size=1) == {"train": [3, 3], "val": [1, 1]}
    # A batch larger than the train split: one partial batch, only without drop_last.
    assert batches(batch_size=12, drop_last=False)["train"] == [8]
    with pytest.raises(DataError, match=r"data\.batch_size is 12 .* at most 8 \(with "
                                        r"data\.drop_last"):
        batches(batch_size=12)
    cfg = config(tmp_path, batch_size=3, drop_last=False)
    seen = torch.cat([y for _, y in make_loaders(load_data(cfg.data), cfg, 0)["train"]])
    assert seen.shape[0] == 8
