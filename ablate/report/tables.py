"""Report tables built from tracked runs: ablation, efficiency, per-split counts."""

from __future__ import annotations

import json
import math

import pandas as pd

from ablate import tracking as keys
from ablate.report.runs import StudyRuns
from ablate.spec import slug

SPLITS = ("train", "val", "test")
KEY_METRICS = {
    "binary": ("iou", "f1", "precision", "recall"),
    "multiclass": ("miou", "mf1", "accuracy"),
}


def _metric(row: pd.Series, name: str) -> float:
    value = row.get(f"metrics.{name}")
    return float(value) if value is not None and value == value else math.nan


def _searched(row: pd.Series, path: str) -> object:
    raw = row.get(f"tags.ablate.searched.{path}")
    if raw is None or raw != raw:
        raw = row.get(f"params.{path}")
        return raw
    return json.loads(raw)


def _yes_no(value: object) -> str:
    if isinstance(value, str):
        value = value.strip().lower() in ("true", "1", "yes")
    return "Y" if value else "N"


def ablation_table(study: StudyRuns) -> pd.DataFrame:
    """One row per complete trial, best first: toggles as Y/N, searched values, metrics."""
    rows = []
    metrics = [study.objective] + [
        f"{split}_{m}" for split in ("val", "test") for m in KEY_METRICS[study.task]
    ]
    metrics = list(dict.fromkeys(metrics))
    for _, run in study.complete().iterrows():
        row: dict[str, object] = {"trial": int(run["trial"])}
        for path, kind in study.search.items():
            value = _searched(run, path)
            row[path] = _yes_no(value) if kind == "bool" else value
        for name in metrics:
            if f"metrics.{name}" in run:
                row[name] = _metric(run, name)
        rows.append(row)
    return pd.DataFrame(rows)


def efficiency_table(study: StudyRuns) -> pd.DataFrame:
    """Complete trials ranked by objective % per GFLOP (fvcore: one multiply-add = one FLOP)."""
    rows = []
    for _, run in study.complete().iterrows():
        value = _metric(run, study.objective)
        gflops = _metric(run, "gflops")
        rows.append({
            "trial": int(run["trial"]),
            f"{study.objective} %": 100 * value,
            "GFLOPs": gflops,
            "params (M)": _metric(run, "params") / 1e6,
            "% per GFLOP": _metric(run, "efficiency"),
        })
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table = table.sort_values("% per GFLOP", ascending=False, na_position="last")
    table.insert(0, "rank", range(1, len(table) + 1))
    return table


def split_table(study: StudyRuns, run: pd.Series) -> pd.DataFrame:
    """TP/FP/FN/TN, F1 and IoU of one run on every split (multi-class: summed counts, means)."""
    f1, iou = ("f1", "iou") if study.task == "binary" else ("mf1", "miou")
    rows = []
    for split in SPLITS:
        if f"metrics.{split}_tp" not in run or math.isnan(_metric(run, f"{split}_tp")):
            continue
        tp, fp, fn, tn = (_metric(run, f"{split}_{c}") for c in ("tp", "fp", "fn", "tn"))
        rows.append({
            "split": split,
            "TP": int(tp), "FP": int(fp), "FN": int(fn), "TN": int(tn),
            "FP/FN": fp / fn if fn else math.nan,
            "F1" if study.task == "binary" else "mF1": _metric(run, f"{split}_{f1}"),
            "IoU" if study.task == "binary" else "mIoU": _metric(run, f"{split}_{iou}"),
        })
    return pd.DataFrame(rows)


def class_table(study: StudyRuns, run: pd.Series) -> pd.DataFrame:
    """Per-class IoU and F1 on val and test (multi-class); NaN = class absent from the split."""
    rows = []
    for name in study.classes:
        key = slug(name)
        row: dict[str, object] = {"class": name}
        for split in ("val", "test"):
            if f"metrics.{split}_iou_{key}" in run:
                row[f"{split} IoU"] = _metric(run, f"{split}_iou_{key}")
                row[f"{split} F1"] = _metric(run, f"{split}_f1_{key}")
        rows.append(row)
    return pd.DataFrame(rows)


def excluded_summary(study: StudyRuns) -> list[str]:
    """Lines counting the pruned and failed trials, with their reasons."""
    lines = []
    reason_col = f"tags.{keys.TAG_REASON}"
    for state in ("PRUNED", "FAIL", "RUNNING"):
        runs = study.by_state(state)
        if runs.empty:
            continue
        reasons = runs[reason_col].fillna("").value_counts()
        detail = "; ".join(
            f"{r} (x{n})" if n > 1 else r for r, n in reasons.items() if r
        )
        label = {"FAIL": "failed", "PRUNED": "pruned", "RUNNING": "still running or lost"}[state]
        lines.append(f"{len(runs)} {label}" + (f": {detail}" if detail else ""))
    return lines
