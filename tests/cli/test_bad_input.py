"""Bad input through the command line: one line naming the file or key and what to do.

Every case here runs the real CLI and checks the same contract: exit code 2, exactly one
non-empty output line that starts with ``error: `` (no traceback), the file or key named in it,
and nothing created in any store (the ``--store`` folder does not exist afterwards).
"""

from __future__ import annotations

import copy
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from ablate.cli import app
from ablate.data import clear_cache
from tests.conftest import TINY_SPEC, save_image, spec_dict

COMMANDS = [("study", "create"), ("study", "run"), ("train",)]
COMMAND_IDS = ["create", "run", "train"]


# ------------------------------------------------------------------------------------ helpers


save = save_image


def rgb(seed: int, size: tuple[int, int] = (32, 32)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def binary_mask(seed: int, size: tuple[int, int] = (32, 32)) -> np.ndarray:
    mask = np.random.default_rng(seed).integers(0, 2, size, dtype=np.uint8)
    mask.flat[:2] = (0, 1)
    return mask


def make_images(root: Path, names: list[str], size: tuple[int, int] = (32, 32)) -> None:
    """``root/images/<name>.png`` (RGB) with ``root/masks/<name>.png`` (labels 0/1)."""
    for i, name in enumerate(names):
        save(root / "images" / f"{name}.png", rgb(i, size))
        save(root / "masks" / f"{name}.png", binary_mask(i, size))


def folder_spec(**data: Any) -> dict[str, Any]:
    """TINY_SPEC on the folder data set ``data/`` beside the spec file (``data`` keys merged)."""
    spec = copy.deepcopy(TINY_SPEC)
    spec["data"] = {
        "task": "binary",
        "root": "data",
        "images": "images",
        "masks": "masks",
        "split_ratios": {"train": 0.5, "val": 0.5},
        "batch_size": 2,
        **data,
    }
    return spec


def error_line(result: Any, store: Path | None, *needles: str) -> str:
    """Check the bad-input contract and return the one error line."""
    output = result.output
    assert result.exit_code == 2, output
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    line = lines[0]
    assert line.startswith("error: ") and len(line) > len("error: "), line
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    if store is not None:
        assert not store.exists(), f"{store} was created: {sorted(store.rglob('*'))}"
    return line


@pytest.fixture
def store(empty_store: Path) -> Path:
    """Here a store must not exist beforehand: every test checks that none was created."""
    return empty_store


@pytest.fixture(autouse=True)
def _fresh_decode_cache() -> Iterator[None]:
    # Files in tmp_path are rewritten between tests; never let a decoded array leak across.
    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Raise TimeoutError in the main thread after ``seconds`` (the check must fail fast)."""

    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"still running after {seconds} s: the check does not fail fast")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# ------------------------------------------------------------------------------ data: folders


@pytest.mark.parametrize("command", COMMANDS, ids=COMMAND_IDS)
def test_missing_data_root(cli, write_spec, store, tmp_path, command):
    path = write_spec(folder_spec(root="nowhere"))
    error_line(cli(*command, path, "--store", store), store,
               "data.root", str(tmp_path / "nowhere"), "not found")


@pytest.mark.parametrize("command", COMMANDS, ids=COMMAND_IDS)
def test_missing_images_dir(cli, write_spec, store, data_dir, command):
    make_images(data_dir, ["a", "b"])
    path = write_spec(folder_spec(images="imgs"))
    error_line(cli(*command, path, "--store", store), store,
               "data.images", str(data_dir / "imgs"), "not found")


def test_missing_masks_dir(cli, write_spec, store, data_dir):
    make_images(data_dir, ["a", "b"])
    path = write_spec(folder_spec(masks="labels"))
    error_line(cli("study", "create", path, "--store", store), store,
               "data.masks", str(data_dir / "labels"), "not found")


def test_missing_split_dir(cli, write_spec, store, data_dir):
    make_images(data_dir / "train", ["a", "b"])
    path = write_spec(folder_spec(images=None, masks=None, split_ratios=None, split_dirs={
        "train": {"images": "train/images", "masks": "train/masks"},
        "val": {"images": "val/images", "masks": "val/masks"},
    }))
    error_line(cli("study", "create", path, "--store", store), store,
               "data.split_dirs.val.images", str(data_dir / "val" / "images"))


def test_empty_images_dir(cli, write_spec, store, data_dir):
    (data_dir / "images").mkdir(parents=True)
    save(data_dir / "masks" / "a.png", binary_mask(0))
    path = write_spec(folder_spec())
    error_line(cli("study", "create", path, "--store", store), store,
               "data.images", "no image files", str(data_dir / "images"))


@pytest.mark.parametrize("command", COMMANDS, ids=COMMAND_IDS)
def test_no_image_mask_pairs(cli, write_spec, store, data_dir, command):
    for i, name in enumerate(["a", "b", "c"]):
        save(data_dir / "images" / f"{name}.png", rgb(i))
        save(data_dir / "masks" / f"{name}_mask.png", binary_mask(i))
    path = write_spec(folder_spec())
    error_line(cli(*command, path, "--store", store), store,
               "no image/mask pairs", str(data_dir / "images"), "a.png", "a_mask.png")


@pytest.mark.parametrize("command", COMMANDS, ids=COMMAND_IDS)
def test_image_without_mask(cli, write_spec, store, data_dir, command):
    make_images(data_dir, ["a", "b", "c", "d"])
    save(data_dir / "images" / "lonely.png", rgb(9))
    path = write_spec(folder_spec())
    line = error_line(cli(*command, path, "--store", store), store,
                      str(data_dir / "images" / "lonely.png"), "has no mask",
                      str(data_dir / "masks"))
    assert "add the mask or remove the image" in line


@pytest.mark.parametrize("command", COMMANDS, ids=COMMAND_IDS)
def test_mask_size_differs_from_image(cli, write_spec, store, data_dir, command):
    make_images(data_dir, ["a", "b", "c", "d"])
    save(data_dir / "masks" / "c.png", binary_mask(2, (32, 30)))
    path = write_spec(folder_spec())
    error_line(cli(*command, path, "--store", store), store,
               str(data_dir / "masks" / "c.png"), "32x30", "32x32", "c.png")


@pytest.mark.parametrize("command", COMMANDS, ids=COMMAND_IDS)
def test_mask_values_not_classes(cli, write_spec, store, data_dir, command):
    make_images(data_dir, ["a", "b", "c", "d"])
    bad = binary_mask(1)
    bad[0, :4] = (7, 7, 9, 200)
    save(data_dir / "masks" / "b.png", bad)
    path = write_spec(folder_spec())
    line = error_line(cli(*command, path, "--store", store), store,
                      str(data_dir / "masks" / "b.png"), "[7, 9, 200]", "data.mask_map")
    assert "ignore_index" in line


def test_mask_values_0_255_suggest_mask_map(cli, write_spec, store, data_dir):
    make_images(data_dir, ["a", "b", "c", "d"])
    save(data_dir / "masks" / "a.png", binary_mask(0) * 255)
    path = write_spec(folder_spec())
    error_line(cli("study", "create", path, "--store", store), store,
               str(data_dir / "masks" / "a.png"), "[255]", "data.mask_map: {255: 1}")


def test_multiclass_mask_value_beyond_num_classes(cli, write_spec, store, data_dir):
    make_images(data_dir, ["a", "b", "c", "d"])
    labels = np.random.default_rng(0).integers(0, 3, (32, 32), dtype=np.uint8)
    labels[0, 0] = 5
    save(data_dir / "masks" / "d.png", labels)
    path = write_spec(folder_spec(task="multiclass", num_classes=3)
                      | {"loss": {"weights": {"ce": 1.0}}, "objective": {"metric": "val_miou"}})
    error_line(cli("study", "create", path, "--store", store), store,
               str(data_dir / "masks" / "d.png"), "[5]", "(0..2)")


@pytest.mark.parametrize("command", COMMANDS, ids=COMMAND_IDS)
def test_corrupt_image_file(cli, write_spec, store, data_dir, command):
    make_images(data_dir, ["a", "b", "c", "d"])
    corrupt = data_dir / "images" / "x.png"
    corrupt.write_bytes(np.random.default_rng(0).bytes(300))
    save(data_dir / "masks" / "x.png", binary_mask(5))
    path = write_spec(folder_spec())
    line = error_line(cli(*command, path, "--store", store), store,
                      str(corrupt), "cannot read this image file")
    assert "replace or remove it" in line


def test_corrupt_mask_file(cli, write_spec, store, data_dir):
    make_images(data_dir, ["a", "b", "c", "d"])
    corrupt = data_dir / "masks" / "b.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)  # a PNG header, then garbage
    path = write_spec(folder_spec())
    error_line(cli("study", "create", path, "--store", store), store,
               str(corrupt), "cannot read this mask file")


def test_corrupt_tiff_image(cli, write_spec, store, data_dir):
    make_images(data_dir, ["a", "b", "c"])
    corrupt = data_dir / "images" / "t.tif"
    corrupt.write_bytes(b"II*\x00" + b"\xff" * 50)
    save(data_dir / "masks" / "t.png", binary_mask(3))
    path = write_spec(folder_spec())
    error_line(cli("study", "create", path, "--store", store), store,
               str(corrupt), "cannot read this image file")


@pytest.mark.parametrize("command", COMMANDS, ids=COMMAND_IDS)
def test_images_with_different_channel_counts(cli, write_spec, store, data_dir, command):
    make_images(data_dir, ["a", "b", "c", "d"])
    save(data_dir / "images" / "c.png", rgb(2)[:, :, 0])  # grayscale among RGB
    path = write_spec(folder_spec())
    line = error_line(cli(*command, path, "--store", store), store,
                      "different channel counts", "c has 1")
    assert "has 3" in line


def test_multiband_tiff_among_rgb(cli, write_spec, store, data_dir):
    make_images(data_dir, ["a", "b", "c", "d"])
    (data_dir / "images" / "d.png").unlink()
    bands = np.random.default_rng(0).integers(0, 65535, (32, 32, 5), dtype=np.uint16)
    save(data_dir / "images" / "d.tif", bands)
    path = write_spec(folder_spec())
    error_line(cli("study", "create", path, "--store", store), store,
               "different channel counts", "d has 5")


def test_images_of_different_sizes_without_data_size(cli, write_spec, store, data_dir):
    make_images(data_dir, ["a", "b", "c", "d"])
    make_images(data_dir, ["e", "f"], size=(48, 40))
    path = write_spec(folder_spec(split_ratios={"train": 0.5, "val": 0.5}))
    error_line(cli("study", "create", path, "--store", store), store,
               "different sizes", "data.size")


# ------------------------------------------------------------------------------ data: splits


@pytest.mark.parametrize("command", COMMANDS, ids=COMMAND_IDS)
def test_batch_size_larger_than_train_split(cli, write_spec, store, data_dir, command):
    make_images(data_dir, ["a", "b", "c", "d"])
    path = write_spec(folder_spec(batch_size=8))
    error_line(cli(*command, path, "--store", store), store,
               "data.batch_size is 8", "only 2 samples", "at most 2")


def test_batch_size_larger_than_train_split_by_set(cli, write_spec, store):
    # The synthetic tiny spec: 12 images, 6 for train; --set names the key as well.
    path = write_spec()
    error_line(cli("study", "run", path, "--store", store, "--set", "data.batch_size=7"),
               store, "data.batch_size is 7", "only 6 samples")


@pytest.mark.parametrize("command", COMMANDS, ids=COMMAND_IDS)
def test_split_left_empty_by_ratios(cli, write_spec, store, data_dir, command):
    # Two pairs for three splits with ratios above 0: one split cannot get a sample.
    make_images(data_dir, ["a", "b"])
    path = write_spec(folder_spec(split_ratios={"train": 0.6, "val": 0.2, "test": 0.2},
                                  batch_size=1))
    line = error_line(cli(*command, path, "--store", store), store,
                      "data.split_ratios", "split is empty", "only 2 samples")
    assert "add data" in line


def test_split_left_empty_by_group_pattern(cli, write_spec, store, data_dir):
    # Every file matches one group ('scan'), and a whole group lands in one split.
    make_images(data_dir, [f"scan_{i}" for i in range(6)])
    path = write_spec(folder_spec(group_pattern=r"^(scan)_"))
    error_line(cli("study", "create", path, "--store", store), store,
               "the val split is empty", "data.group_pattern '^(scan)_' makes only 1 groups")


def test_split_list_names_unknown_sample(cli, write_spec, store, data_dir):
    make_images(data_dir, ["a", "b", "c", "d"])
    (data_dir / "train.txt").write_text("a\nb\n")
    (data_dir / "val.txt").write_text("c\nzzz\n")
    path = write_spec(folder_spec(split_ratios=None,
                                  split_lists={"train": "train.txt", "val": "val.txt"}))
    error_line(cli("study", "create", path, "--store", store), store,
               f"{data_dir / 'val.txt'}:2", "'zzz'")


def test_split_list_file_missing(cli, write_spec, store, data_dir):
    make_images(data_dir, ["a", "b", "c", "d"])
    (data_dir / "train.txt").write_text("a\nb\n")
    path = write_spec(folder_spec(split_ratios=None,
                                  split_lists={"train": "train.txt", "val": "val.txt"}))
    error_line(cli("study", "create", path, "--store", store), store,
               "data.split_lists.val", str(data_dir / "val.txt"), "not found")


def test_input_size_the_model_cannot_take(cli, write_spec, store):
    # FPN (encoder depth 5) needs sides divisible by 32; 48 is not.
    spec = spec_dict(data={"size": [48, 48]})
    spec["model"] = {"arch": "FPN", "encoder": "resnet18"}
    error_line(cli("study", "create", write_spec(spec), "--store", store), store,
               "model: FPN/resnet18 cannot run on input (3, 48, 48)", "data.size")


# ---------------------------------------------------------------------------- studies (names)


@pytest.fixture(scope="module")
def existing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(spec, store) of a study 'tiny' created once for this module's tests."""
    folder = tmp_path_factory.mktemp("existing")
    spec, store = folder / "spec.yaml", folder / "store"
    spec.write_text(yaml.safe_dump(TINY_SPEC))
    with pytest.MonkeyPatch.context() as env:
        for var in ("ABLATE_STORAGE", "MLFLOW_TRACKING_URI", "ABLATE_STORE"):
            env.delenv(var, raising=False)
        result = CliRunner().invoke(app, ["study", "create", str(spec), "--store", str(store)])
    assert result.exit_code == 0, result.output
    return spec, store


def test_create_on_existing_name_writes_nothing_more(cli, existing):
    # tests/spec/test_spec.py checks the message and --replace; here: one line, and no second study
    # nor second parent run is written.
    import optuna
    from mlflow.tracking import MlflowClient

    spec, store = existing
    error_line(cli("study", "create", spec, "--store", store), None,
               "study 'tiny' already exists", "ablate study run tiny", "--replace")
    assert optuna.get_all_study_names(f"sqlite:///{store / 'optuna.db'}") == ["tiny"]
    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny")
    assert len(client.search_runs([experiment.experiment_id])) == 1


def test_run_unknown_name_creates_nothing(cli, store):
    error_line(cli("study", "run", "nope", "--store", store), store,
               "no study named 'nope'", "ablate study create")


def test_run_unknown_name_lists_the_known_ones(cli, existing):
    error_line(cli("study", "run", "nope", "--store", existing[1]), None,
               "no study named 'nope'", "studies: tiny")


def test_run_spec_whose_study_exists_with_another_spec(cli, write_spec, existing):
    changed = write_spec(spec_dict(optim={"lr": 0.02}))
    error_line(cli("study", "run", changed, "--store", existing[1]), None,
               str(changed), "already exists with a different spec", "--replace")


# ------------------------------------------------------------------------------------- stores


@pytest.mark.parametrize("command", COMMANDS, ids=COMMAND_IDS)
def test_malformed_storage_url(cli, write_spec, store, command):
    error_line(cli(*command, write_spec(), "--store", store, "--storage", "notaurl"), store,
               "--storage", "malformed URL 'notaurl'", "postgresql://")


@pytest.mark.parametrize("command", COMMANDS, ids=COMMAND_IDS)
def test_malformed_tracking_uri(cli, write_spec, store, command):
    error_line(cli(*command, write_spec(), "--store", store, "--tracking-uri", "notauri"),
               store, "--tracking-uri", "malformed URL 'notauri'", "http://host:5000")


def test_malformed_storage_url_from_environment(cli, write_spec, store, monkeypatch):
    monkeypatch.setenv("ABLATE_STORAGE", "sqlite:/one-slash.db")
    error_line(cli("study", "create", write_spec(), "--store", store), store,
               "ABLATE_STORAGE", "sqlite:/one-slash.db")


@pytest.mark.parametrize(
    ("url", "needles"),
    [
        ("postgresql://u:secret@db.example:notaport/x", ["malformed URL", "notaport"]),
        ("postgres://u:secret@db.example/x", ["unknown database driver", "write postgresql://"]),
        ("postgresql+nodriver://db.example/x", ["unknown database driver 'postgresql+nodriver'"]),
    ],
    ids=["bad-port", "postgres-scheme", "unknown-driver"],
)
def test_storage_url_sqlalchemy_cannot_use(cli, write_spec, store, url, needles):
    line = error_line(cli("study", "create", write_spec(), "--store", store, "--storage", url),
                      store, "--storage", *needles)
    assert "secret" not in line, f"the password is printed: {line}"


def test_storage_driver_not_installed(cli, write_spec, store):
    try:
        import MySQLdb  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("mysqlclient is installed here")
    url = "mysql://user:secret@127.0.0.1:1/db"
    line = error_line(cli("study", "create", write_spec(), "--store", store, "--storage", url),
                      store, "--storage", "needs the database driver 'MySQLdb'",
                      "pip install 'mysqlclient'")
    assert "secret" not in line, f"the password is printed: {line}"


UNREACHABLE_PG = "postgresql://user:secret@127.0.0.1:1/db"


@pytest.mark.parametrize("command", [("study", "create"), ("study", "run")], ids=["create", "run"])
def test_unreachable_storage_server(cli, write_spec, store, command):
    pytest.importorskip("psycopg", reason="needs the PostgreSQL driver psycopg (dev extra)")
    start = time.monotonic()
    with deadline(8):
        result = cli(*command, write_spec(), "--store", store, "--storage", UNREACHABLE_PG)
    error_line(result, store, "Optuna storage", "127.0.0.1:1", "cannot be reached")
    assert time.monotonic() - start < 5, "the storage check must fail fast"


def test_unreachable_storage_server_hides_password(cli, write_spec, store):
    pytest.importorskip("psycopg", reason="needs the PostgreSQL driver psycopg (dev extra)")
    result = cli("study", "create", write_spec(), "--store", store, "--storage", UNREACHABLE_PG)
    line = error_line(result, store, "Optuna storage", "user:***@127.0.0.1:1/db")
    assert "secret" not in line, f"the password is printed: {line}"


UNREACHABLE_MLFLOW = "http://127.0.0.1:1"


@pytest.mark.parametrize("command", COMMANDS, ids=COMMAND_IDS)
def test_unreachable_tracking_server(cli, write_spec, store, command):
    start = time.monotonic()
    with deadline(8):
        result = cli(*command, write_spec(), "--store", store,
                     "--tracking-uri", UNREACHABLE_MLFLOW)
    error_line(result, store, "MLflow tracking", UNREACHABLE_MLFLOW, "cannot be reached")
    assert time.monotonic() - start < 5, "the tracking check must fail fast"


# ------------------------------------------------------------------------------ spec (extras)
# tests/spec/test_spec.py covers malformed YAML, unknown keys, wrong types, impossible values,
# unknown architecture/encoder, weights needing a download, empty categorical choices and a
# negative loss weight (through load_spec), and the CLI contract for one of them. These are the
# cases it leaves out, through the CLI.


@pytest.mark.parametrize(
    ("spec", "overrides", "needles"),
    [
        (None, ["optim.epochs"], ["--set 'optim.epochs'", "key.path=value"]),
        ({"search": {"optim.lr": {"type": "float", "low": 0.1, "high": 0.01}}}, [],
         ["search.optim.lr"]),
        ({"search": {"optim.lr": {"type": "float", "low": 0.001, "high": 0.01},
                     "optim.epochs": {"type": "int", "low": 1, "high": 3, "step": 0}}}, [],
         ["search.optim.epochs"]),
        ({"search": {"optim.optimizer": {"type": "categorical", "choices": []}}}, [],
         ["search.optim.optimizer", "non-empty choices"]),
        ({"search": {"loss.weights.focal": {"type": "float", "low": -1.0, "high": 1.0}}}, [],
         ["search.loss.weights.focal"]),
        ({"data": {"group_pattern": "(unclosed"}}, [],
         ["data.group_pattern", "not a valid regular expression"]),
        ({"data": {"ignore_index": 1}}, [], ["data", "ignore_index 0 or 1"]),
        ({"data": {"mask_map": {255: 7}}}, [], ["data", "mask_map sends 255 to 7"]),
        ({"data": {"split_ratios": {"train": 0.8, "val": 0.4}}}, [],
         ["data", "add up to more than 1"]),
        ({"optimm": {"lr": 0.1}}, [], ["unknown key 'optimm'", "did you mean 'optim'?"]),
        ({"loss": {"weights": {"bce": 0, "jaccard": 0}}}, [],
         ["loss.weights", "every weight is 0"]),
        ({"data": {"synthetic": {"num_images": 12, "channels": 0, "size": 32}}}, [],
         ["data.synthetic.channels"]),
    ],
    ids=["set-without-equals", "range-low-above-high", "int-step-zero", "empty-choices",
         "negative-weight-range", "bad-regex", "binary-ignore-index", "mask-map-non-class",
         "ratios-above-1", "unknown-section", "all-loss-weights-0", "zero-channels"],
)
def test_spec_errors_not_covered_elsewhere(cli, write_spec, store, spec, overrides, needles):
    path = write_spec(spec_dict(**spec) if spec else None)
    sets = [arg for item in overrides for arg in ("--set", item)]
    line = error_line(cli("study", "create", path, "--store", store, *sets), store, *needles)
    assert str(path) in line or line.startswith("error: --set"), line


def test_spec_file_not_found(cli, store, tmp_path):
    missing = tmp_path / "absent.yaml"
    error_line(cli("study", "create", missing, "--store", store), store,
               str(missing), "spec file not found")


@pytest.mark.parametrize("text", ["- a\n- b\n", "", "just text\n"], ids=["list", "empty", "str"])
def test_spec_that_is_not_a_mapping(cli, store, tmp_path, text):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    error_line(cli("study", "create", path, "--store", store), store,
               str(path), "a spec is a YAML mapping")


@pytest.mark.parametrize("command", COMMANDS, ids=COMMAND_IDS)
def test_yaml_is_read_with_a_safe_loader(cli, store, tmp_path, command):
    marker = tmp_path / "pwned"
    path = tmp_path / "spec.yaml"
    text = yaml.safe_dump(TINY_SPEC)
    path.write_text(text + f'description: !!python/object/apply:os.system ["touch {marker}"]\n')
    error_line(cli(*command, path, "--store", store), store, str(path), "malformed YAML")
    assert not marker.exists(), "the YAML tag ran a command"


def test_python_tags_in_set_are_not_executed(cli, write_spec, store, tmp_path):
    # A --set value that is no safe YAML is taken as text; the lr error then stops the command.
    marker = tmp_path / "pwned"
    result = cli("study", "create", write_spec(), "--store", store,
                 "--set", f'description=!!python/object/apply:os.system ["touch {marker}"]',
                 "--set", "optim.lr=-1")
    error_line(result, store, "optim.lr")
    assert not marker.exists(), "the --set value ran a command"
