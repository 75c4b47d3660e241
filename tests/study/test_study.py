"""End to end: a 2-trial study on synthetic data, real Optuna and MLflow on temporary SQLite."""

from __future__ import annotations

import json
import re
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from ablate.tracking import names as keys
from tests.conftest import artifacts_of, spec_dict

pytestmark = pytest.mark.slow  # trains, or starts processes or servers


def _runs(store: Path, role: str) -> list:
    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny")
    return client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`{keys.TAG_ROLE}` = '{role}'"
    )


def test_two_trial_study_end_to_end(cli, write_spec, store, tmp_path):
    spec = write_spec()
    result = cli("study", "run", spec, "--store", store, "--quiet")
    assert result.exit_code == 0, result.output
    assert "best configuration: trial-" in result.output

    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{store / 'optuna.db'}")
    states = [t.state for t in study.trials]
    assert states == [optuna.trial.TrialState.COMPLETE] * 2

    parents, children = _runs(store, "parent"), _runs(store, "trial")
    assert len(parents) == 1 and len(children) == 2
    for run in children:
        assert run.data.tags[keys.TAG_PARENT] == parents[0].info.run_id
        assert run.data.tags[keys.TAG_STATE] == "COMPLETE"
        assert run.info.status == "FINISHED"
        metrics = run.data.metrics
        for split in ("train", "val", "test"):
            for name in ("iou", "f1", "precision", "recall", "loss"):
                assert f"{split}/{name}" in metrics
        # the confusion counts are metrics (issue 21); the class balance is an artifact
        assert {"val/tp", "val/fp", "val/fn", "val/tn"} <= set(metrics)
        assert not {"val/pixels", "val/positive_ratio"} & set(metrics)
        folder = store / "artifacts" / "tiny" / run.info.run_id / "artifacts"
        matrices = json.loads((folder / keys.MATRICES_ARTIFACT).read_text())
        balance = json.loads((folder / keys.BALANCE_ARTIFACT).read_text())
        # the counts of a split add up to its pixels: 3 images of 32x32 in val
        assert sum(map(sum, matrices["val"])) == balance["val"]["pixels"] == 3 * 32 * 32
        assert balance["val"]["images"] == 3
        # final numbers are grouped by split / model / run (one chart section each in the UI)
        assert metrics["model/params"] > 0 and metrics["model/gflops"] > 0
        assert abs(metrics["model/efficiency"]
                   - 100 * metrics["val/iou"] / metrics["model/gflops"]) < 1e-6
        assert {"run/train_seconds", "run/best_epoch", "model/latency_ms"} <= set(metrics)
        # the threshold scan is one artifact, not dozens of metrics
        assert not any("_thr" in key for key in metrics)
        assert run.data.params["optim.lr"] == str(study.trials[int(run.data.tags[keys.TAG_TRIAL])]
                                                  .params["optim.lr"])
        client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
        history = client.get_metric_history(run.info.run_id, keys.EPOCH_PREFIX + "train_loss")
        assert len(history) == 1
        artifacts = artifacts_of(store, run.info.run_id)
        assert {"config.yaml", "curves.png", "gallery.png", "thresholds.json"} <= artifacts

    # the budget is met: a second run has nothing to do
    again = cli("study", "run", "tiny", "--store", store, "--quiet")
    assert again.exit_code == 0 and "nothing to run" in again.output

    report = cli("report", "tiny", "--store", store, "--out", tmp_path / "r.md")
    assert report.exit_code == 0, report.output
    text = (tmp_path / "r.md").read_text()
    for heading in ("## Ablation table", "## Efficiency", "counts per split"):
        assert heading in text
    # the counts per split come from the runs' confusion matrices (not metrics any more)
    assert re.search(r"^\| val +\| +[\d,]+ \| +[\d,]+ \| +[\d,]+ \| +[\d,]+ \|", text, re.M)
    assert "one multiply-add counts as one FLOP" in text


def test_multiclass_train_logs_per_class_metrics(cli, write_spec, store):
    spec = write_spec(spec_dict(
        data={"task": "multiclass", "num_classes": 3, "class_names": ["bg", "disc", "box"]},
        loss={"weights": {"ce": 1.0, "dice": 0.5}},
        objective={"metric": "val_miou"},
    ))
    result = cli("train", spec, "--store", store, "--quiet")
    assert result.exit_code == 0, result.output
    run = _runs(store, "train")[0]
    for name in ("val/miou", "val/iou_disc", "test/accuracy", "train/mf1"):
        assert name in run.data.metrics
    # counts are metrics: summed over classes beside the scores, per class in a section of
    # their own; per-class F1 lives in the confusion matrices artifact, class fractions in the
    # class balance, not in the charts
    assert {"train/tp", "train/tn", "train_counts/tp_bg", "val_counts/fn_box"} <= set(
        run.data.metrics)
    assert not {"val/f1_box", "train/tp_bg", "val/frac_disc"} & set(run.data.metrics)


def test_study_list_and_show(cli, write_spec, store):
    spec = write_spec(spec_dict(trials=1))
    assert cli("study", "create", spec, "--store", store).exit_code == 0
    assert cli("study", "run", "tiny", "--store", store, "--quiet").exit_code == 0
    listing = cli("study", "list", "--store", store)
    assert "tiny" in listing.output
    shown = cli("study", "show", "tiny", "--store", store)
    assert "COMPLETE" in shown.output and "optim.lr" in shown.output


def test_epoch_lines_and_settings_that_did_not_apply(cli, write_spec, store):
    """Output captured (not a tty): one line per epoch with trial, epoch i/n, both losses, the
    objective and the elapsed seconds; --quiet leaves them out. CUDA-only settings on the CPU
    are logged as what applied."""
    # optim.amp written in the spec, optim.channels_last left at its default (true)
    spec = write_spec(spec_dict(trials=2, optim={"lr": 0.01, "epochs": 2, "amp": True}))
    result = cli("study", "run", spec, "--store", store)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if " epoch " in line]
    assert len(lines) == 4, result.output
    for i, line in enumerate(lines):
        head = rf"trial {i // 2} epoch {i % 2 + 1}/2: "
        assert re.fullmatch(head + r"train_loss \d+\.\d{4} val_loss \d+\.\d{4} "
                            r"val_iou \d+\.\d{4} \(\d+\.\d s\)", line), line
    quiet = cli("study", "run", spec, "--store", store, "-n", "1", "--quiet")
    assert quiet.exit_code == 0 and " epoch " not in quiet.output

    # on the CPU, optim.amp and optim.channels_last do not apply: both logged as false with
    # the reason as a tag; the one the spec wrote is said once per worker, the default is not
    assert result.output.count("warning: optim.amp does not apply (CPU: mixed precision") == 1
    assert "optim.channels_last does not apply" not in result.output
    for run in _runs(store, "trial"):
        assert run.data.params["optim.amp"] == run.data.params["optim.channels_last"] == "False"
        assert run.data.tags[keys.ignored_tag("optim.amp")] == \
            "CPU: mixed precision is CUDA-only"
