"""Bad input that used to reach a traceback, or was accepted silently: one family per test.

The contract, as in tests/cli/test_bad_input.py: exit code 2, exactly one output line starting
with ``error: `` that names the file or key, and here also an existing store left unchanged
byte for byte (every file of it; a -wal file that is empty counts as absent, -shm index
files are SQLite's shared memory, not data).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from ablate.data import clear_cache
from tests import processes
from tests.cli.test_bad_input import binary_mask, folder_spec, make_images
from tests.conftest import TINY_SPEC, save_image, spec_dict


def snapshot(store: Path) -> dict[str, str]:
    out = {}
    for path in sorted(store.rglob("*")):
        if not path.is_file() or path.name.endswith("-shm"):
            continue
        if path.name.endswith("-wal") and path.stat().st_size == 0:
            continue
        out[str(path.relative_to(store))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def existing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding study 'tiny' (created, not run), written by a separate process that
    has exited (so no write-ahead log is pending)."""
    folder = tmp_path_factory.mktemp("existing")
    spec = folder / "spec.yaml"
    spec.write_text(yaml.safe_dump(TINY_SPEC))
    code = processes.run(["study", "create", spec, "--store", folder / "store"], folder / "log")
    assert code == 0, (folder / "log").read_text()
    return folder / "store"


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


class Refused:
    """Runs a command against the existing store and checks the contract."""

    def __init__(self, cli: Any, store: Path):
        self.cli, self.store = cli, store

    def __call__(self, *args: object, needles: tuple[str, ...] = ()) -> str:
        before = snapshot(self.store)
        result = self.cli(*args, "--store", self.store)
        output = result.output
        assert result.exit_code == 2, output
        assert "Traceback" not in output, output
        lines = [line for line in output.splitlines() if line.strip()]
        assert len(lines) == 1, output
        assert lines[0].startswith("error: "), lines[0]
        for needle in needles:
            assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
        assert snapshot(self.store) == before, "the store changed"
        return lines[0]


@pytest.fixture
def refused(cli: Any, existing: Path) -> Refused:
    return Refused(cli, existing)


def _spec(write_spec: Any, **sections: Any) -> Path:
    return write_spec(spec_dict(**sections))


# ------------------------------------------------------------------------------ spec files


def test_spec_not_utf8(refused, tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_bytes(yaml.safe_dump(TINY_SPEC).encode() + b"description: caf\xe9\n")
    refused("study", "run", path, needles=(str(path), "not UTF-8", "byte 0xe9"))


def test_spec_file_too_large(refused, tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(TINY_SPEC) + "#" * (1 << 20) + "\n")
    refused("study", "create", path, needles=(str(path), "at most 1,048,576 bytes"))


@pytest.mark.parametrize("field", ["description", "design.baseline", "search choices"])
def test_yaml_alias_bomb(refused, tmp_path, field):
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    bomb = {"description": "description: *a8",
            "design.baseline": "design: {kind: search, baseline: {x: *a8}}",
            "search choices": "search: {model.arch: {type: categorical, choices: *a8}}"}[field]
    text = yaml.safe_dump({k: v for k, v in TINY_SPEC.items() if k != "search"})
    path = tmp_path / "spec.yaml"
    path.write_text("x-anchors:\n" + "\n".join("  " + line for line in lines) + "\n"
                    + text + bomb + "\n")
    refused("study", "create", path, needles=(str(path), "aliases", "expand"))


def test_duplicate_yaml_key(refused, tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(TINY_SPEC) + "trials: 5\n")
    refused("study", "create", path, needles=(str(path), "duplicate key 'trials'", "line"))


def test_duplicate_key_in_set_value(refused, write_spec):
    refused("study", "create", write_spec(), "--set", "data.size={a: 1, a: 2}",
            needles=("--set data.size", "duplicate key 'a'"))


@pytest.mark.parametrize(
    ("sections", "key"),
    [({"seed": -1}, "seed"), ({"seed": 2**32}, "seed"),
     ({"sampler": {"name": "random", "seed": 2**40}}, "sampler.seed"),
     ({"data": {"split_seed": -5}}, "data.split_seed"),
     ({"seed": 2**32 - 1, "design": {"kind": "search", "repeats": 3}}, "seed")],
    ids=["negative", "2**32", "sampler", "split", "seed+repeats"],
)
def test_seed_outside_numpy_range(refused, write_spec, sections, key):
    refused("study", "create", _spec(write_spec, **sections), needles=(key,))


# -------------------------------------------------------------------- model: code and weights


@pytest.mark.parametrize(
    ("source", "needles"),
    [("raise RuntimeError('no GPU driver here')\n",
      ("model.custom", "cannot import module", "RuntimeError: no GPU driver here")),
     ("def broken(:\n", ("model.custom", "cannot import module", "SyntaxError")),
     ("import torch\nclass Net(torch.nn.Module):\n    def __init__(self, in_channels, classes):"
      "\n        super().__init__()\n        raise ValueError('width must be even')\n",
      ("model.custom", "cannot be built", "ValueError: width must be even"))],
    ids=["import-raises", "syntax-error", "constructor-raises"],
)
def test_custom_model_that_fails(refused, write_spec, tmp_path, monkeypatch, source, needles):
    module = f"user_model_{abs(hash(source)) % 10**8}"
    (tmp_path / f"{module}.py").write_text(source)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = spec_dict()
    spec["model"] = {"custom": f"{module}:Net"}
    for command in (("study", "create"), ("train",)):
        refused(*command, write_spec(spec), needles=needles)


@pytest.mark.parametrize("key", ["encoder_weights", "init_from"])
def test_weight_file_that_is_not_a_state_dict(refused, write_spec, tmp_path, key):
    weights = tmp_path / "weights.pt"
    torch.save([torch.zeros(3), torch.ones(2)], weights)
    spec = spec_dict()
    spec["model"][key] = str(weights)
    refused("study", "create", write_spec(spec),
            needles=(f"model.{key}", str(weights), "not a state dict"))


# ----------------------------------------------- values that validate but fail at run time


def test_searched_architecture_choice_that_cannot_be_built(refused, write_spec):
    spec = spec_dict()
    spec["search"]["model.decoder_channels"] = {"type": "categorical",
                                                "choices": [[16, 8, 4], [16, 8]]}
    refused("study", "create", write_spec(spec),
            needles=("search.model.decoder_channels", "Unet/resnet18"))


def test_searched_encoder_depth_the_decoder_cannot_take(refused, write_spec):
    spec = spec_dict()
    spec["search"]["model.encoder_depth"] = {"type": "int", "low": 3, "high": 5}
    refused("study", "run", write_spec(spec), needles=("search.model.encoder_depth",))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_device_without_gpu(refused, write_spec):
    refused("study", "run", _spec(write_spec, device="cuda"),
            needles=("device", "'cuda'", "no CUDA GPU"))


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "tpu"])
def test_unknown_device(refused, write_spec, device):
    refused("train", _spec(write_spec, device=device), needles=("device", device))


def test_class_names_that_collide_as_metric_keys(refused, write_spec):
    spec = spec_dict(data={"task": "multiclass", "num_classes": 3,
                           "class_names": ["bg", "Road", "road "]},
                     loss={"weights": {"ce": 1.0}}, objective={"metric": "val_miou"})
    refused("study", "create", write_spec(spec),
            needles=("data", "'Road' and 'road '", "iou_road"))


def test_nan_pixels_in_float_images(refused, write_spec, tmp_path):
    data = tmp_path / "data"
    make_images(data, ["a", "b", "c", "d"])
    image = np.random.default_rng(0).random((32, 32, 3), dtype=np.float32)
    image[3, 4, 1] = np.nan
    (data / "images" / "c.png").unlink()
    save_image(data / "images" / "c.tif", image)
    refused("study", "create", write_spec(folder_spec()),
            needles=(str(data / "images" / "c.tif"), "NaN or infinite"))


@pytest.mark.parametrize("source", ["0123456789abcdef0123456789abcdef", "weights/missing.pt"],
                         ids=["run-id", "file"])
def test_init_from_pointing_at_nothing(refused, write_spec, source):
    spec = spec_dict()
    spec["model"]["init_from"] = source
    for command in (("study", "create"), ("train",)):
        refused(*command, write_spec(spec), needles=("model.init_from", source))


# ------------------------------------------------------------------------ stores and names


@pytest.mark.parametrize("db", ["optuna.db", "mlflow.db"])
def test_corrupt_store_database(cli, write_spec, tmp_path, db):
    store = tmp_path / "damaged"
    store.mkdir()
    (store / db).write_bytes(b"this is not a database\n" * 64)
    path = write_spec()
    before = snapshot(store)
    for command in (("study", "run", path), ("study", "run", "tiny")):
        line = Refused(cli, store)(*command, needles=(str(store / db), "SQLite database"))
        assert "move it away" in line
    assert snapshot(store) == before


@pytest.mark.parametrize("flag", ["--tracking-uri"])
def test_file_tracking_uri(refused, write_spec, tmp_path, monkeypatch, flag):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    uri = f"file://{tmp_path / 'mlruns'}"
    refused("study", "create", write_spec(), flag, uri,
            needles=("--tracking-uri", "file store", "sqlite:///"))
    assert not (tmp_path / "mlruns").exists()


@pytest.mark.parametrize("url", ["sqlite:///:memory:", "sqlite://"])
@pytest.mark.parametrize("flag", ["--storage", "--tracking-uri"])
def test_in_memory_sqlite(refused, write_spec, url, flag, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    refused("study", "create", write_spec(), flag, url,
            needles=(flag, "in-memory SQLite", "keeps nothing"))
    assert not list(tmp_path.glob(":memory:*"))


def test_study_name_too_long(refused, write_spec):
    refused("study", "create", _spec(write_spec, name="n" * 300),
            needles=("name", "at most 128 characters"))


@pytest.mark.parametrize("value", ["abc", "0", "-5", "1.5"])
def test_malformed_environment_variable(refused, write_spec, monkeypatch, value):
    monkeypatch.setenv("ABLATE_HEARTBEAT", value)
    for command in (("study", "run", write_spec()), ("study", "run", "tiny")):
        refused(*command, needles=("ABLATE_HEARTBEAT", repr(value)))


@pytest.mark.parametrize(
    ("option", "needle"),
    [(["-n", "-3"], "-n/--n-trials -3"), (["-n", "0"], "-n/--n-trials 0"),
     (["--timeout", "-1"], "--timeout -1"), (["--workers", "0"], "--workers 0"),
     (["--workers", "-2"], "--workers -2")],
    ids=["n-negative", "n-zero", "timeout", "workers-0", "workers-negative"],
)
def test_bad_counts(refused, option, needle):
    refused("study", "run", "tiny", *option, needles=(needle,))


@pytest.mark.parametrize(
    ("param", "needle"),
    [({"type": "float", "low": 0.001, "high": 0.01, "step": 0.004}, "step 0.004"),
     ({"type": "int", "low": 1, "high": 10, "step": 4}, "step 4"),
     ({"type": "int", "low": 1, "high": 3, "step": 0.5}, "whole step")],
    ids=["float", "int", "int-fraction"],
)
def test_search_step_that_does_not_divide_the_range(refused, write_spec, param, needle):
    spec = spec_dict()
    path = "optim.lr" if param["type"] == "float" else "optim.epochs"
    spec["search"] = {path: param}
    refused("study", "create", write_spec(spec), needles=(f"search.{path}", needle))


# --------------------------------------------------------------------------------- data files


def test_orphan_mask(refused, write_spec, tmp_path):
    data = tmp_path / "data"
    make_images(data, ["a", "b", "c", "d"])
    save_image(data / "masks" / "e.png", binary_mask(4))
    refused("study", "create", write_spec(folder_spec()),
            needles=(str(data / "masks" / "e.png"), "has no image"))


def test_dangling_symlink_image(refused, write_spec, tmp_path):
    data = tmp_path / "data"
    make_images(data, ["a", "b", "c", "d"])
    os.symlink(tmp_path / "gone.png", data / "images" / "e.png")
    refused("study", "create", write_spec(folder_spec()),
            needles=(str(data / "images" / "e.png"), "does not exist"))
