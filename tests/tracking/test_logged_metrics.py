"""The README's "What a run logs" is what runs log: a binary and a multi-class run are trained
and their metric keys compared with the section, both ways; the artifact layouts that
docs/data.md states (matrix orientation, per-image count columns) and the epoch numbering are
checked on the same runs."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from ablate.naming import SPLITS, slug
from ablate.tracking import names as keys
from tests.conftest import REPO, spec_dict

pytestmark = pytest.mark.slow  # trains

KINDS = ("every run", "binary runs", "multi-class runs", "runs on CUDA")


def readme_metrics() -> dict[str, list[str]]:
    """The metric names the README's "What a run logs" lists, by kind of run."""
    text = (REPO / "README.md").read_text()
    match = re.search(r"^## What a run logs\n(.*?)^## ", text, re.S | re.M)
    assert match, "README.md has no '## What a run logs' section"
    bullets = re.split(r"^- ", match.group(1), flags=re.M)[1:]
    found: dict[str, list[str]] = {}
    for bullet in bullets:
        kind, _, body = bullet.partition(":")
        assert kind in KINDS, f"unknown bullet '{kind}' in 'What a run logs'"
        found[kind] = [name for name in re.findall(r"`([^`]+)`", body) if "/" in name]
    assert set(found) == set(KINDS)
    return found


def expand(names: list[str], classes: list[str], objective: str) -> set[str]:
    out = set()
    for name in names:
        for split in SPLITS if "<split>" in name else [""]:
            for cls in classes if "<class>" in name else [""]:
                out.add(name.replace("<split>", split).replace("<class>", slug(cls))
                        .replace("<objective>", objective))
    return out


def train(cli: Any, write_spec: Any, store: Path, **sections: Any) -> Any:
    result = cli("train", write_spec(spec_dict(**sections)), "--store", store)
    assert result.exit_code == 0, result.output
    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny")
    (run,) = client.search_runs([experiment.experiment_id])
    return client, run, result.output


def artifact(store: Path, run: Any, name: str) -> bytes:
    return (store / "artifacts" / "tiny" / run.info.run_id / "artifacts" / name).read_bytes()


def test_binary_run_logs_what_the_readme_lists(cli, write_spec, store):
    listed = readme_metrics()
    client, run, output = train(cli, write_spec, store, optim={"lr": 0.01, "epochs": 2})
    metrics = run.data.metrics
    expected = expand(listed["every run"] + listed["binary runs"], [], "val_iou")
    assert set(metrics) == expected, (sorted(set(metrics) - expected),
                                      sorted(expected - set(metrics)))
    # epochs are numbered from 1: the console's "epoch 2/2" is step 2, best_epoch one of them
    assert "epoch 1/2" in output and "epoch 2/2" in output
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "epoch/train_loss")]
    assert sorted(steps) == [1, 2]
    assert metrics["run/best_epoch"] in (1.0, 2.0) and metrics["run/epochs_run"] == 2
    # confusion_matrices.json: rows are the target, columns the prediction
    matrix = json.loads(artifact(store, run, keys.MATRICES_ARTIFACT))["val"]
    assert matrix[1][1] == metrics["val/tp"] and matrix[0][0] == metrics["val/tn"]
    assert matrix[0][1] == metrics["val/fp"] and matrix[1][0] == metrics["val/fn"]
    # image_counts.npz: (images, classes, [TP, FP, FN, TN]) summing to the split's counts
    with np.load(io.BytesIO(artifact(store, run, keys.IMAGE_COUNTS_ARTIFACT))) as npz:
        counts = npz["val_counts"]
        assert counts.shape[1:] == (1, 4) and list(npz["classes"]) == ["foreground"]
        assert len(npz["val_names"]) == counts.shape[0]
        summed = counts.sum(axis=(0, 1))
    assert list(summed) == [metrics[f"val/{c}"] for c in ("tp", "fp", "fn", "tn")]


def test_multiclass_run_logs_what_the_readme_lists(cli, write_spec, store):
    listed = readme_metrics()
    classes = ["bg", "disc", "box"]
    _, run, _ = train(cli, write_spec, store,
                      data={"task": "multiclass", "num_classes": 3, "class_names": classes},
                      loss={"weights": {"ce": 1.0}}, objective={"metric": "val_miou"})
    metrics = run.data.metrics
    expected = expand(listed["every run"] + listed["multi-class runs"], classes, "val_miou")
    assert set(metrics) == expected, (sorted(set(metrics) - expected),
                                      sorted(expected - set(metrics)))
    assert not expand(listed["runs on CUDA"], classes, "val_miou") & set(metrics)  # on CPU
    # the split's counts are the sums of the per-class ones (tn: pixels of neither)
    for count in ("tp", "fp", "fn"):
        per_class = sum(metrics[f"test_counts/{count}_{c}"] for c in classes)
        assert per_class == metrics[f"test/{count}"]
    matrix = np.array(json.loads(artifact(store, run, keys.MATRICES_ARTIFACT))["test"])
    assert metrics["test_counts/fn_disc"] == matrix[1].sum() - matrix[1, 1]  # row: target
    assert metrics["test_counts/fp_disc"] == matrix[:, 1].sum() - matrix[1, 1]
