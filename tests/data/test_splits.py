"""Tests of the split rule (README "Splits"): own folders, list files and ratios combined."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from ablate.data import DataSplits, load_data
from ablate.errors import DataError, SpecError
from ablate.spec import DataSpec, spec_from_dict
from tests.conftest import TINY_SPEC, save_image

# ------------------------------------------------------------------------------------ helpers


def folder(root: Path, sub: str, names: list[str]) -> None:
    """``root/sub/images/<name>.png`` (RGB) and ``root/sub/masks/<name>.png`` (labels 0/1)."""
    for name in names:
        seed = sum(map(ord, sub + name))
        rng = np.random.default_rng(seed)
        save_image(root / sub / "images" / f"{name}.png",
                   rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
        mask = rng.integers(0, 2, (6, 8), dtype=np.uint8)
        mask.flat[:2] = (0, 1)
        save_image(root / sub / "masks" / f"{name}.png", mask)


def dirs(*splits: str) -> dict[str, dict[str, str]]:
    return {s: {"images": f"{s}/images", "masks": f"{s}/masks"} for s in splits}


def spec(root: Path, **data: Any) -> DataSpec:
    return DataSpec.model_validate({"root": str(root)} | data)


def names(data: DataSplits) -> dict[str, list[str]]:
    return {split: [s.name for s in samples] for split, samples in data.splits.items()}


TRAIN = [f"t{i:02d}" for i in range(20)]


@pytest.fixture
def train_test(tmp_path: Path) -> Path:
    """A train folder of 20 pairs and a test folder of 4 (names overlap those of train)."""
    folder(tmp_path, "train", TRAIN)
    folder(tmp_path, "test", ["t00", "t01", "x2", "x3"])
    return tmp_path


# --------------------------------------------------------------------------- combinations


def test_val_carved_from_the_train_folder_test_from_its_own(train_test: Path) -> None:
    data_spec = spec(train_test, split_dirs=dirs("train", "test"),
                     split_ratios={"train": 0.75, "val": 0.25})
    assert data_spec.split_sources() == {
        "train": "split_dirs.train", "val": "split_ratios.val", "test": "split_dirs.test"}
    got = names(load_data(data_spec))
    assert got["test"] == ["t00", "t01", "x2", "x3"]
    assert (len(got["train"]), len(got["val"])) == (15, 5)
    assert sorted(got["train"] + got["val"]) == TRAIN  # the whole train folder, once
    # The test split is the test folder's files even where a train file has the same name.
    test_image = load_data(data_spec).splits["test"][0].image
    np.testing.assert_array_equal(test_image,
                                  np.asarray(Image.open(train_test / "test/images/t00.png")))
    # train keeps the rest: {val: 0.25} alone gives the same split.
    alone = names(load_data(spec(train_test, split_dirs=dirs("train", "test"),
                                 split_ratios={"val": 0.25})))
    assert alone == got


def test_default_ratios_carve_val_only_when_test_has_a_folder(train_test: Path) -> None:
    data_spec = spec(train_test, split_dirs=dirs("train", "test"))
    assert data_spec.split_ratios is None  # as written
    assert data_spec.carve_ratios == {"val": 0.15}  # as it applies (and as a run logs it)
    got = names(load_data(data_spec))
    assert (len(got["train"]), len(got["val"]), len(got["test"])) == (17, 3, 4)
    # Only a train source: the historical default, all three carved.
    alone = spec(train_test, split_dirs=dirs("train"))
    assert alone.carve_ratios == {"train": 0.7, "val": 0.15, "test": 0.15}
    assert [len(v) for v in load_data(alone).splits.values()] == [14, 3, 3]
    # Every split with its own folder: nothing carved, nothing resolved.
    folder(train_test, "val", ["v0", "v1"])
    full = spec(train_test, split_dirs=dirs("train", "val", "test"))
    assert full.split_ratios is None and full.carve_ratios == {}
    assert names(load_data(full))["train"] == TRAIN


def test_images_and_masks_with_a_test_folder(tmp_path: Path) -> None:
    folder(tmp_path, "", TRAIN)
    folder(tmp_path, "held_out", ["h0", "h1"])
    data_spec = spec(tmp_path, images="images", masks="masks",
                     split_dirs={"test": {"images": "held_out/images", "masks": "held_out/masks"}},
                     split_ratios={"train": 0.8, "val": 0.2})
    got = names(load_data(data_spec))
    assert got["test"] == ["h0", "h1"]
    assert (len(got["train"]), len(got["val"])) == (16, 4)
    assert sorted(got["train"] + got["val"]) == TRAIN


def test_a_list_for_test_and_ratios_for_the_rest(tmp_path: Path) -> None:
    folder(tmp_path, "", TRAIN)
    (tmp_path / "test.txt").write_text("t03\nt07\nt11\nt19\n")
    data_spec = spec(tmp_path, images="images", masks="masks",
                     split_lists={"test": "test.txt"}, split_ratios={"val": 0.25})
    got = names(load_data(data_spec))
    assert got["test"] == ["t03", "t07", "t11", "t19"]
    assert (len(got["train"]), len(got["val"])) == (12, 4)  # 25 % of the 16 not listed
    assert sorted(got["train"] + got["val"] + got["test"]) == TRAIN
    # No ratios: val carved at the default 0.15 of what the list leaves.
    default = spec(tmp_path, images="images", masks="masks", split_lists={"test": "test.txt"})
    assert default.carve_ratios == {"val": 0.15}
    assert len(load_data(default).splits["val"]) == round(0.15 * 16)


def test_a_train_list_is_the_source_val_is_carved_from(tmp_path: Path) -> None:
    folder(tmp_path, "", TRAIN)
    (tmp_path / "train.txt").write_text("\n".join(TRAIN[:10]) + "\n")
    got = names(load_data(spec(tmp_path, images="images", masks="masks",
                               split_lists={"train": "train.txt"},
                               split_ratios={"val": 0.2})))
    assert (len(got["train"]), len(got["val"])) == (8, 2)
    assert sorted(got["train"] + got["val"]) == TRAIN[:10]  # unlisted samples stay unused


def test_a_val_list_names_samples_of_the_train_folder(train_test: Path) -> None:
    (train_test / "val.txt").write_text("t04\nt05\n")
    data_spec = spec(train_test, split_dirs=dirs("train", "test"),
                     split_lists={"val": "val.txt"})
    assert data_spec.carve_ratios == {}
    got = names(load_data(data_spec))
    assert got["val"] == ["t04", "t05"]
    assert got["train"] == [n for n in TRAIN if n not in ("t04", "t05")]


def test_group_pattern_keeps_groups_whole_when_carving_from_a_train_folder(
    tmp_path: Path,
) -> None:
    stems = [f"case{c}_slice{k}" for c in range(6) for k in range(4)]
    folder(tmp_path, "train", stems)
    folder(tmp_path, "test", ["other"])
    got = names(load_data(spec(tmp_path, split_dirs=dirs("train", "test"),
                               split_ratios={"val": 0.34}, group_pattern=r"^(case\d+)_")))
    cases = {split: {n.split("_")[0] for n in members} for split, members in got.items()}
    assert not cases["train"] & cases["val"] and len(cases["val"]) == 2


def test_synthetic_data_with_val_only(tmp_path: Path) -> None:
    data = load_data(DataSpec.model_validate(
        {"synthetic": {"num_images": 10, "size": 16}, "split_ratios": {"val": 0.3}}))
    assert [len(v) for v in data.splits.values()] == [7, 3] and set(data.splits) == {"train",
                                                                                      "val"}


# -------------------------------------------------------------------------- spec errors


BAD = [
    ({"split_dirs": dirs("train", "val"), "split_ratios": {"train": 0.8, "val": 0.2}},
     "the val split is given twice, by split_dirs.val and split_ratios.val"),
    ({"split_dirs": dirs("train", "test"), "split_lists": {"test": "t.txt"}},
     "the test split is given twice, by split_dirs.test and split_lists.test"),
    ({"images": "i", "masks": "m", "split_lists": {"val": "v.txt"},
      "split_ratios": {"val": 0.2}},
     "the val split is given twice, by split_lists.val and split_ratios.val"),
    ({"images": "i", "masks": "m", "split_dirs": dirs("train", "val")},
     "the train source is given twice"),
    ({"images": "i"}, "give both images and masks"),
    ({"split_dirs": dirs("val", "test")}, "needs a train source"),
    ({"images": "i", "masks": "m", "split_ratios": {"train": 0.8, "test": 0.2}},
     "no val split"),
    ({"split_dirs": dirs("train", "val", "test"), "split_ratios": {"train": 1.0}},
     "split_ratios carves no split"),
    ({"split_dirs": dirs("train", "val"), "group_pattern": "^(a)"},
     "group_pattern only applies to splits carved by split_ratios"),
    ({"split_dirs": dirs("train"), "split_ratios": {"val": 0.5, "test": 0.5}},
     "leave nothing for train"),
    ({"images": "i", "masks": "m", "split_ratios": {"train": 0.0, "val": 0.3}},
     "split_ratios.train is 0"),
    ({"images": "i", "masks": "m", "split_ratios": {"train": 0.8, "val": 0.4}},
     "add up to more than 1"),
]


@pytest.mark.parametrize(("data", "message"), BAD, ids=[m.split()[1] + str(i)
                                                        for i, (_, m) in enumerate(BAD)])
def test_impossible_split_combinations_are_one_line_spec_errors(data, message) -> None:
    with pytest.raises(ValidationError, match=message):
        DataSpec.model_validate({"root": "r"} | data)
    raw = dict(TINY_SPEC, data={"root": "r", **data})
    with pytest.raises(SpecError, match=message) as err:
        spec_from_dict(raw, source="spec.yaml")
    assert str(err.value).startswith("spec.yaml: data: ") and "\n" not in str(err.value)


def test_synthetic_with_folders_is_an_error() -> None:
    with pytest.raises(ValidationError, match="synthetic makes its own samples.*split_dirs"):
        DataSpec.model_validate({"synthetic": {"num_images": 8}, "split_dirs": dirs("train")})


def test_resolved_splits_validate_again_unchanged(train_test: Path) -> None:
    first = spec(train_test, split_dirs=dirs("train", "test"))
    again = DataSpec.model_validate(first.model_dump(mode="json"))
    assert again == first and again.carve_ratios == {"val": 0.15}
    # a run config holds the applied ratios explicitly; validated again, they stay
    applied = DataSpec.model_validate({**first.model_dump(mode="json"),
                                       "split_ratios": {"val": 0.15}})
    assert applied.carve_ratios == {"val": 0.15}
    # Configs saved by earlier versions carry the old default next to split folders, where it
    # never applied: they still load, with nothing carved.
    old = {"train": 0.7, "val": 0.15, "test": 0.15}
    saved = spec(train_test, split_dirs=dirs("train", "val", "test"), split_ratios=old)
    assert saved.carve_ratios == {}
    with pytest.raises(ValidationError, match="the test split is given twice"):
        spec(train_test, split_dirs=dirs("train", "test"), split_ratios=old)


# ----------------------------------------------------------------------------- list files


def test_list_file_lines_are_read_tolerantly(tmp_path: Path) -> None:
    folder(tmp_path, "", ["a", "b", "c", "d", "e", "f.v2", "g"])
    (tmp_path / "lists").mkdir()
    lines = [
        "# training samples",          # a comment line
        "a",                           # a stem
        "b.png   # trailing comment",  # a file name, comment after it
        "",                            # blank lines are skipped
        "   c   ",                     # surrounding spaces are not part of the name
        "images/d.png",                # a path relative to data.root
        "masks\\e.png",                # Windows separators, a mask path
        "f.v2",                        # a stem with a dot
        "a",                           # listed twice in one file: once
    ]
    # A byte-order mark and CRLF line ends, as a Windows editor writes them.
    (tmp_path / "lists" / "train.txt").write_bytes(
        b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n")
    (tmp_path / "lists" / "val.txt").write_text("/elsewhere/images/g.png masks/g.png\n")
    data = load_data(spec(tmp_path, images="images", masks="masks",
                          split_lists={"train": "lists/train.txt", "val": "lists/val.txt"}))
    assert names(data) == {"train": ["a", "b", "c", "d", "e", "f.v2"], "val": ["g"]}


def test_list_file_errors_name_the_line(tmp_path: Path) -> None:
    folder(tmp_path, "", ["a", "b", "c"])
    folder(tmp_path, "other", ["c"])
    lists = {"train": "train.txt", "val": "val.txt"}
    base = dict(images="images", masks="masks", split_lists=lists)
    (tmp_path / "val.txt").write_text("c\n")
    (tmp_path / "train.txt").write_text("a\n# fine\nzzz\n")
    with pytest.raises(DataError, match=r"train\.txt:3: 'zzz' names no image/mask pair of "
                                        r"data\.images; an entry is a sample's name"):
        load_data(spec(tmp_path, **base))
    (tmp_path / "train.txt").write_text("a\nc\n")
    with pytest.raises(DataError, match=r"'c' is listed for both train and val \(train: "
                                        r".*train\.txt:2; val: .*val\.txt:1\); a sample "
                                        r"may be in one split only: .*split_overlap: drop"):
        load_data(spec(tmp_path, **base))
    # A path that exists but is not the sample's file: a namesake in another folder.
    (tmp_path / "train.txt").write_text("a\nother/images/c.png\n")
    (tmp_path / "val.txt").write_text("b\n")
    with pytest.raises(DataError, match=r"train\.txt:2: 'other/images/c\.png' is .*but sample "
                                        r"'c' of the train folder is"):
        load_data(spec(tmp_path, **base))


def test_lists_naming_every_sample_leave_train_empty(tmp_path: Path) -> None:
    folder(tmp_path, "", ["a", "b"])
    (tmp_path / "val.txt").write_text("a\nb\n")
    with pytest.raises(DataError, match="none is left for train"):
        load_data(spec(tmp_path, images="images", masks="masks",
                       split_lists={"val": "val.txt"}))
