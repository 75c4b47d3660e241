"""``ablate check``: every problem of a data set in one run, a summary line, exit code 2 on
problems, nothing written; study create / train list every problem too."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ablate.data import clear_cache
from tests.conftest import TINY_SPEC, save_image

GREY = (32, 32)


@pytest.fixture(autouse=True)
def _fresh_decode_cache() -> Iterator[None]:
    clear_cache()
    yield
    clear_cache()


def grey(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, GREY, dtype=np.uint8)


def labels(seed: int, size: tuple[int, int] = GREY) -> np.ndarray:
    mask = np.random.default_rng(seed).integers(0, 2, size, dtype=np.uint8)
    mask.flat[:2] = (0, 1)
    return mask


def folder(root: Path, count: int = 8) -> Path:
    """``root/data``: ``count`` grey images with 0/1 masks."""
    for i in range(count):
        save_image(root / "data" / "images" / f"s{i}.png", grey(i))
        save_image(root / "data" / "masks" / f"s{i}.png", labels(i))
    return root / "data"


def spec(write_spec: Any, **data: Any) -> Path:
    raw = copy.deepcopy(TINY_SPEC)
    raw["data"] = {"task": "binary", "root": "data", "images": "images", "masks": "masks",
                   "split_ratios": {"val": 0.25, "test": 0.25}, "batch_size": 2, **data}
    return write_spec(raw)


def tree(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*")}


def errors(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error: ")]


def test_three_problems_named_in_one_run_and_nothing_written(cli, write_spec, tmp_path):
    data = folder(tmp_path)
    soft = labels(3).astype(np.float64) * 255
    soft[4:12, 4:12] = np.linspace(0, 255, 64).reshape(8, 8)  # anti-aliased edge values
    save_image(data / "masks" / "s3.png", soft.astype(np.uint8))
    save_image(data / "images" / "s5.png", np.stack([grey(5)] * 3, axis=2))  # RGB among grey
    save_image(data / "masks" / "s6.png", labels(6, (32, 30)))  # another size
    path = spec(write_spec)
    before = tree(tmp_path)

    result = cli("check", path)
    assert result.exit_code == 2, result.output
    lines = errors(result.output)
    assert len(lines) == 3, result.output
    text = "\n".join(lines)
    assert "s3.png: mask values [" in text
    assert "for soft (anti-aliased) masks set data.mask_threshold (e.g. 128" in text
    assert "s5.png: images have different channel counts: s5 has 3" in text
    assert "data.channels" in text
    assert "s6.png: mask is 32x30 (HxW) but its image s6.png is 32x32" in text
    assert "data.mask_fit" in text
    summary = result.output.strip().splitlines()[-1]
    assert summary.startswith("3 problem(s): ") and "pairs" in summary
    assert tree(tmp_path) == before  # nothing written: no store, no cache

    # train and study create list the same problems, every one, and write nothing either
    for command in (("train",), ("study", "create")):
        refused = cli(*command, path, "--store", tmp_path / "store")
        assert refused.exit_code == 2, refused.output
        assert errors(refused.output) == lines
        assert not (tmp_path / "store").exists()


def test_a_clean_data_set_gets_a_summary(cli, write_spec, tmp_path):
    folder(tmp_path)
    result = cli("check", spec(write_spec, class_names=["cell", "membrane"]))
    assert result.exit_code == 0, result.output
    assert not errors(result.output)
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("ok: ") and "train 4, val 2, test 2 pairs" in line
    assert "classes cell " in line and "membrane " in line and "%" in line
    assert "images (HxW) 32x32 (8)" in line and "channels 1 (8)" in line


def test_one_fix_for_many_files_is_summarised(cli, write_spec, tmp_path):
    data = folder(tmp_path, 10)
    for i in range(10):
        save_image(data / "masks" / f"s{i}.png", labels(i) * 255)
    result = cli("check", spec(write_spec))
    assert result.exit_code == 2
    lines = errors(result.output)
    assert len(lines) == 4, result.output
    assert all("data.mask_map: {255: 1}" in line for line in lines[:3])
    assert lines[3].startswith("error: ... and 7 more masks stored as 0/255: ")


def test_a_design_that_reads_the_data_another_way_is_checked(cli, write_spec, tmp_path):
    data = folder(tmp_path)
    for i in range(8):
        save_image(data / "masks" / f"s{i}.png", labels(i) * 255)
    raw = copy.deepcopy(TINY_SPEC)
    raw["data"] = {"root": "data", "images": "images", "masks": "masks",
                   "mask_map": {255: 1}, "split_ratios": {"val": 0.25, "test": 0.25},
                   "batch_size": 2}
    raw["design"] = {"kind": "one_at_a_time", "components": [
        {"name": "threshold", "set": {"data.mask_map": {}, "data.mask_threshold": 128}},
        {"name": "nothing", "set": {"data.mask_map": {255: 1, 7: 0}}}]}
    raw.pop("search")
    result = cli("check", write_spec(raw))
    assert result.exit_code == 0, result.output
    assert "design configuration 'threshold':" in result.output
    assert result.output.count("ok: ") == 3


def test_list_problems_and_warnings(cli, write_spec, tmp_path):
    folder(tmp_path)
    (tmp_path / "data" / "split.yaml").write_text("train: [0, 1, 2, 3, 4]\ntest: [4, 5, zzz]\n")
    raw = copy.deepcopy(TINY_SPEC)
    base = {"root": "data", "images": "images", "masks": "masks", "batch_size": 2,
            "split_lists": {"train": "split.yaml", "test": "split.yaml"},
            "split_ratios": {"val": 0.4}}
    raw["data"] = base
    result = cli("check", write_spec(raw))
    assert result.exit_code == 2
    lines = errors(result.output)
    # names without an "s" prefix: numbers name no sample here, and s4 is listed twice
    assert any("'0' names no image/mask pair" in line for line in lines), lines
    raw["data"] = base | {"image_suffix": "", "split_overlap": "test"}
    (tmp_path / "data" / "split.yaml").write_text(
        "train: [s0, s1, s2, s3, s4]\ntest: [s4, s5, s6]\n")
    result = cli("check", write_spec(raw))
    assert result.exit_code == 0, result.output
    assert "warning: data.split_overlap: test: sample 's4' is listed for train and test; " \
           "kept in test only" in result.output
    assert "test 3 pairs" in result.output
