"""docs/data.md cannot drift from the code: its example data sections are valid specs whose
files pair and split as their comments say (no decoding: fast). Every data key with its real
default is in docs/spec.md, generated from the models (tests/spec/test_spec_reference.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from ablate.data.pairing import natural_key
from ablate.data.problems import Problems
from ablate.data.splits import folder_splits
from ablate.spec import DataSpec
from tests.conftest import REPO, SHARED_DATA

DOC = REPO / "docs" / "data.md"


def examples() -> dict[str, dict[str, Any]]:
    """The YAML blocks of docs/data.md, by the first word of their leading comment."""
    out = {}
    for block in re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S):
        first = block.splitlines()[0]
        assert first.startswith("# "), block
        out[first[2:].split(":")[0]] = yaml.safe_load(block)["data"]
    return out


def data_spec(name: str) -> DataSpec:
    data = examples()[name]
    folder = REPO / data["root"]
    if not folder.is_dir():
        pytest.skip(f"SHARED DATA MISSING: {folder} (see {SHARED_DATA}/README.md)")
    return DataSpec.model_validate(data | {"root": str(folder)})


def split_names(spec: DataSpec) -> tuple[dict[str, list[str]], Problems]:
    problems = Problems(echo=False)
    assert spec.root is not None
    found = folder_splits(Path(spec.root), spec, problems)
    return {s: [p.name for p in pairs] for s, pairs in found.items()}, problems


def test_the_examples_are_the_ones_tested() -> None:
    assert {"cwfid", "cwfid vegetation", "amazon", "membrane"} <= set(examples())
    for data in examples().values():  # each is a valid data section of a spec
        DataSpec.model_validate(data)


def test_cwfid_example_pairs_by_suffix_and_splits_by_the_authors_file() -> None:
    names, problems = split_names(data_spec("cwfid"))
    assert not problems
    # image 28 is in both lists: kept in test only (split_overlap: test), with a warning
    assert "028" in names["test"] and "028" not in names["train"] + names["val"]
    assert any("'028'" in w and "kept in test only" for w in problems.warnings)
    assert len(names["test"]) == 21 and len(names["train"]) + len(names["val"]) == 39
    assert len(names["val"]) == 8  # 0.2 of the train list
    assert names["test"][:3] == ["001", "003", "004"]


def test_cwfid_split_overlap_is_an_error_by_default() -> None:
    spec = data_spec("cwfid").model_copy(update={"split_overlap": "error"})
    _, problems = split_names(spec)
    (line,) = problems.lines()
    assert "'028' is listed for both train and test" in line
    assert "train_test_split.yaml (train)" in line and "data.split_overlap" in line


def test_amazon_example_pairs_two_dot_names() -> None:
    names, problems = split_names(data_spec("amazon"))
    assert not problems
    assert (len(names["train"]), len(names["val"]), len(names["test"])) == (24, 15, 6)
    assert "Amazon_1110.tiff_25" in names["train"] + names["test"]


def test_membrane_example_carves_contiguous_blocks() -> None:
    names, problems = split_names(data_spec("membrane"))
    assert names == {"train": [str(i) for i in range(17)],
                     "val": [str(i) for i in range(18, 23)],
                     "test": [str(i) for i in range(24, 30)]}
    assert problems.warnings == ["data.carve_gap: 2 sample(s) left out between the carved "
                                 "blocks"]
    assert sorted(names["train"], key=natural_key) == names["train"]
