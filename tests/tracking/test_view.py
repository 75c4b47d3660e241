"""The saved view of a study's runs: what MLflow's runs page is told to show (no server here;
tests/tracking/test_browser.py checks what a real browser shows)."""

from __future__ import annotations

import json
import zlib
from base64 import b64decode

from ablate.spec import spec_from_dict
from ablate.tracking import names, view
from tests.conftest import spec_dict

DESIGN = {"kind": "one_at_a_time", "repeats": 3, "components": [
    {"name": "hflip", "set": {"augment.hflip": True}},
    {"name": "lowlr", "set": {"optim.lr": 0.001}}]}


def design_view(design: dict) -> dict:
    spec = spec_dict(design=design)
    del spec["search"]
    return view.study_view(spec_from_dict(spec))


def metric_charts(state: dict) -> list[str]:
    return [c["metricKey"] for c in state["compareRunCharts"] if "metricKey" in c]


def test_a_design_with_repeats_groups_its_runs_and_shows_each_decision():
    state = design_view(DESIGN)
    columns = state["selectedColumns"]
    assert columns[:7] == ["tags.`ablate.state`", "tags.`ablate.config`",
                           "tags.`ablate.decision`", "tags.`ablate.delta`", "tags.`ablate.ci`",
                           "tags.`ablate.p_adj`", "tags.`ablate.seed`"]
    assert columns[-2:] == ["tags.`ablate.component.hflip`", "tags.`ablate.component.lowlr`"]
    assert state["groupBy"] == {"aggregateFunction": "average", "groupByKeys": [
        {"mode": "tag", "groupByData": names.TAG_CONFIG}]}
    # every run in the charts, not MLflow's first 10, and not the groups' means
    assert state["runsHiddenMode"] == "SHOW_ALL"
    assert state["useGroupedValuesInCharts"] is False
    assert all(c["runsCountToCompare"] >= 1000 for c in state["compareRunCharts"])
    assert state["columnWidths"]["tags.`ablate.ci`"] > view.WIDTH


def test_cost_charts_only_where_the_study_can_change_the_cost():
    fixed = design_view(DESIGN)
    assert metric_charts(fixed)[:2] == ["val/iou", "test/iou"]
    cost = {names.metric_key(n) for n in view.COST_FIGURES}
    assert not cost & set(metric_charts(fixed))
    assert not any(c["type"] == "SCATTER" for c in fixed["compareRunCharts"])
    assert not {view.column("metrics", key) for key in cost} & set(fixed["selectedColumns"])

    depth = {**DESIGN, "components": [*DESIGN["components"],
                                      {"name": "deep", "set": {"model.encoder_depth": 4}}]}
    varied = design_view(depth)
    assert cost <= set(metric_charts(varied))
    assert any(c["type"] == "SCATTER" for c in varied["compareRunCharts"])
    search = view.study_view(spec_from_dict(spec_dict(search={
        "data.size": {"type": "categorical", "choices": [[32, 32], [64, 64]]}})))
    assert "model/gflops" in metric_charts(search)


def test_a_search_without_repeats_lists_its_trials_flat():
    state = view.study_view(spec_from_dict(spec_dict()))
    assert state["groupBy"] is None and state["runsHiddenMode"] == "SHOW_ALL"
    assert state["selectedColumns"][:3] == ["tags.`ablate.state`", "tags.`ablate.seed`",
                                            "metrics.`val/iou`"]
    assert not any("decision" in c for c in state["selectedColumns"])
    assert {"params.`optim.lr`", "params.`augment.hflip`"} <= set(state["selectedColumns"])
    assert any(c["type"] == "PARALLEL" for c in state["compareRunCharts"])
    repeated = view.study_view(spec_from_dict(spec_dict(design={"repeats": 2})))
    assert repeated["groupBy"] is not None
    assert "tags.`ablate.config`" in repeated["selectedColumns"]


def test_loss_curves_on_a_log_axis_the_others_linear():
    state = view.runs_view([("val_iou", "maximize")], [], [])
    scales = {c["metricKey"]: c["scaleType"] for c in state["compareRunCharts"]
              if c["type"] == "LINE"}
    assert scales == {"epoch/val_iou": "linear", "epoch/train_loss": "log",
                      "epoch/val_loss": "log", "epoch/lr": "linear"}
    assert not any(c["ignoreOutliers"] for c in state["compareRunCharts"] if c["type"] == "LINE")


def test_view_tag_is_the_envelope_mlflow_lists_and_compresses_long_states():
    state = design_view(DESIGN)
    envelope = json.loads(view.view_tag("oat", state))
    assert envelope["name"] == "ablate: oat trials"
    assert isinstance(envelope["createdAt"], int)
    assert json.loads(envelope["state"]) == state
    long = {**state, "chartsSearchFilter": "x" * view.TAG_LIMIT}
    packed = json.loads(view.view_tag("oat", long))["state"]
    assert packed.startswith("deflate;")
    assert json.loads(zlib.decompress(b64decode(packed.removeprefix("deflate;")))) == long
