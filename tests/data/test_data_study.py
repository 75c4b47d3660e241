"""A study on a data set shaped like the one of issue 12, through the CLI, with documented
options only and no rewriting of the data: a train folder and a separate test folder, soft
(anti-aliased 0..255) masks, grey+alpha PNGs next to RGBA ones, 4:3 images shrunk 5x."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pytest
from mlflow.tracking import MlflowClient
from PIL import Image

from ablate.data import load_data
from ablate.metrics.scores import matrix_scores
from ablate.spec import load_spec
from ablate.tracking import names as keys
from tests.conftest import spec_dict

pytestmark = pytest.mark.slow  # trains, or starts processes or servers

HEIGHT, WIDTH = 120, 160  # 4:3, resized 5x to 24x32


def write_sample(folder: Path, name: str, index: int) -> np.ndarray:
    """A grey+alpha (even index) or RGBA PNG with a bright disc, and its soft mask."""
    rng = np.random.default_rng(index)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    cy, cx = rng.uniform(30, 90), rng.uniform(40, 120)
    distance = np.hypot(yy - cy, xx - cx)
    mask = np.clip((rng.uniform(15, 30) - distance) * 60 + 128, 0, 255).astype(np.uint8)
    grey = np.clip(70 + 0.5 * mask + rng.normal(0, 12, mask.shape), 0, 255).astype(np.uint8)
    alpha = rng.integers(128, 256, mask.shape, dtype=np.uint8)  # not constant: must be dropped
    if index % 2 == 0:
        image = Image.fromarray(np.stack([grey, alpha], axis=2), mode="LA")
    else:
        tint = np.stack([grey, np.clip(grey * 0.9, 0, 255), np.clip(grey * 1.1, 0, 255), alpha],
                        axis=2).astype(np.uint8)
        image = Image.fromarray(tint, mode="RGBA")
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    image.save(folder / "images" / f"{name}.png")
    Image.fromarray(mask).save(folder / "masks" / f"{name}.png")
    return mask


def test_study_on_an_issue_12_data_set(cli, write_spec, store, tmp_path):
    root = tmp_path / "em"
    train_masks = {f"slice_{i:02d}": write_sample(root / "train", f"slice_{i:02d}", i)
                   for i in range(12)}
    test_masks = {f"slice_{i:02d}": write_sample(root / "test", f"slice_{i:02d}", 100 + i)
                  for i in range(4)}  # the test folder reuses the train folder's names
    assert all(len(np.unique(m)) > 20 for m in train_masks.values())  # soft edges
    spec = spec_dict(name="em", trials=1)
    spec["data"] = {
        "task": "binary",
        "root": "em",
        "split_dirs": {"train": {"images": "train/images", "masks": "train/masks"},
                       "test": {"images": "test/images", "masks": "test/masks"}},
        "split_ratios": {"train": 0.75, "val": 0.25},  # val carved from the train folder
        "mask_threshold": 128,
        "channels": 1,
        "size": [24, 32],
        "batch_size": 3,
    }
    path = write_spec(spec)

    result = cli("study", "run", path, "--store", store, "--quiet")
    assert result.exit_code == 0, result.output
    study = optuna.load_study(study_name="em", storage=f"sqlite:///{store / 'optuna.db'}")
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE]

    # The options took effect: val came out of the train folder, test is the test folder,
    # masks are thresholded, the model input is one grey channel.
    data = load_data(load_spec(path).data)
    names = {split: [s.name for s in samples] for split, samples in data.splits.items()}
    assert (len(names["train"]), len(names["val"])) == (9, 3)
    assert sorted(names["train"] + names["val"]) == sorted(train_masks)
    assert names["test"] == sorted(test_masks)
    assert data.in_channels == 1
    for split, masks in (("val", train_masks), ("test", test_masks)):
        for sample in data.splits[split]:
            np.testing.assert_array_equal(sample.mask, masks[sample.name] >= 128)

    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("em")
    [run] = client.search_runs([experiment.experiment_id],
                               filter_string=f"tags.`{keys.TAG_ROLE}` = 'trial'")
    folder = store / "artifacts" / "em" / run.info.run_id / "artifacts"
    matrices = json.loads((folder / keys.MATRICES_ARTIFACT).read_text())
    counts = {split: matrix_scores(np.asarray(m), "binary", ["positive"])
              for split, m in matrices.items()}
    # Counted at the original 120x160, per split; positives are the test masks' values >= 128.
    for split, count in (("train", 9), ("val", 3), ("test", 4)):
        total = sum(counts[split][c] for c in ("tp", "fp", "fn", "tn"))
        assert total == count * HEIGHT * WIDTH, split
    positives = sum(int((m >= 128).sum()) for m in test_masks.values())
    assert counts["test"]["tp"] + counts["test"]["fn"] == positives

    flops = cli("flops", path, "--json")
    assert flops.exit_code == 0, flops.output
    assert json.loads(flops.output)["input"] == [1, 24, 32]
