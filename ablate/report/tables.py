"""The configuration-level tables: ablation (mean ± std over repeats, difference to the
baseline with a Welch interval), efficiency ranking and the Pareto front."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from ablate.report import stats
from ablate.report.configs import objective_column
from ablate.report.runs import COMP, VALUE, StudyRuns
from ablate.report.sections import (
    NA,
    Section,
    Table,
    interval,
    mean_std,
    num,
    signed,
    yes_no,
)
from ablate.tracking.names import FLOP_CONVENTION

NOISE_MARK = "~"
LEGEND = (
    f"`diff`: mean minus the baseline's mean (`gain %`: diff in percent of the baseline's "
    "mean); `95% CI`: Welch t interval over the two groups "
    f"of repeats ({NA}: fewer than 2 repeats on one side); `{NOISE_MARK}`: the interval "
    "includes 0, so the difference is not distinguishable from seed noise."
)


def on_test_split(objective: str) -> str | None:
    """The test-split counterpart of a ``val_`` objective (``val_iou`` -> ``test_iou``)."""
    return "test_" + objective.removeprefix("val_") if objective.startswith("val_") else None


def _value(value: object) -> object:
    if isinstance(value, list | dict):
        return json.dumps(value)
    return value


def _groups(study: StudyRuns) -> dict[str, np.ndarray]:
    done = study.complete()
    column = objective_column(study)
    if column not in done:
        return {}
    return {str(k): v.to_numpy(dtype=float) for k, v in done.groupby("config")[column]}


def ablation_section(study: StudyRuns, configs: pd.DataFrame, baseline: str | None) -> Section:
    """One row per configuration: toggles Y/N, searched values, the objective's mean ± std
    over repeats, n, and (with a baseline) the difference, its interval and the noise mark."""
    obj = study.objective
    test = on_test_split(obj)
    groups = _groups(study)
    data: dict[str, list[object]] = {"config": list(configs.index)}
    view: dict[str, list[object]] = {"config": list(configs.index)}
    for comp in study.components:
        data[comp] = list(configs.get(COMP + comp, pd.Series(None, index=configs.index)))
        view[comp] = [yes_no(v) for v in data[comp]]
    for path in study.values:
        data[path] = [_value(v) for v in configs.get(VALUE + path, [None] * len(configs))]
        view[path] = [num(v) for v in data[path]]
    means = configs.get("mean." + obj, pd.Series(math.nan, index=configs.index))
    stds = configs.get("std." + obj, pd.Series(math.nan, index=configs.index))
    data[f"{obj} mean"], data[f"{obj} std"], data["n"] = list(means), list(stds), list(configs["n"])
    view[f"{obj} (mean ± std)"] = [mean_std(m, s) for m, s in zip(means, stds, strict=True)]
    view["n"] = [int(n) for n in configs["n"]]
    if baseline is not None:
        estimates = [
            stats.Estimate(0.0) if str(label) == baseline
            else stats.welch_difference(groups.get(str(label), []), groups.get(baseline, []))
            for label in configs.index
        ]
        data["diff"] = [e.value for e in estimates]
        data["ci_low"] = [e.low for e in estimates]
        data["ci_high"] = [e.high for e in estimates]
        data["ci_includes_zero"] = [e.includes_zero for e in estimates]
        is_base = [str(label) == baseline for label in configs.index]
        view[f"diff vs {baseline}"] = [
            "baseline" if b else signed(e.value) for b, e in zip(is_base, estimates, strict=True)]
        view["95% CI"] = [
            "" if b else interval(e.low, e.high) for b, e in zip(is_base, estimates, strict=True)]
        view[NOISE_MARK] = [
            NOISE_MARK if e.includes_zero and not b else ""
            for b, e in zip(is_base, estimates, strict=True)]
        # The relative gain over the baseline's mean, as architecture comparisons quote it.
        base_mean = float(means.get(baseline, math.nan))
        data["gain %"] = [100.0 * e.value / base_mean if base_mean else math.nan
                          for e in estimates]
        view["gain %"] = ["" if b else signed(g) for b, g in zip(is_base, data["gain %"],
                                                                   strict=True)]
    if test and "mean." + test in configs:
        data[f"{test} mean"] = list(configs["mean." + test])
        data[f"{test} std"] = list(configs["std." + test])
        view[f"{test} (mean ± std)"] = [
            mean_std(m, s) for m, s in zip(configs["mean." + test], configs["std." + test],
                                           strict=True)]
    order = ("in design order" if study.design == "cumulative"
             else f"{'highest' if study.maximize else 'lowest'} mean `{obj}` first")
    text = [
        f"One row per configuration, {order}; repeats (runs sharing a configuration label) "
        f"are aggregated as mean ± std (ddof=1; one repeat: the value alone), `n` repeats. "
        "Components are shown as Y/N."
    ]
    if baseline is not None:
        text.append(f"Baseline: `{baseline}`.")
    notes = [LEGEND] if baseline is not None else []
    return Section("Ablation table", text, Table("ablation", pd.DataFrame(data),
                                                   pd.DataFrame(view)), notes)


def _mean(configs: pd.DataFrame, metric: str) -> pd.Series:
    return configs.get("mean." + metric, pd.Series(math.nan, index=configs.index)).astype(float)


def pareto_axes(study: StudyRuns) -> list[tuple[str, str]]:
    """(metric, direction) of the two Pareto axes: the study's two objectives when it has
    them, else the objective against GFLOPs (minimised)."""
    if len(study.objectives) >= 2:
        return [(o["metric"], o.get("direction", "maximize")) for o in study.objectives[:2]]
    return [(study.objective, study.direction), ("gflops", "minimize")]


def pareto_mask(study: StudyRuns, configs: pd.DataFrame) -> pd.Series:
    """Which configurations are non-dominated on :func:`pareto_axes` (config means)."""
    axes = pareto_axes(study)
    points = np.column_stack([_mean(configs, metric).to_numpy() for metric, _ in axes])
    front = stats.pareto_front(points, [d == "maximize" for _, d in axes])
    return pd.Series(front, index=configs.index)


def efficiency_section(study: StudyRuns, configs: pd.DataFrame, front: pd.Series) -> Section:
    """Configurations ranked by objective % per GFLOP, with the model's cost figures."""
    obj = study.objective
    efficiency = _mean(configs, "efficiency")
    if efficiency.isna().all():
        efficiency = 100 * _mean(configs, obj) / _mean(configs, "gflops")
    data = pd.DataFrame({
        "config": configs.index,
        f"{obj} %": 100 * _mean(configs, obj).to_numpy(),
        "% per GFLOP": efficiency.to_numpy(),
        "GFLOPs": _mean(configs, "gflops").to_numpy(),
        "params (M)": _mean(configs, "params").to_numpy() / 1e6,
        "model size (MB)": _mean(configs, "model_size_mb").to_numpy(),
        "latency (ms)": _mean(configs, "latency_ms").to_numpy(),
        "n": configs["n"].to_numpy(),
        "pareto": front.reindex(configs.index).fillna(False).to_numpy(dtype=bool),
    })
    optional = ["GFLOPs", "params (M)", "model size (MB)", "latency (ms)"]
    data = data.drop(columns=[c for c in optional if data[c].isna().all()])
    data = data.sort_values("% per GFLOP", ascending=False, na_position="last", kind="stable")
    data.insert(0, "rank", range(1, len(data) + 1))
    view = data.copy()
    for column in data.columns:
        if column not in ("rank", "config", "n", "pareto"):
            view[column] = [num(v) for v in data[column]]
    view["pareto"] = ["Y" if p else "" for p in data["pareto"]]
    text = [
        f"Configurations ranked by `{obj}` in percent per GFLOP of one forward pass at the "
        f"evaluation input size ({FLOP_CONVENTION}); means over repeats. Latency is the "
        "measured forward time (ms) as tracked; `pareto`: on the front below."
    ]
    return Section("Efficiency ranking", text, Table("efficiency", data.reset_index(drop=True),
                                                       view.reset_index(drop=True)))


def pareto_section(study: StudyRuns, configs: pd.DataFrame, front: pd.Series) -> Section:
    """The non-dominated configurations on the two Pareto axes."""
    axes = pareto_axes(study)
    names = [metric for metric, _ in axes]
    on = configs[front.reindex(configs.index).fillna(False).astype(bool)]
    data = pd.DataFrame({"config": on.index})
    for metric in dict.fromkeys([*names, study.objective, "gflops"]):
        if "mean." + metric in on:
            data[metric] = on["mean." + metric].to_numpy()
    if "mean.params" in on:
        data["params (M)"] = on["mean.params"].to_numpy() / 1e6
    data["n"] = on["n"].to_numpy()
    if names[1] in data:
        data = data.sort_values(names[1], kind="stable")
    view = data.copy()
    for column in data.columns:
        if column not in ("config", "n"):
            view[column] = [num(v) for v in data[column]]
    words = [f"`{m}` ({'higher' if d == 'maximize' else 'lower'} is better)" for m, d in axes]
    text = [
        f"Configurations not dominated on {words[0]} and {words[1]} (config means): no other "
        "configuration is at least as good on both and better on one."
        + (f" GFLOPs: {FLOP_CONVENTION}." if "gflops" in names else "")
    ]
    title = f"Pareto front: {names[0]} vs {names[1]}"
    return Section(title, text, Table("pareto", data.reset_index(drop=True),
                                      view.reset_index(drop=True)),
                   empty="_no configuration has both figures_")
