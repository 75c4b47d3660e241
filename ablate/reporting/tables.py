"""The configuration-level cost tables: efficiency ranking and the Pareto front (the ablation
table is :mod:`ablate.reporting.ablation`)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ablate.reporting import stats
from ablate.reporting.runs import StudyRuns
from ablate.reporting.sections import (
    Section,
    Table,
    num,
)
from ablate.tracking.names import FLOP_CONVENTION


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


LATENCY_TEXT = ("Latency: the median over a configuration's runs of each run's median "
                "batch-1 forward time (ms), with the median of their interquartile ranges over "
                "the timed passes; it depends on the machine and its load when measured.")


def latency_cell(median: float, iqr: float) -> str:
    """``12.3 (IQR 0.8)``; the median alone when no spread was logged."""
    def ms(value: float) -> str:
        return f"{value:.3g}" if value < 100 else f"{value:,.0f}"

    if math.isnan(median):
        return num(median)
    return ms(median) if math.isnan(iqr) else f"{ms(median)} (IQR {ms(iqr)})"


def latency_by_config(study: StudyRuns, configs: pd.DataFrame) -> pd.DataFrame:
    """``median`` and ``iqr`` (ms) per configuration: medians over its runs of their logged
    median and interquartile range (older runs logged no IQR: NaN)."""
    done = study.complete()
    out = pd.DataFrame({"median": math.nan, "iqr": math.nan}, index=configs.index)
    for column, name in (("metrics.latency_ms", "median"), ("metrics.latency_iqr_ms", "iqr")):
        if column in done and not done.empty:
            values = done[column].astype(float).groupby(done["config"].astype(str)).median()
            out[name] = values.reindex(configs.index.astype(str)).to_numpy()
    return out


def same_cost(study: StudyRuns, configs: pd.DataFrame) -> bool:
    """Whether a single-objective study's configurations all have the same GFLOPs and params
    (an efficiency ranking and a Pareto front against GFLOPs then say nothing)."""
    if len(study.objectives) >= 2 or configs.empty:
        return False
    for metric in ("gflops", "params"):
        values = _mean(configs, metric).to_numpy()
        if np.isnan(values).any() or not np.allclose(values, values[0], rtol=1e-9, atol=0):
            return False
    return True


def same_cost_section(study: StudyRuns, configs: pd.DataFrame) -> Section:
    """One paragraph instead of the efficiency ranking and the Pareto front."""
    gflops, params = _mean(configs, "gflops").iloc[0], _mean(configs, "params").iloc[0]
    size = _mean(configs, "model_size_mb").iloc[0]
    latency = latency_by_config(study, configs)
    text = (f"All {len(configs)} configuration(s) have the same cost: {num(gflops)} GFLOPs "
            f"({FLOP_CONVENTION}), {num(params / 1e6)} M params"
            + ("" if math.isnan(size) else f", {num(size)} MB") + "; no efficiency ranking or "
            "Pareto front (they would repeat the ablation table's order).")
    medians = latency["median"].dropna()
    middle = float(medians.median()) if not medians.empty else math.nan
    if medians.nunique() == 1:
        iqr = float(latency["iqr"].median())
        text += f" Latency: {latency_cell(middle, iqr)} ms."
    elif not medians.empty:
        text += (f" Latency: median {num(middle, 3)} ms over configurations (from "
                 f"{num(float(medians.min()), 3)} to {num(float(medians.max()), 3)} ms for the "
                 "same model: the machine and its load, not the configuration).")
    return Section("Efficiency", [text])


def efficiency_section(study: StudyRuns, configs: pd.DataFrame, front: pd.Series) -> Section:
    """Configurations ranked by objective % per GFLOP, with the model's cost figures."""
    obj = study.objective
    latency = latency_by_config(study, configs)
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
        "latency (ms)": latency["median"].to_numpy(),
        "latency IQR (ms)": latency["iqr"].to_numpy(),
        "n": configs["n"].to_numpy(),
        "pareto": front.reindex(configs.index).fillna(False).to_numpy(dtype=bool),
    })
    optional = ["GFLOPs", "params (M)", "model size (MB)", "latency (ms)", "latency IQR (ms)"]
    data = data.drop(columns=[c for c in optional if data[c].isna().all()])
    data = data.sort_values("% per GFLOP", ascending=False, na_position="last", kind="stable")
    data.insert(0, "rank", range(1, len(data) + 1))
    view = data.copy()
    for column in data.columns:
        if column not in ("rank", "config", "n", "pareto"):
            view[column] = [num(v) for v in data[column]]
    if "latency (ms)" in data:
        view["latency (ms)"] = [latency_cell(m, q) for m, q in
                                zip(data["latency (ms)"], data.get("latency IQR (ms)",
                                    pd.Series(math.nan, index=data.index)), strict=True)]
        view = view.drop(columns=["latency IQR (ms)"], errors="ignore")
    view["pareto"] = ["Y" if p else "" for p in data["pareto"]]
    text = [
        f"Configurations ranked by `{obj}` in percent per GFLOP of one forward pass at the "
        f"evaluation input size ({FLOP_CONVENTION}); means over repeats. {LATENCY_TEXT} "
        "`pareto`: on the front below."
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
