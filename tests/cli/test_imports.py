"""Read commands load only what they need: no torch, smp, timm, albumentations or fvcore.

Each command runs in one fresh interpreter (a subprocess) against a small real store; after
each one the test records which of those packages ``sys.modules`` holds, so the first command
that loads one is the one named in the failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.distributions import FloatDistribution

from ablate.spec import load_spec
from ablate.stores import resolve_stores
from ablate.study import create_study
from ablate.testing.fixtures import StoreWriter, binary_metrics
from tests.conftest import REPO, TINY_SPEC

pytestmark = pytest.mark.slow  # a fresh interpreter per run (~20 s)

BANNED = ("torch", "torchvision", "segmentation_models_pytorch", "timm", "albumentations",
          "fvcore")
# What makes a listing slow: pandas, and opening an Optuna storage (its ORM and alembic)
LISTING_BANNED = ("pandas", "alembic", "sqlalchemy.orm")

# Runs each command in this interpreter through typer's runner; prints per command the exit
# code, whether the expected text was printed and the banned packages loaded so far.
_SCRIPT = """
import json, sys, warnings
warnings.simplefilter("ignore")
from typer.testing import CliRunner
from ablate.cli import app
banned, commands = json.loads(sys.argv[1])
runner = CliRunner()
out = []
for args, expected in commands:
    result = runner.invoke(app, args)
    loaded = sorted(m for m in banned if m in sys.modules)
    out.append([" ".join(args), result.exit_code, expected in result.output, loaded])
print(json.dumps(out))
"""


def _store(tmp_path: Path) -> tuple[Path, list[str]]:
    """A store with a created study holding one complete trial (Optuna) and a study of three
    trial runs written with known numbers (MLflow); returns the folder and the run ids."""
    folder = tmp_path / "store"
    spec_path = tmp_path / "tiny.yaml"
    spec_path.write_text(yaml.safe_dump(TINY_SPEC))
    stores = resolve_stores(folder)
    create_study(load_spec(spec_path), stores, checked=True)
    study = optuna.load_study(study_name="tiny", storage=stores.storage)
    study.add_trial(optuna.trial.create_trial(
        params={"optim.lr": 0.005}, distributions={"optim.lr": FloatDistribution(1e-3, 1e-2)},
        value=0.625))
    writer = StoreWriter(stores.tracking_uri, "fx", search={"optim.lr": "float"})
    runs = [writer.trial(i, {**binary_metrics("val", 10 + i, 3, 2, 50),
                             **binary_metrics("test", 9, 3, 2, 50)},
                         searched={"optim.lr": 0.01 * (i + 1)},
                         params={"optim.lr": 0.01 * (i + 1)})
            for i in range(3)]
    return folder, runs


def test_read_commands_import_no_torch(tmp_path: Path) -> None:
    folder, runs = _store(tmp_path)
    store = ["--store", str(folder)]
    commands = [
        (["--help"], "study"),
        (["study", "--help"], "list"),
        (["report", "--help"], "--format"),
        (["study", "list", *store], "tiny"),
        (["study", "show", "tiny", *store], "0.625"),
        (["report", "fx", *store], "# Ablation report: fx"),
        (["report", "fx", *store, "--format", "json"], '"study"'),
        (["report", "fx", *store, "--format", "html"], "<html"),
        (["report", "fx", *store, "--out", str(tmp_path / "out" / "fx.md")], "report written"),
        (["diff", runs[0], runs[1], *store], "val_iou"),
    ]
    env = {k: v for k, v in os.environ.items()
           if k not in ("ABLATE_STORAGE", "MLFLOW_TRACKING_URI", "ABLATE_STORE")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, json.dumps([BANNED + LISTING_BANNED, commands])],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300, check=True,
    )
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert [(line, code, shown) for line, code, shown, _ in results] == [
        (" ".join(args), 0, True) for args, _ in commands
    ]
    loaded = {line: modules for line, _, _, modules in results}
    assert {line: [m for m in modules if m in BANNED] for line, modules in loaded.items()} == {
        " ".join(args): [] for args, _ in commands
    }
    # up to and including `study list`, nothing that makes a listing slow
    upto = [" ".join(args) for args, _ in commands[:4]]
    assert {line: loaded[line] for line in upto} == {line: [] for line in upto}
