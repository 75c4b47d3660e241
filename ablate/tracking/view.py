"""The saved view of a study's runs in the MLflow UI: trials only, sorted by the objective,
grouped by configuration when configurations have repeats, the columns that matter (the
decision of each configuration against the baseline among them), every run in the charts.

MLflow's UI keeps a saved view as the experiment tag ``mlflow.sharedViewState.<key>``: JSON
``{"name", "createdAt", "updatedAt", "state"}`` whose ``state`` is the runs page's UI state as
JSON text (``"deflate;" + base64(zlib(json))`` when long). The page opens it with
``viewStateShareKey=<key>`` in its address (:func:`ablate.tracking.names.runs_page`); its
"Views" menu lists it by name. Charts are grouped in sections; a metric without a chart here
gets one in the section named by its prefix before "/" (created collapsed below ours), so every
metric stays reachable. What MLflow does with the view (and what it does not) is in docs/ui.md.
"""

from __future__ import annotations

import base64
import json
import time
import zlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ablate.tracking import names

if TYPE_CHECKING:
    from ablate.spec import StudySpec

TAG_LIMIT = 20_000  # MLflow's longest experiment tag value
_SPLIT_SECTIONS = ("val", "test", "train", "model", "run")  # collapsed, in this order
_CURVES = ("train_loss", "val_loss", "lr")
KEY_SECTION = "Objective and key figures (final: best epoch's weights, at {where})"
EPOCH_SECTION = "epoch/ curves (after each epoch, at the model's input size)"
WIDTH = 110  # px of a metric, param or tag column (the UI's default is wider)
WIDE = {names.TAG_CI: 170, names.TAG_DECISION: 125}  # px of columns whose text is longer
# The cost figures (GFLOPs, latency, efficiency) and the settings that change them: the network
# and the shape of its input. A study varying none of these has one cost: its charts and
# columns would show the same bar for every run.
COST_FIGURES = ("gflops", "efficiency", "latency_ms")
COST_PATHS = ("model.", "data.size", "data.crop", "data.channels", "data.keep_alpha",
              "data.derived", "data.upscale", "data.synthetic.channels", "data.synthetic.size")
# MLflow's runs-table grouping and chart visibility (ExperimentPageUIState in its UI code)
_GROUP_BY_CONFIG = {"aggregateFunction": "average",
                    "groupByKeys": [{"mode": "tag", "groupByData": names.TAG_CONFIG}]}
SHOW_ALL = "SHOW_ALL"  # runsHiddenMode: every run in the charts (MLflow's default: first 10)
EVERY_RUN = 1000  # a chart's runsCountToCompare (MLflow's default: 10)


def column(kind: str, key: str) -> str:
    """A runs-table column as the UI names it: ``metrics.`val/iou```."""
    return f"{kind}.`{key}`"


def on_test(metric: str) -> str | None:
    """The test-split counterpart of a ``val_`` metric name."""
    return "test_" + metric.removeprefix("val_") if metric.startswith("val_") else None


def varies_cost(paths: Iterable[str]) -> bool:
    """Whether configurations differing in ``paths`` (dotted) can differ in cost."""
    return any(path.startswith(COST_PATHS) for path in paths)


def _chart(uuid: str, section: str, kind: str, **fields: Any) -> dict[str, Any]:
    return {"uuid": uuid, "type": kind, "metricSectionId": section, "deleted": False,
            "isGenerated": False, "runsCountToCompare": EVERY_RUN, **fields}


def _bar(uuid: str, section: str, key: str) -> dict[str, Any]:
    return _chart(uuid, section, "BAR", metricKey=key)


def _line(uuid: str, section: str, key: str) -> dict[str, Any]:
    # A loss on a log axis: a first-epoch spike no longer flattens the rest of the curve
    # (MLflow's "ignore outliers" would drop each run's first and last points instead).
    scale = "log" if key.endswith("loss") else "linear"
    return _chart(uuid, section, "LINE", metricKey=key, lineSmoothness=0,
                  xAxisKey="step", xAxisScaleType="linear", scaleType=scale, range={},
                  selectedXAxisMetricKey="", yAxisKey="metric", yAxisExpressions=[],
                  ignoreOutliers=False, useGlobalXaxisKey=True, useGlobalLineSmoothing=True)


def _section(uuid: str, name: str, shown: bool) -> dict[str, Any]:
    return {"uuid": uuid, "name": name, "display": shown, "isReordered": True,
            "deleted": False, "isGenerated": False}


def key_figures(objectives: Sequence[tuple[str, str]], cost: bool = True) -> list[str]:
    """The final figures the view shows first: the objectives, the first one's test
    counterpart, and (``cost``: when configurations can differ in cost) the cost figures."""
    figures = [name for name, _ in objectives]
    for name in (on_test(objectives[0][0]), *(COST_FIGURES if cost else ())):
        if name and name not in figures:
            figures.append(name)
    return figures


def charts(objectives: Sequence[tuple[str, str]], searched: Sequence[str],
           full_resolution: bool = True, cost: bool = True,
           ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(charts, sections): the objectives and key figures (one bar per run), then the
    per-epoch curves, then one collapsed section per metric group."""
    first = objectives[0][0]
    out = [_bar(f"ablate-key-{i}", "ablate-key", names.metric_key(name))
           for i, name in enumerate(key_figures(objectives, cost))]
    if cost and first != "gflops":
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
              components: Sequence[str], full_resolution: bool = True, repeats: int = 1,
              cost: bool = True) -> dict[str, Any]:
    """The runs page state: ``objectives`` as (metric name, direction), the first one sorts;
    ``full_resolution``: where the final figures are measured (``eval.full_resolution``);
    ``repeats``: the most runs a configuration gets (above 1: rows grouped by configuration
    with their mean); ``cost``: configurations can differ in cost. A design (``components``)
    shows each run's decision against the baseline."""
    first, direction = objectives[0]
    columns = [column("tags", names.TAG_STATE)]
    if components or repeats > 1:  # a configuration label (a search's is its trial)
        columns.append(column("tags", names.TAG_CONFIG))
    if components:  # the configuration's decision next to its label
        columns += [column("tags", tag) for tag in names.DECISION_TAGS]
    columns.append(column("tags", names.TAG_SEED))
    columns += [column("metrics", names.metric_key(name))
                for name in key_figures(objectives, cost)]
    columns += [column("params", path) for path in searched]
    columns += [column("tags", names.COMPONENT_PREFIX + name) for name in components]
    chart_list, sections = charts(objectives, searched, full_resolution, cost)
    widths = {c: WIDTH for c in columns}
    widths.update({column("tags", tag): px for tag, px in WIDE.items() if components})
    return {
        "searchFilter": f"tags.`{names.TAG_ROLE}` = '{names.ROLE_TRIAL}'",
        "orderByKey": column("metrics", names.metric_key(first)),
        "orderByAsc": direction == "minimize",
        "selectedColumns": columns,
        "columnOrder": columns,
        "columnWidths": widths,
        "groupBy": _GROUP_BY_CONFIG if repeats > 1 else None,
        "runsHiddenMode": SHOW_ALL,
        "useGroupedValuesInCharts": False,  # a bar per run, not per group's mean
        "compareRunCharts": chart_list,
        "compareRunSections": sections,
        "isAccordionReordered": True,
        "hideEmptyCharts": True,
        "chartsSearchFilter": "",
        "globalLineChartConfig": {"xAxisKey": "step", "lineSmoothness": 0,
                                  "selectedXAxisMetricKey": ""},
    }


def study_view(spec: StudySpec) -> dict[str, Any]:
    """:func:`runs_view` of a study as its spec describes it."""
    objectives = [(o.metric, o.direction) for o in spec.objectives] or [
        (spec.objective.metric, spec.objective.direction)]
    design = spec.design
    varied = [*spec.search, *(path for c in design.components for path in c.set)]
    return runs_view(objectives, list(spec.search), [c.name for c in design.components],
                     spec.eval.full_resolution, design.max_repeats, varies_cost(varied))


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
