"""The ready studies in studies/ run end to end with their smoke profile, and report; their
cpu profiles point at the real data sets and pass ``ablate check``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ablate import load_spec
from ablate.data.standins import make_standin
from tests.conftest import REPO, REQUIRE_SERVERS_ENV, SHARED_DATA

pytestmark = pytest.mark.slow  # trains, or starts processes or servers

CAMVID = ["road_efficiency", "lightweight_efficiency", "architecture_comparison"]
STANDINS = {"plants_multichannel": "plants", "satellite_binary": "satellite"}
# the real data set each study's cpu profile trains on (../shared/data/<name>)
CPU_DATA = {"plants_multichannel": "cwfid", "satellite_binary": "amazon",
            "quickstart": "membrane", "membrane_cumulative": "membrane",
            **{name: "camvid" for name in CAMVID}}


@pytest.mark.parametrize("name", list(STANDINS) + CAMVID + ["quickstart", "membrane_cumulative"])
def test_study_smoke_profile_runs_and_reports(cli, store, tmp_path, monkeypatch, name):
    monkeypatch.chdir(REPO)  # the architecture comparison imports tests.custom_models
    args = ["study", "run", REPO / "studies" / f"{name}.yaml", "--store", store, "--quiet"]
    study = f"{name}_smoke"
    if name in STANDINS:
        root = tmp_path / "data"
        make_standin(STANDINS[name], root, num_images=16 if name == "plants_multichannel"
                     else 20, size=64)
        args += ["--profile", "smoke", "--set", f"data.root={root}"]
    elif name in CAMVID:
        if not (SHARED_DATA / "camvid").is_dir():
            pytest.skip("../shared/data/camvid not available")
        args += ["--profile", "smoke"]
    else:
        if not (SHARED_DATA / "membrane").is_dir():
            pytest.skip("../shared/data/membrane not available")
        args += ["--profile", "smoke"]
    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert "COMPLETE" in result.output
    report = cli("report", study, "--store", store, "--out", tmp_path / "report.md")
    assert report.exit_code == 0, report.output
    text = (tmp_path / "report.md").read_text()
    assert "## Ablation table" in text and "## Efficiency" in text
    if name == "membrane_cumulative":  # 2 seeds decide nothing: MDE and seeds needed shown
        table = text.split("## Ablation table")[1].split("\n\n")[3]
        header = [cell.strip() for cell in table.splitlines()[0].split("|")]
        assert {"MDE", "seeds needed", "decision"} <= set(header)
        assert table.count("| undecided") == 3  # every row but the baseline
        assert "## Cumulative steps" in text and "the target effect 0.02" in text


def shared(name: str) -> Path:
    """``../shared/data/<name>``; skipped loudly (failed under ABLATE_REQUIRE_SERVERS) when it
    is not there."""
    folder = SHARED_DATA / name
    if not folder.is_dir():
        message = (f"REAL-DATA TESTS NOT RUN: {folder} not found; the shared data sets are "
                   f"described in {SHARED_DATA}/README.md")
        if os.environ.get(REQUIRE_SERVERS_ENV):
            pytest.fail(message)
        pytest.skip(message)
    return folder


@pytest.mark.parametrize("name", sorted(CPU_DATA))
def test_cpu_profile_is_real_data_and_passes_check(cli, monkeypatch, name):
    folder = shared(CPU_DATA[name])
    monkeypatch.chdir(REPO)
    spec_file = REPO / "studies" / f"{name}.yaml"
    spec = load_spec(spec_file, profile="cpu")
    assert spec.name == f"{name}_cpu"  # its own study: never mixed with the full-size runs
    assert Path(spec.data.root).resolve() == folder.resolve() and spec.data.synthetic is None
    result = cli("check", spec_file, "--profile", "cpu")
    assert result.exit_code == 0, result.output
    assert f"ok: {folder.resolve()}: train " in result.output
