"""Data as it comes, on tiny synthetic folders: suffix pairing, colour-coded masks, masks of
another size, split files of numbers, contiguous carving, and every problem in one pass."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from ablate.data import load_data
from ablate.data.problems import Problems
from ablate.data.splits import by_blocks, by_ratios
from ablate.errors import DataError
from ablate.spec import DataSpec
from tests.conftest import save_image

SIZE = (6, 8)
COLOURS = {0: [0, 0, 0], 1: [0, 255, 0], 2: [255, 0, 0]}


def rgb(seed: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def labels(seed: int, size: tuple[int, int] = SIZE, classes: int = 2) -> np.ndarray:
    mask = np.random.default_rng(seed).integers(0, classes, size, dtype=np.uint8)
    mask.flat[:classes] = range(classes)
    return mask


def spec(root: Path, **data: Any) -> DataSpec:
    return DataSpec.model_validate({"root": str(root), "images": "images", "masks": "masks",
                                    "split_ratios": {"val": 0.25}, "batch_size": 1} | data)


def names(data: Any) -> dict[str, list[str]]:
    return {split: [s.name for s in samples] for split, samples in data.splits.items()}


# ----------------------------------------------------------------------------------- pairing


def test_suffix_pairing(tmp_path: Path) -> None:
    for i in range(1, 5):
        save_image(tmp_path / "images" / f"{i:03d}_image.png", rgb(i))
        save_image(tmp_path / "masks" / f"{i:03d}_mask.png", labels(i))
    (tmp_path / "masks" / "001_mask.yaml").write_text("polygons: []")  # not an image: ignored
    with pytest.raises(DataError, match=r"set data\.image_suffix: '_image' and "
                                        r"data\.mask_suffix: '_mask'"):
        load_data(spec(tmp_path))
    data = load_data(spec(tmp_path, image_suffix="_image", mask_suffix="_mask"))
    assert sorted(names(data)["train"] + names(data)["val"]) == ["001", "002", "003", "004"]
    # a file without the suffix names no sample: a problem, never silently skipped
    save_image(tmp_path / "masks" / "notes.png", labels(9))
    with pytest.raises(DataError, match=r"notes\.png: the name does not end with "
                                        r"data\.mask_suffix '_mask'"):
        load_data(spec(tmp_path, image_suffix="_image", mask_suffix="_mask"))


def test_names_with_two_dots_keep_their_middle(tmp_path: Path) -> None:
    for i in range(4):
        save_image(tmp_path / "images" / f"tile_{i}.tiff_2{i}.tiff", rgb(i))
        save_image(tmp_path / "masks" / f"tile_{i}.tiff_2{i}.png", labels(i))
    data = load_data(spec(tmp_path))
    assert "tile_0.tiff_20" in names(data)["train"] + names(data)["val"]


# ------------------------------------------------------------------------------------- masks


def test_colour_coded_masks(tmp_path: Path) -> None:
    palette = np.array(list(COLOURS.values()), dtype=np.uint8)
    for i in range(4):
        save_image(tmp_path / "images" / f"{i}.png", rgb(i))
        save_image(tmp_path / "masks" / f"{i}.png", palette[labels(i, classes=3)])
    three = {"task": "multiclass", "num_classes": 3}
    data = load_data(spec(tmp_path, mask_colors=COLOURS, **three))
    sample = next(s for items in data.splits.values() for s in items if s.name == "0")
    np.testing.assert_array_equal(sample.mask, labels(0, classes=3))
    # a palette mask is read by its colours when mask_colors is set
    indexed = Image.fromarray(labels(1, classes=3), mode="P")
    indexed.putpalette(palette.ravel().tolist())
    indexed.save(tmp_path / "masks" / "1.png")
    data = load_data(spec(tmp_path, mask_colors={0: "#000000", 1: "0,255,0", 2: [255, 0, 0]},
                          **three))
    sample = next(s for items in data.splits.values() for s in items if s.name == "1")
    np.testing.assert_array_equal(sample.mask, labels(1, classes=3))
    # a colour that is no class: the file, the colour and its pixels, and the setting
    smoothed = palette[labels(2, classes=3)]
    smoothed[0, :3] = (0, 128, 0)
    save_image(tmp_path / "masks" / "2.png", smoothed)
    with pytest.raises(DataError, match=r"2\.png: 3 pixels have colours that are not in "
                                        r"data\.mask_colors: 0,128,0 \(3 px\); add them"):
        load_data(spec(tmp_path, mask_colors=COLOURS, **three))


def test_mask_colors_validation() -> None:
    base = {"root": "x", "images": "i", "masks": "m", "task": "multiclass", "num_classes": 3}
    with pytest.raises(ValidationError, match="given for 0 and 1; a colour is one class"):
        DataSpec.model_validate(base | {"mask_colors": {0: [0, 0, 0], 1: "#000000"}})
    with pytest.raises(ValidationError, match="keep one way of reading the masks"):
        DataSpec.model_validate(base | {"mask_colors": COLOURS, "mask_map": {1: 2}})
    with pytest.raises(ValidationError, match="not a colour"):
        DataSpec.model_validate(base | {"mask_colors": {0: [0, 300, 0]}})
    with pytest.raises(ValidationError, match="neither a class"):
        DataSpec.model_validate(base | {"mask_colors": {5: [1, 2, 3]}})


@pytest.mark.parametrize("how", ["crop", "resize"])
def test_mask_fit(tmp_path: Path, how: str) -> None:
    for i in range(4):
        save_image(tmp_path / "images" / f"{i}.png", rgb(i))
        save_image(tmp_path / "masks" / f"{i}.png", labels(i))
    wide = np.concatenate([labels(2), np.ones((SIZE[0], 3), np.uint8)], axis=1)
    save_image(tmp_path / "masks" / "2.png", wide)
    with pytest.raises(DataError, match=r"2\.png: mask is 6x11 \(HxW\) but its image 2\.png is "
                                        r"6x8; .*data\.mask_fit: crop"):
        load_data(spec(tmp_path))
    data = load_data(spec(tmp_path, mask_fit=how))
    fitted = next(s for items in data.splits.values() for s in items if s.name == "2")
    assert fitted.mask.shape == SIZE
    if how == "crop":
        np.testing.assert_array_equal(fitted.mask, labels(2))


def test_mask_fit_crop_pads_a_smaller_mask_with_ignore_index(tmp_path: Path) -> None:
    for i in range(4):
        save_image(tmp_path / "images" / f"{i}.png", rgb(i))
        save_image(tmp_path / "masks" / f"{i}.png", labels(i))
    save_image(tmp_path / "masks" / "1.png", labels(1)[:5])
    with pytest.raises(DataError, match="data.ignore_index, which is not set"):
        load_data(spec(tmp_path, mask_fit="crop"))
    data = load_data(spec(tmp_path, mask_fit="crop", ignore_index=255))
    padded = next(s for items in data.splits.values() for s in items if s.name == "1")
    assert (padded.mask[5] == 255).all() and (padded.mask[:5] == labels(1)[:5]).all()


def test_inverted_1_bit_masks(tmp_path: Path) -> None:
    for i in range(4):
        save_image(tmp_path / "images" / f"{i}.png", rgb(i))
        save_image(tmp_path / "masks" / f"{i}.png", labels(i).astype(bool))
    assert Image.open(tmp_path / "masks" / "0.png").mode == "1"
    data = load_data(spec(tmp_path, mask_map={0: 1, 1: 0}))
    sample = next(s for items in data.splits.values() for s in items if s.name == "0")
    np.testing.assert_array_equal(sample.mask, 1 - labels(0))


# -------------------------------------------------------------------------------- split files


def test_split_file_of_numbers_yaml_and_json(tmp_path: Path) -> None:
    for i in range(1, 7):
        save_image(tmp_path / "images" / f"{i:03d}.png", rgb(i))
        save_image(tmp_path / "masks" / f"{i:03d}.png", labels(i))
    (tmp_path / "split.yaml").write_text("train: [1, 2, 3, 4]\ntest: [5, 6]\n")
    lists = {"train": "split.yaml", "test": "split.yaml"}
    data = load_data(spec(tmp_path, split_lists=lists))
    assert names(data)["test"] == ["005", "006"]
    assert sorted(names(data)["train"] + names(data)["val"]) == ["001", "002", "003", "004"]
    (tmp_path / "split.json").write_text(json.dumps({"train": [1, 2, 3, 4], "val": ["005"]}))
    data = load_data(spec(tmp_path, split_lists={"train": "split.json", "val": "split.json"},
                          split_ratios=None))
    assert names(data) == {"train": ["001", "002", "003", "004"], "val": ["005"]}
    (tmp_path / "split.yaml").write_text("train: [1, 2, 3, 4]\n")
    with pytest.raises(DataError, match=r"split\.yaml has no 'test' list \(its keys: train\)"):
        load_data(spec(tmp_path, split_lists=lists))


@pytest.mark.parametrize(("overlap", "train", "test"), [
    ("drop", ["001", "002", "003"], ["005"]),
    ("train", ["001", "002", "003", "004"], ["005"]),
    ("test", ["001", "002", "003"], ["004", "005"]),
])
def test_split_overlap(tmp_path: Path, overlap: str, train: list[str], test: list[str],
                       caplog: pytest.LogCaptureFixture) -> None:
    for i in range(1, 7):
        save_image(tmp_path / "images" / f"{i:03d}.png", rgb(i))
        save_image(tmp_path / "masks" / f"{i:03d}.png", labels(i))
    (tmp_path / "split.yaml").write_text("train: [1, 2, 3, 4]\ntest: [4, 5]\nval: [6]\n")
    lists = {"train": "split.yaml", "val": "split.yaml", "test": "split.yaml"}
    with pytest.raises(DataError, match="'004' is listed for both train and test"):
        load_data(spec(tmp_path, split_lists=lists, split_ratios=None))
    data = load_data(spec(tmp_path, split_lists=lists, split_ratios=None, split_overlap=overlap))
    assert (names(data)["train"], names(data)["test"]) == (train, test)
    assert f"data.split_overlap: {overlap}: sample '004'" in caplog.text


# ---------------------------------------------------------------------------------- carving


def test_blocks_are_contiguous_and_do_not_interleave() -> None:
    slices = [str(i) for i in range(30)]
    blocks = by_blocks(slices, str, {"train": 0.6, "val": 0.2, "test": 0.2}, None)
    assert blocks == {"train": slices[:18], "val": slices[18:24], "test": slices[24:]}
    # the random carve puts val slices between train slices (what blocks are for)
    shuffled = by_ratios(slices, str, {"train": 0.6, "val": 0.2, "test": 0.2}, 0, None)
    positions = sorted(int(s) for s in shuffled["val"])
    assert positions[-1] - positions[0] > len(positions)
    # a gap leaves a sample out at each boundary: no carved slice next to a train one
    problems = Problems(echo=False)
    gapped = by_blocks(slices, str, {"train": 0.6, "val": 0.2, "test": 0.2}, None, 1,
                       problems)
    used = {int(s) for part in gapped.values() for s in part}
    assert set(range(30)) - used == {17, 23}
    trained = {int(s) for s in gapped["train"]}
    assert not any(int(s) + d in trained for s in gapped["val"] + gapped["test"] for d in (-1, 1))
    assert problems.warnings == ["data.carve_gap: 2 sample(s) left out between the carved "
                                 "blocks"]


def test_blocks_of_whole_groups_in_order() -> None:
    frames = [f"{seq}_{i:03d}" for seq in ("a", "b", "c", "d") for i in range(5)]
    blocks = by_blocks(frames, str, {"train": 0.5, "val": 0.25, "test": 0.25}, r"^(\w)_")
    assert [sorted({f[0] for f in part}) for part in blocks.values()] == [["a", "b"], ["c"],
                                                                          ["d"]]
    # train's own share below 1 leaves the rest (at the end) unused
    partial = by_blocks(frames, str, {"train": 0.5, "val": 0.25}, r"^(\w)_")
    assert {f[0] for f in partial["val"]} == {"c"}


def test_carve_blocks_through_load_data_and_its_spec_errors(tmp_path: Path) -> None:
    for i in range(10):
        save_image(tmp_path / "images" / f"{i}.png", rgb(i))
        save_image(tmp_path / "masks" / f"{i}.png", labels(i))
    data = load_data(spec(tmp_path, carve="blocks", split_ratios={"val": 0.2, "test": 0.2}))
    assert names(data) == {"train": [str(i) for i in range(6)], "val": ["6", "7"],
                           "test": ["8", "9"]}
    with pytest.raises(ValidationError, match="carve_gap .* needs carve: blocks"):
        spec(tmp_path, carve_gap=1)
    with pytest.raises(ValidationError, match="carve: blocks only applies to splits carved"):
        spec(tmp_path, carve="blocks", split_dirs={"val": {"images": "images",
                                                           "masks": "masks"}},
             split_ratios=None)


# ------------------------------------------------------------------------ one pass, all found


def test_every_problem_of_a_folder_in_one_error(tmp_path: Path) -> None:
    for i in range(6):
        save_image(tmp_path / "images" / f"{i}.png", rgb(i))
        save_image(tmp_path / "masks" / f"{i}.png", labels(i))
    save_image(tmp_path / "images" / "lonely.png", rgb(9))  # no mask
    save_image(tmp_path / "masks" / "orphan.png", labels(9))  # no image
    (tmp_path / "images" / "1.png").write_bytes(b"not a png")  # unreadable
    save_image(tmp_path / "masks" / "2.png", labels(2) * 7)  # values not classes
    save_image(tmp_path / "masks" / "3.png", labels(3, (5, 8)))  # another size
    with pytest.raises(DataError) as caught:
        load_data(spec(tmp_path))
    lines = str(caught.value).splitlines()
    assert len(lines) == 5, lines
    for needle in ("lonely.png has no mask", "orphan.png has no image",
                   "1.png: cannot read this image file", "2.png: mask values [7]",
                   "3.png: mask is 5x8"):
        assert sum(needle in line for line in lines) == 1, (needle, lines)


def test_problems_of_one_kind_are_summarised() -> None:
    problems = Problems(echo=False)
    for i in range(6):
        problems.add(f"m{i}.png: values", "masks stored as 0/255", f"m{i}.png")
    problems.add("something else")
    assert problems.lines() == [
        "m0.png: values", "m1.png: values", "m2.png: values",
        "... and 3 more masks stored as 0/255: m3.png, m4.png, m5.png (the same fix)",
        "something else"]
    with pytest.raises(DataError) as caught:
        problems.raise_if_any()
    assert str(caught.value).count("\n") == 4
