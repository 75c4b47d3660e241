"""Real downloads as they come (../shared/data): cwfid and amazon trained for one epoch with
the data sections of docs/data.md (documented options only), and their quirks checked."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from ablate.data import load_data
from ablate.spec import DataSpec
from tests.conftest import REPO, REQUIRE_SERVERS_ENV, SHARED_DATA, TINY_SPEC
from tests.data.test_docs_data import examples

pytestmark = pytest.mark.slow  # decodes real images, trains


def shared_example(name: str) -> dict[str, Any]:
    """The docs' data section ``name`` with its root made absolute; skipped loudly (failed
    under ABLATE_REQUIRE_SERVERS) when the shared data set is not there."""
    data = copy.deepcopy(examples()[name])
    folder = (REPO / data["root"]).resolve()
    if not folder.is_dir():
        message = (f"REAL-DATA TESTS NOT RUN: {folder} not found; the shared data sets are "
                   f"described in {SHARED_DATA}/README.md")
        if os.environ.get(REQUIRE_SERVERS_ENV):
            pytest.fail(message)
        pytest.skip(message)
    data["root"] = str(folder)
    return data


def train_one_epoch(cli: Any, write_spec: Any, store: Path, data: dict[str, Any],
                    **sections: Any) -> dict[str, float]:
    spec = copy.deepcopy(TINY_SPEC) | sections
    # small and quick: the first few images of each split at 64x64
    spec["data"] = data | {"size": [64, 64], "batch_size": 2,
                           "max_images": {"train": 4, "val": 2, "test": 2}}
    result = cli("train", write_spec(spec), "--store", store, "--quiet")
    assert result.exit_code == 0, result.output
    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    return run.data.metrics


def test_cwfid_three_classes_from_colour_annotations(cli, write_spec, store):
    metrics = train_one_epoch(cli, write_spec, store, shared_example("cwfid"),
                              loss={"weights": {"ce": 1.0}}, objective={"metric": "val_miou"})
    assert 0.0 <= metrics["val/miou"] <= 1.0
    for split in ("train", "val", "test"):
        for cls in ("soil", "crop", "weed"):
            assert f"{split}_counts/tp_{cls}" in metrics
    # full-resolution counts: 2 val images of 966x1296, every pixel soil, crop or weed
    assert metrics["val/tp"] + metrics["val/fn"] == 2 * 966 * 1296


def test_cwfid_inverted_vegetation_masks_as_a_binary_target():
    data = shared_example("cwfid vegetation")
    loaded = load_data(DataSpec.model_validate(
        data | {"max_images": {"train": 2, "val": 1, "test": 1}}))
    share = loaded.class_balance()["train"]["positive_ratio"]
    assert 0.02 < share < 0.2  # vegetation is the minority (stored 0), not the soil


def test_amazon_binary_from_geotiff_and_palette_masks(cli, write_spec, store):
    metrics = train_one_epoch(cli, write_spec, store, shared_example("amazon"))
    assert 0.0 <= metrics["val/iou"] <= 1.0
    assert metrics["val/tp"] + metrics["val/fp"] + metrics["val/fn"] + metrics["val/tn"] == (
        2 * 512 * 512)


def test_amazon_quirks_in_one_check(cli, write_spec):
    data = shared_example("amazon")
    spec = write_spec(copy.deepcopy(TINY_SPEC) | {"data": data})
    wide = "Amazon_181.tiff_34.png"
    # mask_fit: crop (the docs' section): fine, with a warning naming the file
    fitted = cli("check", spec)
    assert fitted.exit_code == 0, fitted.output
    assert wide in fitted.output and "cropped" in fitted.output
    assert "train 24, val 15, test 6 pairs" in fitted.output
    assert "classes forest " in fitted.output and "(HxW) 512x512 (45)" in fitted.output
    # the default: an error naming the file and the option
    refused = cli("check", spec, "--set", "data.mask_fit=error")
    assert refused.exit_code == 2
    (line,) = [x for x in refused.output.splitlines() if x.startswith("error:")]
    assert wide in line and "512x515" in line and "data.mask_fit: crop" in line
    # the test folder has no masks: an error that says how to use the data instead
    unlabelled = cli("check", spec, "--set", "data.split_dirs.test={images: test}")
    assert unlabelled.exit_code == 2 and "images without masks cannot be a split" in (
        unlabelled.output)
    itself = cli("check", spec, "--set", "data.split_dirs.test={images: test, masks: test}",
                 "--set", "data.split_ratios=null")
    assert itself.exit_code == 2 and "every image would be its own mask" in itself.output
