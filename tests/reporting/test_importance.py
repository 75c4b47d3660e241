"""fANOVA importances: stored by the study when it publishes its report, reused by a report only
while their inputs are the same, so a fresh ``ablate report`` does not import scikit-learn."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from ablate.reporting import assemble, load_runs
from ablate.reporting.publish import Publisher
from ablate.stores import resolve_stores
from ablate.testing.fixtures import StoreWriter, binary_metrics, sqlite_store
from ablate.tracking import names as keys
from tests.conftest import REPO
from tests.reporting.test_drawing import _undated

SEARCH = {"optim.lr": "float", "augment.hflip": "bool", "model.arch": "categorical"}


def _trial(writer: StoreWriter, trial: int, rng: np.random.Generator) -> None:
    lr, hflip, arch = float(10 ** rng.uniform(-4, -2)), bool(trial % 2), ["Unet", "FPN"][
        trial % 3 == 0]
    value = 0.5 + 0.05 * np.log10(lr / 1e-4) + 0.1 * hflip + rng.normal(0, 0.01)
    metrics = {**binary_metrics("val", 90, 10, 5, 895), "val_iou": value,
               "gflops": 1.0 + (arch == "FPN"), "params": 1e6}
    writer.trial(trial, metrics, searched={"optim.lr": lr, "augment.hflip": hflip,
                                           "model.arch": arch})


@pytest.fixture
def search(tmp_path):
    """A search study of 12 trials; returns its stores and writer."""
    uri = sqlite_store(tmp_path / "store")
    writer = StoreWriter(uri, "search", design="search", thresholds=[0.5], search=SEARCH)
    rng = np.random.default_rng(0)
    for trial in range(12):
        _trial(writer, trial, rng)
    return resolve_stores(tmp_path / "store", tracking_uri=uri), writer


def _shown(report: assemble.Report) -> dict[str, float]:
    section = next(s for s in report.sections if s.title == "Parameter importance")
    data = section.table.data
    return dict(zip(data["parameter"], data["importance"], strict=True))


def test_stored_importances_are_reused_only_while_their_inputs_are_the_same(search):
    stores, writer = search
    report = assemble.build(load_runs(stores, "search"))
    computed = _shown(report)
    assert set(computed) == set(SEARCH) and sum(computed.values()) == pytest.approx(1.0)
    assert report.importance is not None and report.importance["scores"] == computed
    # stored with the same key (made-up scores, to see which ones the report shows)
    marked = {"optim.lr": 0.5, "augment.hflip": 0.3, "model.arch": 0.2}
    client = MlflowClient(stores.tracking_uri)
    client.set_tag(writer.parent_id, keys.TAG_IMPORTANCE,
                   json.dumps({"key": report.importance["key"], "scores": marked}))
    assert _shown(assemble.build(load_runs(stores, "search"))) == marked
    # one more trial changes the inputs: computed again, never the stored ones
    _trial(writer, 12, np.random.default_rng(1))
    again = assemble.build(load_runs(stores, "search"))
    assert again.importance["key"] != report.importance["key"]
    assert _shown(again) != marked and sum(_shown(again).values()) == pytest.approx(1.0)


_REPORT = """
import sys
from ablate.cli import main
sys.argv = ["ablate", "report", "search", "--store", sys.argv[1], "--out", sys.argv[2]]
try:
    main()
except SystemExit as done:
    assert not done.code, done.code
print("sklearn" in sys.modules)
"""


def _imports_sklearn(store, out) -> bool:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get(
        "PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", _REPORT, str(store), str(out)], env=env,
                          capture_output=True, text=True, timeout=300, check=True)
    return done.stdout.strip().splitlines()[-1] == "True"


@pytest.mark.slow
def test_a_published_study_reports_without_scikit_learn(search, tmp_path):
    stores, writer = search
    assert _imports_sklearn(tmp_path / "store", tmp_path / "before" / "r.md")  # none stored yet
    assert Publisher(stores, "search").publish(html=True) is not None
    tags = MlflowClient(stores.tracking_uri).get_run(writer.parent_id).data.tags
    stored = json.loads(tags[keys.TAG_IMPORTANCE])
    fresh = assemble.build(load_runs(stores, "search"))
    assert stored == fresh.importance
    assert not _imports_sklearn(tmp_path / "store", tmp_path / "after" / "r.md")
    before, after = ((tmp_path / n / "r.md").read_text() for n in ("before", "after"))
    assert _undated(after) == _undated(before)  # the same report, importance table included
