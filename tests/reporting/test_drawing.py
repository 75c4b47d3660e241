"""The report's figures drawn by forked helpers: the same files as drawn in the report's own
process, and a failed or killed helper is one clear error with no report written."""

from __future__ import annotations

import os
import re
import signal

import numpy as np
import pandas as pd
import pytest

from ablate.errors import AblateError
from ablate.reporting.assemble import write_report
from ablate.reporting.drawing import Drawer, ForkedDrawer, start_drawer
from ablate.stores import resolve_stores
from ablate.testing.fixtures import StoreWriter, binary_metrics, sqlite_store


def _undated(text: str) -> str:
    """The report without the minute it was generated at."""
    return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d", "<when>", text)


SEARCH = {"optim.lr": "float", "augment.hflip": "bool", "model.arch": "categorical"}


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """A search study of 10 trials with two cost figures (so all three plots are drawn)."""
    folder = tmp_path_factory.mktemp("drawing")
    uri = sqlite_store(folder)
    writer = StoreWriter(uri, "search", design="search", thresholds=[0.5], search=SEARCH)
    rng = np.random.default_rng(0)
    for trial in range(10):
        arch = ["Unet", "FPN"][trial % 2]
        value = float(0.5 + 0.1 * rng.uniform())
        metrics = {**binary_metrics("val", 90, 10, 5, 895), "val_iou": value,
                   "gflops": 1.0 + (arch == "FPN"), "params": 1e6}
        writer.trial(trial, metrics, searched={"optim.lr": float(10 ** rng.uniform(-4, -2)),
                                               "augment.hflip": bool(trial % 3),
                                               "model.arch": arch})
    return resolve_stores(folder, tracking_uri=uri)


def test_helpers_draw_the_same_files_as_the_report_process(stores, tmp_path):
    text, serial = write_report(stores, "search", out=tmp_path / "serial" / "r.md")
    with ForkedDrawer() as drawer:
        forked_text, forked = write_report(stores, "search", out=tmp_path / "forked" / "r.md",
                                           drawer=drawer)
    assert sorted(p.name for p in serial) == ["r.md", "r_history.png", "r_parallel.png",
                                              "r_pareto.png"]
    assert _undated(forked_text) == _undated(text)
    assert [p.read_bytes() for p in forked] == [p.read_bytes() for p in serial]
    assert not drawer._process.is_alive()


def test_a_figure_that_fails_is_one_error_naming_it(tmp_path):
    broken = pd.DataFrame({"trial": [0, 1]})  # no value / best columns
    for drawer in (ForkedDrawer(), Drawer()):
        with drawer, pytest.raises((AblateError, KeyError)) as failed:
            drawer.draw("history_plot", broken, "val_iou", tmp_path / "h.png")
            drawer.close()
        if isinstance(drawer, ForkedDrawer):
            assert failed.type is AblateError
            assert "h.png: KeyError" in str(failed.value)
            assert not drawer._process.is_alive()
    assert not (tmp_path / "h.png").exists()


def test_a_killed_helper_leaves_no_report(stores, tmp_path):
    out = tmp_path / "r.md"
    with ForkedDrawer() as drawer:
        os.kill(drawer._process.pid, signal.SIGKILL)  # the worst instant: before any figure
        drawer._process.join(timeout=30)
        with pytest.raises(AblateError, match="ended early; nothing was written|ended early"):
            write_report(stores, "search", out=out, drawer=drawer)
    assert not out.exists() and not out.with_name("r.md.tmp").exists()


def test_start_drawer_forks_only_when_asked():
    assert type(start_drawer(parallel=False)) is Drawer
    with start_drawer() as drawer:
        assert isinstance(drawer, ForkedDrawer)


def test_a_report_that_fails_stops_its_helper_and_writes_nothing(tmp_path):
    with pytest.raises(AblateError, match="no MLflow store"):
        with ForkedDrawer() as drawer:
            write_report(resolve_stores(tmp_path / "empty"), "nothing",
                         out=tmp_path / "r.md", drawer=drawer)
    assert not drawer._process.is_alive()
    assert not (tmp_path / "r.md").exists()
