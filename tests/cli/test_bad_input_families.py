"""The last families of bad input: each is one line, exit code 2, and every store byte for byte
as it was.

Families: YAML nested too deep; files and folders the process cannot read (run as the
unprivileged user ``nobody``: as root every file is readable); a database in the store that
belongs to another application, or is read-only; true/false where a count or a number is
meant; numbers too large to train with; ``--gpus`` that names no GPU of this machine;
command-line usage errors; and reading commands, which must leave a store exactly as they
found it. Commands run as real ``ablate`` processes (forked from a preloaded server,
tests/processes.py) against a real store holding a finished study.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests import processes
from tests.conftest import REPO, TINY_SPEC, save_image

pytestmark = pytest.mark.slow  # starts processes


def snapshot(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` with the SHA-256 of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding one finished tiny study (``tiny``), made once for the module."""
    root = tmp_path_factory.mktemp("finished")
    spec = root / "spec.yaml"
    spec.write_text(yaml.safe_dump({**TINY_SPEC, "trials": 1}))
    log = root / "out.log"
    code = processes.run(["study", "run", spec, "--store", root / "store", "--quiet"], log)
    assert code == 0, log.read_text()
    for db in ("optuna.db", "mlflow.db"):  # as a process that exits cleanly leaves them:
        connection = sqlite3.connect(root / "store" / db)  # checkpointed, no -wal or -shm
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.close()
    return root / "store"


@pytest.fixture
def store(finished: Path, tmp_path: Path) -> Iterator[Path]:
    """A copy of the finished store; the test's command must leave it byte for byte."""
    copy = tmp_path / "store"
    shutil.copytree(finished, copy)
    before = snapshot(copy)
    yield copy
    assert snapshot(copy) == before, "the store changed"


def ablate(argv: list[object], log: Path) -> tuple[int, list[str]]:
    """Run ``ablate ARGV``; its exit code and its non-empty output lines."""
    log.write_text("")
    code = processes.run(argv, log, timeout=120)
    return code, [line for line in log.read_text().splitlines() if line.strip()]


def one_error(result: tuple[int, list[str]], *needles: str) -> str:
    code, lines = result
    assert code == 2, lines
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def write(path: Path, spec: dict) -> Path:
    path.write_text(yaml.safe_dump(spec))
    return path


# -------------------------------------------------------------------------------- the spec


def test_yaml_nested_too_deep(store, tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("name: deep\nsearch: " + "[" * 5000 + "]" * 5000 + "\n")
    for argv in (["check", path], ["study", "create", path, "--store", store],
                 ["train", path, "--store", store]):
        one_error(ablate(argv, tmp_path / "log"), str(path), "nested more than 64 levels")


@pytest.mark.parametrize(("key", "value"), [
    ("trials", True), ("max_failures", False), ("data.batch_size", True),
    ("optim.lr", False), ("optim.epochs", True), ("data.size", [True, 32]),
    ("eval.gallery", True),
])
def test_true_or_false_where_a_number_is_meant(store, tmp_path, key, value):
    line = one_error(ablate(["study", "create", write(tmp_path / "s.yaml", TINY_SPEC),
                             "--store", store, "--set", f"{key}={json.dumps(value)}"],
                            tmp_path / "log"), key)
    assert "true/false" in line or "not a number" in line, line


@pytest.mark.parametrize(("key", "value"), [
    ("data.size", [100_000, 100_000]), ("optim.epochs", 10**9), ("data.batch_size", 10**8),
    ("trials", 10**9), ("data.synthetic.num_images", 10**7),
])
def test_numbers_too_large_to_train_with(store, tmp_path, key, value):
    one_error(ablate(["study", "create", write(tmp_path / "s.yaml", TINY_SPEC), "--store", store,
                      "--set", f"{key}={json.dumps(value)}"],
                     tmp_path / "log"), key)


# ---------------------------------------------------------------------------------- stores


def _tables(path: Path, *names: str) -> None:
    import sqlite3

    with sqlite3.connect(path) as db:
        for name in names:
            db.execute(f"CREATE TABLE {name} (id INTEGER)")


@pytest.mark.parametrize(("file", "commands"), [
    ("optuna.db", [["study", "run", "SPEC"], ["study", "create", "SPEC"], ["study", "list"],
                   ["study", "show", "tiny"]]),
    ("mlflow.db", [["study", "run", "SPEC"], ["train", "SPEC"], ["report", "tiny"],
                   ["ui", "--port", "1"]]),
])
def test_a_database_of_another_application_is_refused(tmp_path, file, commands):
    store = tmp_path / "store"
    store.mkdir()
    _tables(store / file, "photos", "albums")
    before = snapshot(store)
    spec = write(tmp_path / "s.yaml", TINY_SPEC)
    for command in commands:
        argv = [spec if part == "SPEC" else part for part in command]
        one_error(ablate([*argv, "--store", store], tmp_path / "log"), str(store / file),
                  "another application")
    assert snapshot(store) == before


@pytest.fixture
def immutable() -> Iterator[list[Path]]:
    """Files made read-only even for root (``chattr +i``), made writable again after."""
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    files: list[Path] = []
    yield files
    for path in files:
        subprocess.run(["chattr", "-i", str(path)], check=False)


@pytest.mark.parametrize("file", ["optuna.db", "mlflow.db"])
def test_a_read_only_database_is_refused_before_any_write(store, tmp_path, immutable, file):
    path = store / file
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("this file system keeps no immutable flag")
    immutable.append(path)
    spec = write(tmp_path / "s.yaml", {**TINY_SPEC, "trials": 2})
    one_error(ablate(["study", "run", spec, "--store", store], tmp_path / "log"),
              str(path), "read-only")


def test_reading_commands_leave_the_store_as_it_was(store, tmp_path):
    out = tmp_path / "report.md"
    for command in (["report", "tiny"], ["report", "tiny", "--out", out], ["study", "list"],
                    ["study", "show", "tiny"], ["diff", "tiny:0", "tiny:0"]):
        code, lines = ablate([*command, "--store", store], tmp_path / "log")
        assert code == 0, (command, lines)  # and the fixture checks every byte


# ------------------------------------------------------------------------- the command line


@pytest.mark.parametrize(("argv", "needle"), [
    (["study", "run"], "Missing argument"),
    (["study", "run", "x", "--workers", "many"], "--workers"),
    (["study", "run", "x", "--bogus"], "--bogus"),
    (["nosuch"], "nosuch"),
    (["report"], "Missing argument"),
])
def test_usage_errors_are_one_line(tmp_path, argv, needle):
    line = one_error(ablate(argv, tmp_path / "log"), needle)
    assert "--help" in line


@pytest.mark.parametrize("gpus", ["abc", "0,x", "7", "-1"])
def test_gpus_that_name_no_gpu_of_this_machine(store, tmp_path, gpus):
    spec = write(tmp_path / "s.yaml", TINY_SPEC)
    one_error(ablate(["study", "run", spec, "--store", store, "--gpus", gpus],
                     tmp_path / "log"), "--gpus")


# --------------------------------------------------------------- files the process cannot read


@pytest.fixture
def as_nobody() -> Iterator[Path]:
    """A folder the user ``nobody`` may enter; commands run as nobody read files there (as
    root every file is readable, so unreadable files are tested without root's rights)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run a command as the user nobody")
    folder = Path(tempfile.mkdtemp(prefix="ablate-nobody-"))
    folder.chmod(0o777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def run_as_nobody(argv: list[object], cwd: Path) -> tuple[int, list[str]]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("ABLATE_STORE", "ABLATE_STORAGE", "MLFLOW_TRACKING_URI")}
    env.update(HOME=str(cwd), PYTHONPATH=str(REPO))
    proc = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                           sys.executable, "-m", "ablate.cli", *map(str, argv)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    return proc.returncode, lines


def _folder_data(root: Path) -> dict:
    rng = np.random.default_rng(0)
    for name in ("a", "b", "c", "d"):
        save_image(root / "data" / "images" / f"{name}.png",
                   rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
        save_image(root / "data" / "masks" / f"{name}.png",
                   rng.integers(0, 2, (32, 32), dtype=np.uint8))
    for path in root.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    data = {"task": "binary", "root": "data", "images": "images", "masks": "masks",
            "split_ratios": {"train": 0.5, "val": 0.5}, "batch_size": 2}
    return {**TINY_SPEC, "data": data}


@pytest.mark.parametrize("unreadable", ["spec.yaml", "data/images", "data/masks/c.png"])
def test_files_and_folders_the_process_cannot_read(as_nobody, unreadable):
    spec = write(as_nobody / "spec.yaml", _folder_data(as_nobody))
    spec.chmod(0o644)
    (as_nobody / unreadable).chmod(0o000)
    code, lines = run_as_nobody(["check", spec], as_nobody)
    assert code == 2, lines
    assert not any("Traceback" in line for line in lines), lines
    errors = [line for line in lines if line.startswith("error: ")]
    assert errors and any(str(as_nobody / unreadable) in line for line in errors), lines
    assert any("permission" in line.lower() or "not readable" in line for line in lines), lines
