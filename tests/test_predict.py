"""`ablate predict`: label PNGs at the original size whose mIoU equals the logged figure."""

from __future__ import annotations

import re

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from PIL import Image

from ablate.tracking import names as keys
from tests.conftest import spec_dict

pytestmark = pytest.mark.slow  # trains, or starts processes or servers


def _multiclass_spec() -> dict:
    spec = spec_dict(
        data={"task": "multiclass", "num_classes": 3, "class_names": ["bg", "disc", "box"],
              "synthetic": {"num_images": 12, "channels": 3, "size": 48, "seed": 2},
              "size": [32, 32],  # the model sees 32x32; files and metrics are 48x48
              "palette": [[0, 0, 0], [255, 0, 0], [0, 0, 255]]},
        loss={"weights": {"ce": 1.0}},
        objective={"metric": "val_miou"},
        optim={"epochs": 2, "lr": 0.01},
        eval={"save_weights": True, "tta_flip": True},
    )
    spec["trials"] = 1
    return spec


def test_predict_files_reproduce_the_logged_test_miou(cli, write_spec, store, tmp_path):
    result = cli("study", "run", write_spec(_multiclass_spec()), "--store", store, "--quiet")
    assert result.exit_code == 0, result.output
    out = tmp_path / "pred"
    predicted = cli("predict", "tiny", "--store", store, "--split", "test", "--out", out)
    assert predicted.exit_code == 0, predicted.output
    from_files = float(re.search(r"miou from the written files: ([0-9.]+)",
                                 predicted.output).group(1))

    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny").experiment_id
    (run,) = client.search_runs([experiment], f"tags.`{keys.TAG_ROLE}` = 'trial'")
    assert abs(from_files - run.data.metrics["test/miou"]) < 5e-7

    labels = sorted((out / "labels").glob("*.png"))
    assert len(labels) == 3  # test split: 25% of 12
    first = np.asarray(Image.open(labels[0]))
    assert first.shape == (48, 48) and set(np.unique(first)) <= {0, 1, 2}
    colour = np.asarray(Image.open(out / "color" / labels[0].name))
    assert colour.shape == (48, 48, 3)
    # colours follow the spec's palette
    assert (colour[first == 1] == [255, 0, 0]).all()


def test_predict_needs_saved_weights(cli, write_spec, store, tmp_path):
    spec = _multiclass_spec()
    spec["eval"]["save_weights"] = False
    assert cli("study", "run", write_spec(spec), "--store", store, "--quiet").exit_code == 0
    result = cli("predict", "tiny", "--store", store, "--out", tmp_path / "p")
    assert result.exit_code == 2 and "has no model.pt" in result.output
