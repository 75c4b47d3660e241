"""A study as the MLflow UI shows it: written by ``ablate study run``, then moved.

One tiny 2-trial study is run in a subprocess into one folder, copied to another and the
original removed; every test here reads the moved copy: the experiment's kind, description
and saved view, the study run's summary, each trial's description, the full report as one
HTML file, and (through ``ablate ui``'s REST endpoints) every trial's ``config.yaml``. A tiny
one-at-a-time design with repeats, run the same way, shows each trial run's decision against
the baseline; stores written with known values (no training) show how the decision tags are
refreshed as trials finish.
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

from ablate.reporting.publish import Pace, Publisher, current_tags, summarize
from ablate.reporting.runs import parse
from ablate.spec import spec_from_dict
from ablate.stores import resolve_stores
from ablate.testing.fixtures import StoreWriter, sqlite_store
from ablate.tracking import Tracker, fetch, notes, view
from ablate.tracking import names as keys
from tests.conftest import REPO, spec_dict
from tests.tracking.test_ui import UiProcess, free_port, get, post

pytestmark = pytest.mark.slow  # trains, or starts processes or servers

SPEC = spec_dict(description="A tiny study for the UI tests.")
# A one-at-a-time design with repeats: 3 configurations x 2 seeds, 1 epoch at 32 px.
DESIGN_SPEC = {k: v for k, v in spec_dict(name="oat").items() if k != "search"} | {
    "eval": {"gallery": 0, "latency_repeats": 0, "save_weights": "none"},
    "design": {"kind": "one_at_a_time", "repeats": 2, "components": [
        {"name": "hflip", "set": {"augment.hflip": True}},
        {"name": "lowlr", "set": {"optim.lr": 0.001}}]}}


def run_study(spec: dict, folder: Path) -> Path:
    """The store (in ``folder``) of ``ablate study run`` on ``spec``, run in a subprocess."""
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec))
    store = folder / "store"
    sqlite_store(store)  # an already migrated mlflow.db, as the `store` fixture makes
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for var in ("ABLATE_STORE", "MLFLOW_TRACKING_URI", "ABLATE_STORAGE"):
        env.pop(var, None)
    done = subprocess.run(
        [sys.executable, "-m", "ablate.cli", "study", "run", str(folder / "spec.yaml"),
         "--store", str(store), "--quiet"],
        capture_output=True, text=True, env=env, cwd=folder,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "warning" not in done.stdout + done.stderr
    return store


@pytest.fixture(scope="module")
def moved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The store of a finished ``ablate study run``, moved to another folder."""
    root = tmp_path_factory.mktemp("publish")
    original = run_study(SPEC, root)
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
        assert "| &nbsp;config&nbsp;" in description and "val_iou (mean ± std)" in description
        assert "trial-000" in description and "trial-001" in description
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
    assert "A tiny study for the UI tests." in note and "| &nbsp;config&nbsp;" in note
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
        # one naming: the run, its configuration label and the report's tables
        assert run.info.run_name == run.data.tags[keys.TAG_CONFIG] == keys.trial_label(
            int(run.data.tags[keys.TAG_TRIAL]))
        searched = {k for k in run.data.tags if k.startswith(keys.SEARCHED_PREFIX)}
        assert searched == {keys.SEARCHED_PREFIX + "optim.lr",
                            keys.SEARCHED_PREFIX + "augment.hflip"}
        assert not any(k in run.data.tags for k in keys.DECISION_TAGS)  # no baseline


def test_experiment_has_the_saved_view_of_its_trials(moved: Path):
    experiment = client_of(moved).get_experiment_by_name("tiny")
    saved = json.loads(experiment.tags[keys.TAG_VIEW])
    state = json.loads(saved["state"])
    assert state["searchFilter"] == "tags.`ablate.role` = 'trial'"
    assert state["orderByKey"] == "metrics.`val/iou`" and state["orderByAsc"] is False
    assert state["selectedColumns"][:2] == ["tags.`ablate.state`", "tags.`ablate.seed`"]
    for column in ("metrics.`test/iou`", "params.`optim.lr`", "params.`augment.hflip`"):
        assert column in state["selectedColumns"]
    first = [c["metricKey"] for c in state["compareRunCharts"][:2]]
    assert first == ["val/iou", "test/iou"]
    # learning rate and flips leave the network as it is: no cost columns or charts
    charts = {c.get("metricKey") for c in state["compareRunCharts"]}
    assert "model/gflops" not in charts and "metrics.`model/gflops`" not in state["selectedColumns"]
    assert state["runsHiddenMode"] == "SHOW_ALL" and state["groupBy"] is None


def test_html_report_is_one_self_contained_file(cli, moved: Path, tmp_path: Path):
    out = tmp_path / "html" / "tiny.html"
    result = cli("report", "tiny", "--store", moved, "--format", "html", "--out", out)
    assert result.exit_code == 0, result.output
    assert [p.name for p in out.parent.iterdir()] == ["tiny.html"]
    page = out.read_text()
    sources = re.findall(r'src="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "href=" not in page and "http" not in page  # nothing to fetch: opens offline
    assert "<h2>Ablation table</h2>" in page and "<td>trial-000</td>" in page


def test_design_runs_name_their_components():
    state = view.runs_view([("val_miou", "maximize"), ("gflops", "minimize")], [],
                           ["hflip", "cutmix"], full_resolution=False)
    columns = state["selectedColumns"]
    assert columns[:3] == ["tags.`ablate.state`", "tags.`ablate.config`",
                           "tags.`ablate.decision`"]
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


@pytest.fixture(scope="module")
def design(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The store of a finished one-at-a-time design with repeats."""
    return run_study(DESIGN_SPEC, tmp_path_factory.mktemp("design"))


def test_every_trial_run_of_a_design_carries_its_decision(cli, design: Path, tmp_path: Path):
    client = client_of(design)
    experiment = client.get_experiment_by_name("oat")
    runs = client.search_runs([experiment.experiment_id],
                              filter_string=f"tags.`{keys.TAG_ROLE}` = 'trial'")
    assert len(runs) == 6
    out = tmp_path / "oat.json"
    assert cli("report", "oat", "--store", design, "--format", "json", "--out", out
               ).exit_code == 0
    table = {row["config"]: row for row in json.loads(out.read_text())["tables"]["ablation"][
        "rows"]}
    for run in runs:
        tags, label = run.data.tags, run.data.tags[keys.TAG_CONFIG]
        assert not any(k.startswith(keys.SEARCHED_PREFIX) for k in tags)  # nothing sampled
        if label == "baseline":
            assert (tags[keys.TAG_DECISION], tags[keys.TAG_DELTA]) == ("baseline", "0")
            continue
        row = table[label]  # the report's comparison of this configuration with the baseline
        assert tags[keys.TAG_DECISION] == row["decision"]
        assert float(tags[keys.TAG_DELTA]) == pytest.approx(row["delta"], rel=1e-3)
        low, high = (float(v) for v in tags[keys.TAG_CI].strip("[]").split(", "))
        assert low == pytest.approx(row["ci_low"], rel=1e-2)
        assert high == pytest.approx(row["ci_high"], rel=1e-2)
        assert float(tags[keys.TAG_P_ADJ]) == pytest.approx(row["p_adj"], rel=1e-2)
    # the saved view shows them, one group per configuration, every run in the charts
    state = json.loads(json.loads(experiment.tags[keys.TAG_VIEW])["state"])
    for tag in keys.DECISION_TAGS:
        assert view.column("tags", tag) in state["selectedColumns"]
    assert state["groupBy"]["groupByKeys"] == [{"mode": "tag", "groupByData": "ablate.config"}]
    assert state["runsHiddenMode"] == "SHOW_ALL"
    # the description's table: a few columns, each cell padded for MLflow's renderer
    note = experiment.tags[keys.TAG_NOTE]
    header = next(line for line in note.splitlines() if "config" in line and "|" in line)
    assert "&nbsp;decision&nbsp;" in header and "BCa" not in header and "gain" not in header


def _design_trial(writer: StoreWriter, trial: int, config: str, seed: int, value: float) -> None:
    writer.trial(trial, {"val_iou": value}, config=config, repeat=seed, seed=seed,
                 components={"up": config == "+up", "down": config == "+down"})


def test_decision_tags_follow_the_study_and_are_written_when_they_change(tmp_path: Path):
    uri = sqlite_store(tmp_path / "store")
    writer = StoreWriter(uri, "known", design="one_at_a_time", baseline="baseline",
                         components=["up", "down"])
    base = [0.50, 0.70, 0.30, 0.60]
    trial = 0
    for seed, value in enumerate(base[:3]):
        for config, shift in (("baseline", 0.0), ("+up", 0.05), ("+down", -0.05)):
            _design_trial(writer, trial, config, seed, value + shift)
            trial += 1
    _design_trial(writer, trial, "+up", 3, 0.9)  # its baseline seed is missing yet
    stores = resolve_stores(tracking_uri=uri)
    assert Publisher(stores, "known").publish(html=False) is not None

    def tags_by_config() -> dict[str, set[tuple]]:
        found: dict[str, set[tuple]] = {}
        for run in client_of(tmp_path / "store").search_runs([writer.experiment]):
            if run.data.tags.get(keys.TAG_ROLE) == "trial":
                found.setdefault(run.data.tags[keys.TAG_CONFIG], set()).add(
                    tuple(run.data.tags.get(k) for k in keys.DECISION_TAGS))
        return found

    first = tags_by_config()
    assert first["baseline"] == {("baseline", "0", None, None)}
    (up,) = first["+up"]  # all four runs, the unpaired one included, carry the same tags
    # seed 3 has no baseline run: Welch's comparison, 0.6375 - 0.5
    assert up[0] == "undecided" and up[1] == "+0.1375" and up[2].startswith("[")
    (down,) = first["+down"]
    assert down[1] == "-0.05"
    # nothing changed: nothing to write
    tracker = Tracker(stores, write=False)
    frame = fetch(stores, "known")
    summary = summarize(parse(frame, "known"), tracker.find_parent("known"), html=False,
                        current=current_tags(frame))
    assert summary.run_tags == {}
    # the baseline's fourth seed pairs +up's: its difference and interval are refreshed
    _design_trial(writer, trial + 1, "baseline", 3, base[3])
    Publisher(stores, "known").publish(html=False)
    (refreshed,) = tags_by_config()["+up"]
    assert refreshed[1] == "+0.1125"  # paired by seed now: (3 x 0.05 + 0.3) / 4
    assert refreshed[2] != up[2]
    # +down's seeds are as they were; its adjusted p moves with the family's (Holm)
    assert {t[:3] for t in tags_by_config()["+down"]} == {down[:3]}
