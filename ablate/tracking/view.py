"""The saved view of a study's runs in the MLflow UI: trials only, sorted by the objective,
the columns that matter, the key charts first.

MLflow's UI keeps a shared view as the experiment tag ``mlflow.sharedViewState.<key>``: JSON
``{"name", "createdAt", "updatedAt", "state"}`` whose ``state`` is the runs page's UI state as
JSON text (``"deflate;" + base64(zlib(json))`` when long). The page opens it with
``viewStateShareKey=<key>`` in its address (:func:`ablate.tracking.names.runs_page`). Charts
are grouped in sections; a metric without a chart here gets one in the section named by its
prefix before "/" (created collapsed below ours), so every metric stays reachable.
"""

from __future__ import annotations

import base64
import json
import time
import zlib
from collections.abc import Sequence
from typing import Any

from ablate.tracking import names

TAG_LIMIT = 20_000  # MLflow's longest experiment tag value
_SPLIT_SECTIONS = ("val", "test", "train", "model", "run")  # collapsed, in this order
_CURVES = ("train_loss", "val_loss", "lr")
KEY_SECTION = "Objective and key figures (final: best epoch's weights, at {where})"
EPOCH_SECTION = "epoch/ curves (after each epoch, at the model's input size)"
WIDTH = 110  # px of a metric, param or tag column (the UI's default is wider)


def column(kind: str, key: str) -> str:
    """A runs-table column as the UI names it: ``metrics.`val/iou```."""
    return f"{kind}.`{key}`"


def on_test(metric: str) -> str | None:
    """The test-split counterpart of a ``val_`` metric name."""
    return "test_" + metric.removeprefix("val_") if metric.startswith("val_") else None


def _chart(uuid: str, section: str, kind: str, **fields: Any) -> dict[str, Any]:
    return {"uuid": uuid, "type": kind, "metricSectionId": section, "deleted": False,
            "isGenerated": False, "runsCountToCompare": 10, **fields}


def _bar(uuid: str, section: str, key: str) -> dict[str, Any]:
    return _chart(uuid, section, "BAR", metricKey=key)


def _line(uuid: str, section: str, key: str) -> dict[str, Any]:
    return _chart(uuid, section, "LINE", metricKey=key, lineSmoothness=0,
                  xAxisKey="step", xAxisScaleType="linear", scaleType="linear", range={},
                  selectedXAxisMetricKey="", yAxisKey="metric", yAxisExpressions=[],
                  ignoreOutliers=False, useGlobalXaxisKey=True, useGlobalLineSmoothing=True)


def _section(uuid: str, name: str, shown: bool) -> dict[str, Any]:
    return {"uuid": uuid, "name": name, "display": shown, "isReordered": True,
            "deleted": False, "isGenerated": False}


def charts(objectives: Sequence[tuple[str, str]], searched: Sequence[str],
           full_resolution: bool = True) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(charts, sections): the objectives and key figures, then the per-epoch curves, then
    one collapsed section per metric group."""
    first = objectives[0][0]
    key_figures: list[str] = [name for name, _ in objectives]
    test = on_test(first)
    for name in (test, "efficiency", "gflops", "latency_ms"):
        if name and name not in key_figures:
            key_figures.append(name)
    out = [_bar(f"ablate-key-{i}", "ablate-key", names.metric_key(name))
           for i, name in enumerate(key_figures)]
    if first != "gflops":
        out.append(_chart("ablate-key-scatter", "ablate-key", "SCATTER",
                          xaxis={"key": names.metric_key("gflops"), "type": "METRIC"},
                          yaxis={"key": names.metric_key(first), "type": "METRIC"}))
    if searched:
        out.append(_chart("ablate-key-parallel", "ablate-key", "PARALLEL",
                          selectedParams=list(searched),
                          selectedMetrics=[names.metric_key(first)]))
    curve = first if first.startswith("val_") else "val_loss"
    for i, name in enumerate(dict.fromkeys([curve, *_CURVES])):
        out.append(_line(f"ablate-epoch-{i}", "ablate-epoch", names.epoch_key(name)))
    # The section names tell the two readings of a val_ figure apart.
    where = "full resolution" if full_resolution else "the model's input size"
    sections = [_section("ablate-key", KEY_SECTION.format(where=where), True),
                _section("ablate-epoch", EPOCH_SECTION, True)]
    sections += [_section(f"ablate-{group}", group, False) for group in _SPLIT_SECTIONS]
    sections += [_section("ablate-other", "Model metrics", False),
                 _section("ablate-system", "System metrics", False)]
    return out, sections


def runs_view(objectives: Sequence[tuple[str, str]], searched: Sequence[str],
              components: Sequence[str], full_resolution: bool = True) -> dict[str, Any]:
    """The runs page state: ``objectives`` as (metric name, direction), the first one sorts;
    ``full_resolution``: where the final figures are measured (``eval.full_resolution``)."""
    first, direction = objectives[0]
    metrics = [name for name, _ in objectives]
    test = on_test(first)
    for name in (test, "gflops", "efficiency", "latency_ms"):
        if name and name not in metrics:
            metrics.append(name)
    columns = [column("tags", names.TAG_STATE)]
    if components:  # a design's configuration label (a search's is its trial number)
        columns.append(column("tags", names.TAG_CONFIG))
    columns.append(column("tags", names.TAG_SEED))
    columns += [column("metrics", names.metric_key(name)) for name in metrics]
    columns += [column("params", path) for path in searched]
    columns += [column("tags", names.COMPONENT_PREFIX + name) for name in components]
    chart_list, sections = charts(objectives, searched, full_resolution)
    return {
        "searchFilter": f"tags.`{names.TAG_ROLE}` = '{names.ROLE_TRIAL}'",
        "orderByKey": column("metrics", names.metric_key(first)),
        "orderByAsc": direction == "minimize",
        "selectedColumns": columns,
        "columnOrder": columns,
        "columnWidths": {c: WIDTH for c in columns},
        "compareRunCharts": chart_list,
        "compareRunSections": sections,
        "isAccordionReordered": True,
        "hideEmptyCharts": True,
        "chartsSearchFilter": "",
        "globalLineChartConfig": {"xAxisKey": "step", "lineSmoothness": 0,
                                  "selectedXAxisMetricKey": ""},
    }


def view_tag(study: str, state: dict[str, Any]) -> str:
    """The value of the view's experiment tag (the state compressed when it is long)."""
    text = json.dumps(state, separators=(",", ":"))
    if len(text) > TAG_LIMIT // 2:
        text = "deflate;" + base64.b64encode(zlib.compress(text.encode(), 9)).decode()
    now = int(time.time() * 1000)
    value = json.dumps({"name": f"ablate: {study} trials", "createdAt": now, "updatedAt": now,
                        "state": text})
    if len(value) > TAG_LIMIT:
        raise ValueError(f"the saved view of {study} is too long for an experiment tag")
    return value
