"""Results that reproduce and runs that can be compared: batches independent of the worker
count, data fingerprints, the environment, ``ablate diff`` and ``ablate rerun``."""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient

from ablate.data import load_data, make_loaders
from ablate.runs import environment
from ablate.spec import spec_from_dict
from ablate.stores import resolve_stores
from ablate.tracking import Tracker, tracked_run
from ablate.tracking import names as keys
from tests.conftest import save_image, spec_dict

pytestmark = pytest.mark.slow  # trains, or starts processes or servers

AUGMENT = {"hflip": True, "vflip": True, "rot90": True, "shift_scale_rotate": True,
           "gauss_noise": True, "random_resized_crop": True, "cutmix": True}


def _spec(**sections: Any) -> dict[str, Any]:
    spec = spec_dict(**{"augment": AUGMENT, "optim": {"epochs": 2}, **sections})
    spec.pop("search")
    return spec


def _train(cli: Any, spec: Path, store: Path, *more: str) -> str:
    result = cli("train", spec, "--store", store, "--quiet", *more)
    assert result.exit_code == 0, result.output
    return result.output.split("run ", 1)[1].split(":", 1)[0]


def _curves(store: Path, run_id: str) -> dict[str, list[float]]:
    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    keys_ = [k for k in client.get_run(run_id).data.metrics if k.startswith(keys.EPOCH_PREFIX)]
    return {k: [m.value for m in sorted(client.get_metric_history(run_id, k),
                                        key=lambda m: m.step)] for k in keys_}


def _snapshot(store: Path) -> dict[str, str]:
    """Every file of a store by content hash (SQLite write-ahead logs folded in first)."""
    for db in store.glob("*.db"):
        with contextlib.closing(sqlite3.connect(db)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return {str(p.relative_to(store)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(store.rglob("*")) if p.is_file() and not p.name.endswith(
                ("-wal", "-shm", ".lock"))}


def _one_error_line(result: Any, *needles: str) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# ----------------------------------------------------------------------- worker independence


def _batches(workers: int, epochs: int = 2) -> list[tuple[torch.Tensor, torch.Tensor]]:
    config = spec_from_dict(_spec(data={"num_workers": workers})).resolve()
    loader = make_loaders(load_data(config.data), config, seed=3)["train"]
    return [batch for _ in range(epochs) for batch in loader]


def test_batches_do_not_depend_on_the_worker_count():
    none, two = _batches(0), _batches(2)
    assert len(none) == len(two) == 6
    for (image_a, mask_a), (image_b, mask_b) in zip(none, two, strict=True):
        assert torch.equal(image_a, image_b) and torch.equal(mask_a, mask_b)
    # and the randomness is real: epochs differ, and so do samples within a batch
    assert not torch.equal(none[0][0], none[3][0])
    assert not torch.equal(none[0][0][0], none[0][0][1])


def test_equal_probability_flips_are_drawn_independently():
    # one shared random state per sample: hflip and vflip (equal p) do not fire together
    spec = _spec(augment={"hflip": True, "vflip": True, "p": 0.5},
                 data={"synthetic": {"num_images": 40, "channels": 1, "size": 16, "seed": 0},
                       "split_ratios": {"train": 0.8, "val": 0.1, "test": 0.1},
                       "normalize": "none"})
    config = spec_from_dict(spec).resolve()
    data = load_data(config.data)
    dataset = make_loaders(data, config, seed=0)["train"].dataset
    kinds = set()
    for index in range(len(dataset)):
        image = dataset[(0, index)][0][0].numpy()
        raw = data.splits["train"][index].image[:, :, 0].astype(np.float32) / 255
        kinds.add((np.allclose(image, raw[:, ::-1]) or np.allclose(image, raw[::-1, ::-1]),
                   np.allclose(image, raw[::-1]) or np.allclose(image, raw[::-1, ::-1])))
    assert {(True, False), (False, True)} <= kinds, kinds


@pytest.fixture(scope="module")
def trained(tmp_path_factory, request):
    """A store with two `ablate train` runs of one spec (augmentation and CutMix on), with
    data.num_workers 0 and 2; returns (spec path, store, run id 0 workers, run id 2 workers)."""
    from typer.testing import CliRunner

    from ablate.cli import app
    from ablate.testing.fixtures import sqlite_store

    folder = tmp_path_factory.mktemp("trained")
    store = folder / "store"
    sqlite_store(store)
    spec = folder / "spec.yaml"
    spec.write_text(yaml.safe_dump(_spec()))

    def cli(*args: Any) -> Any:
        return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)

    with pytest.MonkeyPatch.context() as env:
        for var in ("ABLATE_STORAGE", "MLFLOW_TRACKING_URI", "ABLATE_STORE"):
            env.delenv(var, raising=False)
        ids = [_train(cli, spec, store, "--set", f"data.num_workers={n}") for n in (0, 2)]
    return spec, store, ids[0], ids[1]


def test_train_cli_logs_identical_numbers_for_0_and_2_workers(trained, cli):
    _, store, none, two = trained
    tracker = Tracker(resolve_stores(store), write=False)
    a, b = tracked_run(tracker, none), tracked_run(tracker, two)
    compared = [n for n in a.metrics if n not in keys.MEASURED]
    assert {"val_iou", "test_iou", "train_iou", "val_loss", "train_loss"} <= set(compared)
    assert {n: a.metrics[n] for n in compared} == {n: b.metrics[n] for n in compared}
    assert _curves(store, none) == _curves(store, two)
    # ablate diff: the worker count is the only configuration key that differs
    shown = cli("diff", none, two, "--store", store, "--json")
    assert shown.exit_code == 0, shown.output
    diff = json.loads(shown.output)
    assert [row["key"] for row in diff["config"]] == ["data.num_workers"]
    assert all(row["same"] for row in diff["metrics"] if not row["measured"])
    assert all(row["same"] for row in diff["data"]) and len(diff["data"]) == 3
    assert diff["curves"] == {"identical": True, "first_difference": None}


def test_run_records_its_data_and_environment(trained):
    _, store, run_id, _ = trained
    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    run = client.get_run(run_id)
    inputs = {i.tags[0].value: i.dataset for i in run.inputs.dataset_inputs}
    assert set(inputs) == {"train", "val", "test"}
    for split, dataset in inputs.items():
        assert dataset.digest == run.data.tags[keys.data_tag(split)]
        assert dataset.name == f"synthetic/{split}"
        profile = json.loads(dataset.profile)
        assert profile["images"] == {"train": 6, "val": 3, "test": 3}[split]
        assert sum(profile["class_balance"].values()) == pytest.approx(1.0)
    # class fractions live in the profiles, not among the metrics
    assert not [k for k in run.data.metrics if "frac_" in k]
    env = {k.removeprefix(keys.ENV_PREFIX): v for k, v in run.data.tags.items()
           if k.startswith(keys.ENV_PREFIX)}
    assert env["torch"] == torch.__version__.split("+")[0] or env["torch"] == torch.__version__
    assert env["device"].startswith("cpu")
    for key in ("python", "torchvision", "smp", "timm", "albumentations", "optuna", "mlflow",
                "ablate", "spec_path", "git_commit", "git_dirty"):
        assert env.get(key), key
    assert env["git_commit"] == environment.NOT_GIT  # the spec lies in a temporary folder


def test_rerun_of_a_synthetic_run_is_bit_identical(trained, cli):
    _, store, run_id, _ = trained
    result = cli("rerun", run_id, "--check", "--store", store, "--quiet")
    assert result.exit_code == 0, result.output
    assert "metrics: identical" in result.output and "data: same digests" in result.output
    assert "epoch curves: identical (2 epochs)" in result.output
    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    again = result.output.split("run ", 2)[2].split()[0]
    tags = client.get_run(again).data.tags
    assert tags[keys.TAG_ROLE] == keys.ROLE_RERUN and tags[keys.TAG_RERUN_OF] == run_id
    assert _curves(store, again) == _curves(store, run_id)


# -------------------------------------------------------------------------- folder data


def _folder_data(root: Path) -> None:
    rng = np.random.default_rng(0)
    for index in range(12):
        image = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
        mask = np.zeros((32, 32), dtype=np.uint8)
        mask[8 + index % 8: 20 + index % 8, 6:22] = 255
        image[mask > 0] //= 3
        save_image(root / "images" / f"img_{index:02d}.png", image)
        save_image(root / "masks" / f"img_{index:02d}.png", mask)


def test_folder_data_rerun_digest_and_diff(tmp_path, cli, store):
    root = tmp_path / "data"
    _folder_data(root)
    spec = _spec(data={"root": str(root), "images": "images", "masks": "masks",
                       "mask_map": {255: 1}, "batch_size": 2,
                       "split_ratios": {"train": 0.5, "val": 0.25, "test": 0.25}})
    spec["data"].pop("synthetic")
    path = tmp_path / "folder.yaml"
    path.write_text(yaml.safe_dump(spec))
    first = _train(cli, path, store)
    # a rerun on the same machine and files reproduces every number
    checked = cli("rerun", first, "--check", "--store", store, "--quiet")
    assert checked.exit_code == 0, checked.output
    assert "metrics: identical" in checked.output
    # one mask pixel of a val image changes the val digest, and only that one
    data = load_data(spec_from_dict(spec).resolve().data)
    name = data.splits["val"][0].name
    mask_path = root / "masks" / f"{name}.png"
    from PIL import Image

    pixels = np.array(Image.open(mask_path))
    pixels[0, 0] = 255 - pixels[0, 0]
    Image.fromarray(pixels).save(mask_path)
    second = _train(cli, path, store)
    shown = cli("diff", first, second, "--store", store)
    assert shown.exit_code == 0, shown.output
    assert "val DIFFERS" in shown.output
    assert "train same" in shown.output and "test same" in shown.output
    assert "configuration: identical" in shown.output
    assert "epoch curves: first differ at epoch 1 (val_" in shown.output
    # the data folder gone: one line naming it, exit 2, nothing written
    shutil.rmtree(root)
    before = _snapshot(store)
    gone = cli("rerun", first, "--store", store, "--quiet")
    _one_error_line(gone, str(root), "no longer exists", first)
    assert _snapshot(store) == before


# --------------------------------------------------------------------------- bad input


def test_diff_and_rerun_bad_run_ids_write_nothing(trained, cli, tmp_path):
    _, store, run_id, _ = trained
    before = _snapshot(store)
    for args in (("diff", run_id, "0" * 32), ("rerun", "f" * 32), ("diff", "tiny:99", run_id),
                 ("rerun", "nostudy:1"), ("diff", run_id, "tiny:x")):
        line = _one_error_line(cli(*args, "--store", store))
        assert args[-1] in line or args[1] in line, line
    # a run of another store: named, with what to do
    other = tmp_path / "other"
    line = _one_error_line(cli("diff", run_id, run_id, "--store", other))
    assert "no MLflow store" in line and not other.exists()
    from ablate.testing.fixtures import sqlite_store

    sqlite_store(other)
    line = _one_error_line(cli("rerun", run_id, "--store", other))
    assert run_id in line and "--store" in line
    assert _snapshot(store) == before


# ----------------------------------------------------------------------------------- git


def test_git_state_of_the_spec_work_tree(tmp_path):
    repo = tmp_path / "project"
    repo.mkdir()

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "a@b.c")
    git("config", "user.name", "a")
    spec = repo / "study.yaml"
    spec.write_text("name: x\n")
    git("add", "study.yaml")
    git("commit", "-q", "-m", "spec")
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()
    clean = environment.collect("cpu", str(spec))
    assert clean["git_commit"] == head and clean["git_dirty"] == "false"
    assert environment.git_diff(clean) is None
    spec.write_text("name: y\n")
    dirty = environment.collect("cpu", str(spec))
    assert dirty["git_dirty"].startswith("true") and dirty["git_commit"] == head
    assert "+name: y" in environment.git_diff(dirty)
    outside = environment.git_state(tmp_path / "nowhere")
    assert outside["git_commit"] == environment.NOT_GIT


# -------------------------------------------------------------------------------- report


def test_report_states_or_warns_about_data_digests(store):
    from ablate.reporting import assemble, load_runs
    from ablate.testing.fixtures import StoreWriter, binary_metrics

    stores = resolve_stores(store)
    for study, digests in (("same", ["aaaa", "aaaa"]), ("mixed", ["aaaa", "bbbb"])):
        writer = StoreWriter(stores.tracking_uri, study, design="search")
        for trial, digest in enumerate(digests):
            run_id = writer.trial(trial, {**binary_metrics("val", 9, 1, 1, 89), "val_iou": 0.5})
            writer.client.set_tag(run_id, keys.data_tag("train"), digest)
            writer.client.set_tag(run_id, keys.data_tag("val"), "cccc")
    same = assemble.build(load_runs(stores, "same")).header
    assert any(line.startswith("Data: every run saw the same files (train `aaaa`, val `cccc`")
               for line in same), same
    mixed = " ".join(assemble.build(load_runs(stores, "mixed")).header)
    assert "did not all see the same train data" in mixed and "`bbbb` in 1 run(s)" in mixed
    assert "same val data" not in mixed


def test_importance_uses_the_recorded_search_space(store):
    from ablate.reporting import load_runs
    from ablate.reporting.configs import aggregate
    from ablate.reporting.importance import rebuild
    from ablate.testing.fixtures import StoreWriter, binary_metrics

    stores = resolve_stores(store)
    space = {"optim.lr": {"type": "float", "low": 1e-5, "high": 1.0, "log": True},
             "data.batch_size": {"type": "int", "low": 2, "high": 16, "step": 2, "log": False},
             "model.arch": {"type": "categorical", "choices": ["Unet", "FPN", "Linknet"]}}
    writer = StoreWriter(stores.tracking_uri, "space", design="search", search=space)
    # observed values span a narrow linear range: guessing would give low=0.02, high=0.03,
    # no log scale, and only two architectures
    for trial in range(4):
        writer.trial(trial, {**binary_metrics("val", 9, 1, 1, 89), "val_iou": 0.1 * trial},
                     searched={"optim.lr": 0.02 + 0.0025 * trial, "data.batch_size": 4,
                               "model.arch": ["Unet", "FPN"][trial % 2]})
    runs = load_runs(stores, "space")
    distributions = rebuild(runs, aggregate(runs)).get_trials()[0].distributions
    lr = distributions["optim.lr"]
    assert (lr.low, lr.high, lr.log) == (1e-5, 1.0, True)
    batch = distributions["data.batch_size"]
    assert (batch.low, batch.high, batch.step) == (2, 16, 2)
    assert distributions["model.arch"].choices == ("Unet", "FPN", "Linknet")
