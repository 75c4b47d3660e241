"""`ablate predict`: label PNGs at the original size whose mIoU equals the logged figure."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from PIL import Image

from ablate.tracking import names as keys
from tests.conftest import artifacts_of, spec_dict

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
        eval={"tta_flip": True},  # eval.save_weights: best (the default)
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
    spec["eval"]["save_weights"] = False  # the former flag: false = none
    assert cli("study", "run", write_spec(spec), "--store", store, "--quiet").exit_code == 0
    result = cli("predict", "tiny", "--store", store, "--out", tmp_path / "p")
    assert result.exit_code == 2 and "has no model.pt" in result.output
    assert "eval.save_weights: all" in result.output


def test_best_keeps_only_the_representative_runs_weights(cli, write_spec, store, tmp_path):
    """save_weights: best (default): after the study each configuration keeps model.pt on the
    run that represents it (the worse of 2 repeats) and nowhere else; predict uses it."""
    spec = spec_dict(design={"kind": "one_at_a_time", "repeats": 2,
                             "components": [{"name": "fast", "set": {"optim.lr": 0.02}}]})
    del spec["search"]
    result = cli("study", "run", write_spec(spec), "--store", store, "--quiet")
    assert result.exit_code == 0, result.output
    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny").experiment_id
    runs = client.search_runs([experiment], f"tags.`{keys.TAG_ROLE}` = 'trial'")
    assert len(runs) == 4
    kept = {}
    for config in ("baseline", "fast"):
        mine = [r for r in runs if r.data.tags[keys.TAG_CONFIG] == config]
        worse = min(mine, key=lambda r: (r.data.metrics["val/iou"],
                                         -int(r.data.tags[keys.TAG_REPEAT])))
        for run in mine:
            has = "model.pt" in artifacts_of(store, run.info.run_id)
            assert has == (run is worse), config
            assert (keys.TAG_WEIGHTS in run.data.tags) == (run is not worse)
        kept[config] = worse.info.run_id
    predicted = cli("predict", "tiny", "--store", store, "--out", tmp_path / "p")
    assert predicted.exit_code == 0, predicted.output
    assert json.loads((tmp_path / "p" / "metrics.json").read_text())["run_id"] in kept.values()
    # a run whose weights were deleted says why
    other = next(r for r in runs if r.info.run_id not in kept.values())
    again = cli("predict", other.info.run_id, "--store", store, "--out", tmp_path / "q")
    assert again.exit_code == 2 and "not the run representing" in again.output
