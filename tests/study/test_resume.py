"""A trial queued again continues from its last finished epoch, to the same numbers.

A worker is SIGKILLed in the middle of an 8-epoch trial (after its 5th epoch); the next
``study run`` continues that trial from the last state kept (after epoch 5, or 4 when the
5th's write was cut short): its run is tagged
``ablate.resumed_from_epoch``, has a curve point for every epoch, and its final numbers are
bit for bit those of the same study run without interruption (on the CPU). The training
exercises every piece of state: Adam, a cosine schedule after warm-up, EMA, CutMix,
augmentations, early stopping's count.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from ablate.tracking import names as keys
from tests import processes
from tests.study.test_kill_anywhere import kill_spec

pytestmark = pytest.mark.slow  # trains, in separate processes

EPOCHS = 8


def _spec() -> dict:
    spec = kill_spec()
    spec["optim"] = {"epochs": EPOCHS, "lr": 0.01, "scheduler": "cosine", "warmup_epochs": 1,
                     "ema": True, "ema_decay": 0.9, "early_stopping_patience": 20}
    spec["augment"] = {"cutmix": True, "cutmix_p": 0.5, "vflip": True}
    spec["data"]["batch_size"] = 2
    return spec


def _run(path: Path, store: Path, log: Path, fault: str | None = None) -> int:
    env = {"ABLATE_HEARTBEAT": "1", **({"ABLATE_FAULT": fault} if fault else {})}
    return processes.run(["study", "run", path, "--store", store, "--quiet"], log,
                         timeout=300, **env)


def _complete_runs(store: Path) -> dict[str, object]:
    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny").experiment_id
    runs = client.search_runs([experiment], f"tags.`{keys.TAG_ROLE}` = 'trial' and "
                                            f"tags.`{keys.TAG_STATE}` = 'COMPLETE'")
    return {r.data.tags[keys.TAG_CONFIG]: r for r in runs}


def _curve(store: Path, run_id: str, key: str) -> list[tuple[int, float]]:
    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def test_a_trial_killed_mid_way_resumes_from_its_last_epoch_to_the_same_numbers(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(_spec()))
    plain, resumed = tmp_path / "plain", tmp_path / "resumed"
    log = tmp_path / "out.log"
    assert _run(path, plain, log) == 0, log.read_text()
    # killed right after the 5th epoch of the first trial was logged (its state kept)
    assert _run(path, resumed, log, "mid_log:5") == -signal.SIGKILL, log.read_text()
    assert list((resumed / "cache" / "resume" / "tiny").glob("*.pt"))  # the kept state
    assert _run(path, resumed, log) == 0, log.read_text()

    expected, got = _complete_runs(plain), _complete_runs(resumed)
    assert set(expected) == set(got) == {"baseline", "hflip"}
    again = got["baseline"]
    # killed while the 5th epoch's state may still be written: the 4th or the 5th is kept
    assert again.data.tags[keys.TAG_RESUMED_FROM] in ("4", "5")
    assert keys.TAG_RESUMED_FROM not in expected["baseline"].data.tags
    for label in expected:
        measured = {keys.metric_key(name) for name in keys.MEASURED}
        want = {k: v for k, v in expected[label].data.metrics.items() if k not in measured}
        have = {k: v for k, v in got[label].data.metrics.items() if k not in measured}
        assert have == want, label  # bit for bit
    for key in ("epoch/val_loss", "epoch/train_loss", "epoch/lr"):
        curve = _curve(resumed, again.info.run_id, key)
        assert len(curve) == EPOCHS
        assert curve == _curve(plain, expected["baseline"].info.run_id, key)
    # a finished trial's state is deleted
    assert not list((resumed / "cache" / "resume" / "tiny").glob("*.pt"))
