"""The ready studies in studies/ run end to end with their smoke profile, and report."""

from __future__ import annotations

import pytest

from ablate.data.standins import make_standin
from tests.conftest import REPO, SHARED_DATA

pytestmark = pytest.mark.slow  # trains, or starts processes or servers

CAMVID = ["road_efficiency", "lightweight_efficiency", "architecture_comparison"]
STANDINS = {"plants_multichannel": "plants", "satellite_binary": "satellite"}


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
