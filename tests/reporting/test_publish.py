"""A study as the MLflow UI shows it: written by ``ablate study run``, then moved.

One tiny 2-trial study is run in a subprocess into one folder, copied to another and the
original removed; every test here reads the moved copy: the experiment's kind, description
and saved view, the study run's summary, each trial's description, the full report as one
HTML file, and (through ``ablate ui``'s REST endpoints) every trial's ``config.yaml``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient

from ablate.reporting.publish import Pace, Publisher
from ablate.spec import spec_from_dict
from ablate.stores import resolve_stores
from ablate.testing.fixtures import sqlite_store
from ablate.tracking import names as keys
from ablate.tracking import notes, view
from tests.conftest import REPO, spec_dict
from tests.tracking.test_ui import UiProcess, free_port, get, post

pytestmark = pytest.mark.slow  # trains, or starts processes or servers

SPEC = spec_dict(description="A tiny study for the UI tests.")


@pytest.fixture(scope="module")
def moved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The store of a finished ``ablate study run``, moved to another folder."""
    root = tmp_path_factory.mktemp("publish")
    (root / "spec.yaml").write_text(yaml.safe_dump(SPEC))
    original = root / "original"
    sqlite_store(original)  # an already migrated mlflow.db, as the `store` fixture makes
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for var in ("ABLATE_STORE", "MLFLOW_TRACKING_URI", "ABLATE_STORAGE"):
        env.pop(var, None)
    done = subprocess.run(
        [sys.executable, "-m", "ablate.cli", "study", "run", str(root / "spec.yaml"),
         "--store", str(original), "--quiet"],
        capture_output=True, text=True, env=env, cwd=root,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "warning" not in done.stdout + done.stderr
    target = root / "moved"
    shutil.copytree(original, target)
    shutil.rmtree(original)
    return target


def client_of(store: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")


def runs_of(store: Path, role: str) -> list:
    client = client_of(store)
    experiment = client.get_experiment_by_name("tiny").experiment_id
    return client.search_runs([experiment], filter_string=f"tags.`{keys.TAG_ROLE}` = '{role}'",
                              order_by=["attributes.start_time ASC"])


def test_moved_store_opens_in_ablate_ui_with_kind_description_and_artifacts(moved: Path):
    port = free_port()
    ui = UiProcess(moved, port)
    try:
        address = ui.address()
        server = f"http://127.0.0.1:{port}"
        experiments = post(server, "/experiments/search", {"max_results": 100})["experiments"]
        study = next(e for e in experiments if e["name"] == "tiny")
        assert address == (f"{server}/#/experiments/{study['experiment_id']}/runs"
                           "?viewStateShareKey=ablate&workflowType=machine_learning")
        tags = {t["key"]: t["value"] for t in study["tags"]}
        assert tags[keys.TAG_EXPERIMENT_KIND] == "custom_model_development"
        description = tags[keys.TAG_NOTE]
        assert "| config" in description and "val_iou (mean ± std)" in description
        assert "trial-0" in description and "trial-1" in description
        assert keys.TAG_VIEW in tags

        runs = post(server, "/runs/search", {
            "experiment_ids": [study["experiment_id"]],
            "filter": f"tags.`{keys.TAG_ROLE}` = 'trial'", "max_results": 100,
        })["runs"]
        assert len(runs) == 2
        for run in runs:
            run_id = run["info"]["run_id"]
            listed = json.loads(get(f"{server}/ajax-api/2.0/mlflow/artifacts/list"
                                    f"?run_id={run_id}"))
            assert "config.yaml" in {f["path"] for f in listed["files"]}
            config = yaml.safe_load(get(f"{server}/get-artifact?path=config.yaml"
                                        f"&run_uuid={run_id}"))
            params = {p["key"]: p["value"] for p in run["data"]["params"]}
            assert str(config["optim"]["lr"]) == params["optim.lr"]
        parent = post(server, "/runs/search", {
            "experiment_ids": [study["experiment_id"]],
            "filter": f"tags.`{keys.TAG_ROLE}` = 'parent'", "max_results": 1,
        })["runs"][0]["info"]["run_id"]
        page = get(f"{server}/get-artifact?path={keys.REPORT_ARTIFACT}&run_uuid={parent}")
        assert b"<h2>Ablation table</h2>" in page and b"data:image/png;base64," in page
    finally:
        code, stderr = ui.stop(signal.SIGTERM)
    assert code == 0 and "Traceback" not in stderr


def test_study_run_summarises_the_study(moved: Path):
    (parent,) = runs_of(moved, keys.ROLE_PARENT)
    trials = runs_of(moved, keys.ROLE_TRIAL)
    metrics, tags = parent.data.metrics, parent.data.tags
    assert metrics["study/trials_complete"] == 2
    assert metrics["study/trials_pruned"] == metrics["study/trials_failed"] == 0
    values = {t.info.run_id: t.data.metrics["val/iou"] for t in trials}
    best = max(values, key=values.get)
    assert tags[keys.TAG_BEST_RUN] == best
    assert metrics["study/best_val_iou"] == pytest.approx(values[best])
    # the description: the summary line, the spec's description, the table, the report
    note = tags[keys.TAG_NOTE]
    assert note.startswith("**tiny** · search, objective `val_iou` (maximize) · 2 complete")
    assert "A tiny study for the UI tests." in note and "| config" in note
    assert f"runs/{best}?workflowType=machine_learning" in note
    assert (f"runs/{parent.info.run_id}/artifacts/report.html?workflowType=machine_learning"
            in note)
    assert "`ablate report tiny --format html" in note
    # its params are the base spec, named apart from the values a trial ran with
    assert parent.data.params["spec.optim.lr"] == "0.01"
    assert not any(key.startswith("optim.") for key in parent.data.params)
    assert tags[keys.TAG_SOURCE_NAME].endswith("spec.yaml")
    assert tags[keys.TAG_SOURCE_TYPE] == "LOCAL"
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{moved / 'optuna.db'}")
    assert study.metric_names == ["val_iou"]  # optuna-dashboard's axis label


def test_trial_descriptions_say_what_each_trial_is(moved: Path):
    for run in runs_of(moved, keys.ROLE_TRIAL):
        head, _, rest = run.data.tags[keys.TAG_NOTE].partition("\n\n")
        lr = float(run.data.params["optim.lr"])
        hflip = "Y" if run.data.params["augment.hflip"] == "True" else "N"
        value = run.data.metrics["val/iou"]
        assert head == (f"{run.info.run_name} · augment.hflip={hflip}, optim.lr={lr:.4g} · "
                        f"seed 0 · val_iou {value:.4f}")
        assert "`val/iou` is measured at full resolution" in rest
        assert "`epoch/val_iou` curve at the model's input size" in rest
        assert run.data.tags[keys.TAG_SOURCE_NAME].endswith("spec.yaml")


def test_experiment_has_the_saved_view_of_its_trials(moved: Path):
    experiment = client_of(moved).get_experiment_by_name("tiny")
    saved = json.loads(experiment.tags[keys.TAG_VIEW])
    state = json.loads(saved["state"])
    assert state["searchFilter"] == "tags.`ablate.role` = 'trial'"
    assert state["orderByKey"] == "metrics.`val/iou`" and state["orderByAsc"] is False
    assert state["selectedColumns"][:2] == ["tags.`ablate.state`", "tags.`ablate.seed`"]
    for column in ("metrics.`test/iou`", "metrics.`model/gflops`", "metrics.`model/efficiency`",
                   "params.`optim.lr`", "params.`augment.hflip`"):
        assert column in state["selectedColumns"]
    first = [c["metricKey"] for c in state["compareRunCharts"][:2]]
    assert first == ["val/iou", "test/iou"]


def test_html_report_is_one_self_contained_file(cli, moved: Path, tmp_path: Path):
    out = tmp_path / "html" / "tiny.html"
    result = cli("report", "tiny", "--store", moved, "--format", "html", "--out", out)
    assert result.exit_code == 0, result.output
    assert [p.name for p in out.parent.iterdir()] == ["tiny.html"]
    page = out.read_text()
    sources = re.findall(r'src="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "href=" not in page and "http" not in page  # nothing to fetch: opens offline
    assert "<h2>Ablation table</h2>" in page and "<td>trial-0</td>" in page


def test_design_runs_name_their_components():
    state = view.runs_view([("val_miou", "maximize"), ("gflops", "minimize")], [],
                           ["hflip", "cutmix"], full_resolution=False)
    columns = state["selectedColumns"]
    assert columns[:3] == ["tags.`ablate.state`", "tags.`ablate.config`", "tags.`ablate.seed`"]
    assert columns[-2:] == ["tags.`ablate.component.hflip`", "tags.`ablate.component.cutmix`"]
    assert ["val/miou", "model/gflops"] == [c["metricKey"]
                                            for c in state["compareRunCharts"][:2]]
    assert "the model's input size" in state["compareRunSections"][0]["name"]
    config = spec_from_dict(SPEC).resolve({"augment.hflip": True})
    head = notes.run_head("trial-001", config, {"augment.hflip": True}, {"hflip": True},
                          "+hflip")
    assert head == "`+hflip` · hflip Y · seed 0"
    assert notes.run_note(head, config, "PRUNED", "pruned at epoch 1").startswith(
        "`+hflip` · hflip Y · seed 0 · pruned: pruned at epoch 1\n\n")


def test_publishing_never_fails_and_waits_after_a_costly_refresh():
    lines: list[str] = []
    stores = resolve_stores(tracking_uri=f"http://127.0.0.1:{free_port()}")
    publisher = Publisher(stores, "tiny", echo=lines.append)
    assert publisher.publish() is None
    assert len(lines) == 1 and lines[0].startswith("warning: the study summary in MLflow")
    # after refreshes that took 100 s, a finished trial does not refresh again at once
    publisher.summary_pace = Pace(100.0, time.monotonic())
    publisher.report_pace = Pace(100.0, time.monotonic())
    publisher(optuna.create_study(study_name="tiny"))
    assert len(lines) == 1
    # the first refresh pays the imports: its cost does not hold the next one back
    pace = Pace()
    pace.record(100.0)
    assert pace.cost == 0.0 and pace.due(time.monotonic())
    pace.record(100.0)
    assert pace.cost == 100.0 and not pace.due(time.monotonic())
