"""Failure isolation inside a study: NaN, out of memory and other exceptions end one trial only.

Faults are injected into the real training (a loss that misbehaves for one configuration);
Optuna and MLflow are real, on temporary SQLite files.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import torch
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

import ablate.training.train
from ablate.tracking import names as keys
from tests.conftest import artifacts_of, spec_dict

pytestmark = pytest.mark.slow  # trains, or starts processes or servers

# Each component sets a marker value that the injected loss recognises.
NAN_LR, BOOM_DECAY = 0.0123, 0.0077


class FaultyLoss(torch.nn.Module):
    """Wraps the real loss: NaN at the second step, OOM for batches of 4+, or an exception."""

    def __init__(self, inner: torch.nn.Module, config_probe: dict):
        super().__init__()
        self.inner = inner
        self.probe = config_probe
        self.calls = 0

    def forward(self, logits, target):
        total, terms = self.inner(logits, target)
        if not torch.is_grad_enabled():  # evaluation passes stay clean
            return total, terms
        self.calls += 1
        if self.probe["lr"] == NAN_LR and self.calls == 2:
            return total * float("nan"), terms
        if self.probe["oom"] and logits.shape[0] >= 4:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        if self.probe["weight_decay"] == BOOM_DECAY:
            raise ValueError("boom")
        return total, terms


@pytest.fixture
def faulty_training(monkeypatch):
    real_runner = ablate.training.train.Engine

    class Runner(real_runner):
        def __init__(self, config, data, device):
            super().__init__(config, data, device)
            probe = {"lr": config.optim.lr, "weight_decay": config.optim.weight_decay,
                     "oom": config.augment.vflip}
            self.loss_fn = FaultyLoss(self.loss_fn, probe)

    monkeypatch.setattr(ablate.training.train, "Engine", Runner)


def _design(on_oom: str) -> dict:
    spec = spec_dict(
        on_oom=on_oom,
        data={"batch_size": 4, "synthetic": {"num_images": 16, "channels": 3, "size": 32,
                                             "seed": 1}},
        optim={"lr": 0.01, "epochs": 2},
        design={"kind": "one_at_a_time", "components": [
            {"name": "nan", "set": {"optim.lr": NAN_LR}},
            {"name": "oom", "set": {"augment.vflip": True}},
            {"name": "boom", "set": {"optim.weight_decay": BOOM_DECAY}},
        ]},
    )
    del spec["search"]
    return spec


def _trials_by_config(store: Path) -> dict[str, optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{store / 'optuna.db'}")
    return {t.params["config"]: t for t in study.trials}


def _runs_by_config(store: Path) -> dict[str, list]:
    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny").experiment_id
    runs: dict[str, list] = {}
    for run in client.search_runs([experiment], f"tags.`{keys.TAG_ROLE}` = 'trial'"):
        runs.setdefault(run.data.tags[keys.TAG_CONFIG], []).append(run)
    return runs


def test_nan_oom_and_exceptions_fail_one_trial_each(cli, write_spec, store, faulty_training):
    result = cli("study", "run", write_spec(_design("fail")), "--store", store, "--quiet")
    assert result.exit_code == 0, result.output
    trials = _trials_by_config(store)
    assert trials["baseline"].state == TrialState.COMPLETE
    assert trials["nan"].state == TrialState.FAIL
    assert trials["nan"].user_attrs["fail_reason"] == "non-finite loss at epoch 1, step 1"
    assert trials["oom"].user_attrs["fail_reason"] == "out of memory at batch size 4"
    assert trials["boom"].user_attrs["fail_reason"] == "ValueError: boom"

    runs = _runs_by_config(store)
    for label, reason in [("nan", "non-finite loss"), ("oom", "out of memory"),
                          ("boom", "ValueError: boom")]:
        (run,) = runs[label]
        assert run.info.status == "FAILED"
        assert run.data.tags[keys.TAG_STATE] == "FAIL"
        assert reason in run.data.tags[keys.TAG_REASON]
    artifacts = artifacts_of(store, runs["boom"][0].info.run_id)
    assert "traceback.txt" in artifacts
    assert runs["baseline"][0].data.tags[keys.TAG_STATE] == "COMPLETE"


def test_out_of_memory_is_tried_again_as_a_new_trial_with_half_the_batch(
        cli, write_spec, store, faulty_training):
    spec = _design("halve_batch")
    spec["design"]["components"] = [spec["design"]["components"][1]]  # the OOM one only
    spec["max_failures"] = 1  # the attempt tried again is not a failed configuration
    result = cli("study", "run", write_spec(spec), "--store", store, "--quiet")
    assert result.exit_code == 0, result.output
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{store / 'optuna.db'}")
    oom = [t for t in study.trials if t.params.get("config") == "oom"]
    assert [t.state for t in oom] == [TrialState.FAIL, TrialState.COMPLETE]
    first, retry = oom
    assert first.user_attrs["fail_reason"] == ("out of memory at batch size 4; queued again as "
                                               "a new trial with batch size 2 x 2")
    assert retry.user_attrs["repeat"] == first.user_attrs["repeat"]
    assert "fail_reason" not in retry.user_attrs
    # a fresh attempt: the pruner sees only the retry's own epochs
    assert sorted(retry.intermediate_values) == [1, 2]

    runs = sorted(_runs_by_config(store)["oom"], key=lambda r: r.info.start_time)
    assert [r.data.tags[keys.TAG_STATE] for r in runs] == ["FAIL", "COMPLETE"]
    again = runs[1]
    assert again.data.params["data.batch_size"] == "2"
    assert again.data.params["optim.grad_accum"] == "2"
    assert again.data.tags["ablate.oom_retry_batch_size"] == "2"
    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    steps = [m.step for m in client.get_metric_history(again.info.run_id, "epoch/val_loss")]
    assert sorted(steps) == [1, 2]  # one point per epoch, from this run alone


def test_max_failures_stops_the_study(cli, write_spec, store, faulty_training):
    spec = spec_dict(trials=6, max_failures=2, optim={"weight_decay": BOOM_DECAY})
    result = cli("study", "run", write_spec(spec), "--store", store, "--quiet")
    assert result.exit_code == 1
    assert "stopping: 2 trials failed (max_failures=2)" in result.output
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{store / 'optuna.db'}")
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.FAIL]


def test_divergence_fails_the_trial_with_one_line(cli, write_spec, store):
    # lr 1e9 drives the loss to ~1e18 without NaN: without the bound it would be COMPLETE.
    spec = spec_dict(design={"kind": "one_at_a_time", "components": [
        {"name": "huge", "set": {"optim.lr": 1e9}}]})
    del spec["search"]
    result = cli("study", "run", write_spec(spec), "--store", store, "--quiet")
    assert result.exit_code == 0, result.output
    trials = _trials_by_config(store)
    assert trials["baseline"].state == TrialState.COMPLETE
    assert trials["huge"].state == TrialState.FAIL
    reason = trials["huge"].user_attrs["fail_reason"]
    assert reason.startswith("loss diverged at epoch 1, step ") and "divergence_factor" in reason
    # one line for the failed trial on the terminal, the traceback in the log and artifact
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if "huge" in line]
    assert len(lines) == 1 and "FAIL (loss diverged" in lines[0], result.output
    log = store / "logs" / "tiny.log"
    assert "traceback in " + str(log) in lines[0]
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "TrainingError" in text
    (run,) = _runs_by_config(store)["huge"]
    assert run.info.status == "FAILED" and run.data.tags[keys.TAG_REASON] == reason
    assert "traceback.txt" in artifacts_of(store, run.info.run_id)


def test_divergence_bound_can_be_turned_off(cli, write_spec, store):
    spec = spec_dict(trials=1, optim={"lr": 1e9, "divergence_factor": None})
    del spec["search"]
    result = cli("study", "run", write_spec(spec), "--store", store, "--quiet")
    assert result.exit_code == 0, result.output
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{store / 'optuna.db'}")
    # no bound: the run "completes" with a meaningless model (what the bound prevents)
    assert "loss diverged" not in study.trials[0].user_attrs.get("fail_reason", "")
