"""Per-run tables: confusion counts per split, the binary threshold scan, per-class IoU.

They show single runs: by default the best configuration and the baseline, each through its
representative repeat (the median of its objective values); ``--trials`` picks trial numbers.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import pandas as pd

from ablate import selection
from ablate.metrics.scores import matrix_scores, ratio
from ablate.naming import slug
from ablate.reporting.configs import representative, run_title, selection_table
from ablate.reporting.runs import StudyRuns
from ablate.reporting.sections import NA, Section, Table, counts, num
from ablate.reporting.stats import count_scores
from ablate.tracking import names as keys

SPLITS = ("train", "val", "test")
SCAN_SPLITS = ("val", "test")
COUNTS = ("tp", "fp", "fn", "tn")


@dataclass
class Chosen:
    """A run shown in the per-run tables, and what it stands for."""

    role: str  # "best", "baseline" or "trial N"
    run: pd.Series
    title: str


def _get(run: pd.Series, metric: str) -> float:
    value = run.get(f"metrics.{metric}")
    return math.nan if value is None or value != value else float(value)


def chosen_runs(
    study: StudyRuns,
    configs: pd.DataFrame,
    best: str | None,
    baseline: str | None,
    trials: list[int] | None = None,
) -> tuple[list[Chosen], list[str]]:
    """The runs for the per-run tables, and notes on requested trials that have none."""
    chosen: list[Chosen] = []
    notes: list[str] = []
    if trials:
        done = study.complete()
        for number in trials:
            runs = done[done["trial"] == number]
            if runs.empty:
                attempts = study.runs[study.runs["trial"] == number]
                if attempts.empty:
                    notes.append(f"trial {number}: no tracked run")
                else:
                    last = attempts.sort_values("start_time").iloc[-1]
                    why = f" ({last['reason']})" if last["reason"] else ""
                    notes.append(f"trial {number}: {last['state']}{why}, no final counts")
                continue
            # a trial of a search with repeats holds several runs: show the representative one
            row = selection.representative(selection_table(study, runs), study.maximize)
            run = runs.loc[row] if row is not None else runs.iloc[0]
            chosen.append(Chosen(f"trial {number}", run, run_title(run, len(runs))))
        return chosen, notes
    for role, label in (("best", best), ("baseline", baseline)):
        if label is None or (role == "baseline" and label == best):
            continue
        run = representative(study, label)
        if run is not None:
            chosen.append(Chosen(role, run, run_title(run, int(configs.loc[label, "n"]))))
    return chosen, notes


def split_counts(study: StudyRuns, run: pd.Series) -> dict[str, list[float]]:
    """``{split: [tp, fp, fn, tn]}`` of a run (multi-class: summed over classes): from its
    confusion matrices artifact, or the count metrics of older stores."""
    text = None
    uri = run.get("artifact_uri")
    if study.artifacts is not None and isinstance(uri, str):
        text = study.artifacts.text(str(run["run_id"]), uri, keys.MATRICES_ARTIFACT)
    if not text:
        return {split: [_get(run, f"{split}_{c}") for c in COUNTS] for split in SPLITS}
    out = {}
    for split, matrix in json.loads(text).items():
        size = len(matrix)
        scores = matrix_scores(pd.DataFrame(matrix).to_numpy(), study.task,
                               [f"c{i}" for i in range(size)])
        out[split] = [float(scores[c]) for c in COUNTS]
    return out


def split_table(study: StudyRuns, run: pd.Series) -> Table:
    """TP, FP, FN, TN, FP/FN, F1 and IoU of one run on each split (multi-class: counts summed
    over classes, with mF1/mIoU)."""
    binary = study.task == "binary"
    f1, iou = ("f1", "iou") if binary else ("mf1", "miou")
    rows = []
    counted = split_counts(study, run)
    for split in SPLITS:
        values = counted.get(split, [math.nan] * len(COUNTS))
        if all(math.isnan(v) for v in values):
            continue
        tp, fp, fn, tn = values
        rows.append({
            "split": split, "TP": tp, "FP": fp, "FN": fn, "TN": tn, "FP/FN": ratio(fp, fn),
            "F1" if binary else "mF1": _get(run, f"{split}_{f1}"),
            "IoU" if binary else "mIoU": _get(run, f"{split}_{iou}"),
        })
    data = pd.DataFrame(rows)
    view = data.copy()
    for column in data.columns[1:]:
        fmt = counts if column in ("TP", "FP", "FN", "TN") else num
        view[column] = [fmt(v) for v in data[column]]
    return Table("splits", data, view)


def split_sections(study: StudyRuns, chosen: list[Chosen], notes: list[str]) -> list[Section]:
    """The counts-per-split heading and one sub-section per chosen run."""
    counted = "summed over classes" if study.task == "multiclass" else "positive class"
    head = Section("Confusion counts per split", [
        f"Confusion counts accumulated over each whole split ({counted}), at the best epoch's "
        "weights; F1 and IoU as tracked. A configuration with repeats is shown through the "
        "repeat holding the median of its objective values (the worse middle one with an even "
        "count)."
    ], notes=[f"Not shown: {'; '.join(notes)}."] if notes else [])
    if not chosen:
        head.notes.append("_no complete runs_")
    out = [head]
    for item in chosen:
        table = split_table(study, item.run)
        table.key = f"splits_{item.role.replace(' ', '')}"
        out.append(Section(f"{item.role}: {item.title}", table=table, level=3,
                           empty="_no confusion counts tracked for this run_"))
    return out


def scan_counts(study: StudyRuns, run: pd.Series) -> dict[str, dict[str, dict[str, float]]]:
    """``{split: {threshold: {tp, fp, fn, tn}}}`` of a run's threshold scan: its
    ``thresholds.json`` artifact, or the per-threshold metrics of older stores."""
    text = None
    uri = run.get("artifact_uri")
    if study.artifacts is not None and isinstance(uri, str):
        text = study.artifacts.text(str(run["run_id"]), uri, keys.THRESHOLDS_ARTIFACT)
    if text:
        return json.loads(text)
    return {split: {f"{t:g}": {c: _get(run, keys.threshold_key(split, t, c)) for c in COUNTS}
                    for t in study.thresholds} for split in SCAN_SPLITS}


def threshold_section(study: StudyRuns, item: Chosen) -> Section:
    """Accuracy, IoU and F1 at each scanned threshold on val and test, from the counts."""
    scan = scan_counts(study, item.run)
    rows = []
    for threshold in study.thresholds:
        row: dict[str, float] = {"threshold": threshold}
        for split in SCAN_SPLITS:
            counts = scan.get(split, {}).get(f"{threshold:g}", {})
            values = [float(counts.get(c, math.nan)) for c in COUNTS]
            scores = count_scores(*values)
            for name, value in scores.items():
                row[f"{split} {name}"] = value
        rows.append(row)
    data = pd.DataFrame(rows)
    tracked = data.drop(columns="threshold").notna().any(axis=1) if not data.empty else data
    data = data[tracked].reset_index(drop=True) if not data.empty else data
    view = data.copy()
    for column in data.columns:
        view[column] = [num(v) for v in data[column]]
    return Section(f"Threshold scan: {item.title}", [
        "Accuracy, IoU and F1 of the best configuration at each scanned probability threshold, "
        "computed from the tracked confusion counts at that threshold "
        f"(`{keys.THRESHOLDS_ARTIFACT}` of the run)."
    ], Table("thresholds", data, view), empty="_no threshold-scan counts tracked for this run_")


def class_section(study: StudyRuns, chosen: list[Chosen]) -> Section:
    """Per-class IoU on val and test of the chosen runs (NaN: class absent from the split)."""
    rows = []
    for name in study.classes:
        row: dict[str, object] = {"class": name}
        for item in chosen:
            for split in SCAN_SPLITS:
                row[f"{item.role} {split} IoU"] = _get(item.run, f"{split}_iou_{slug(name)}")
        rows.append(row)
    data = pd.DataFrame(rows)
    view = data.copy()
    for column in data.columns[1:]:
        view[column] = [num(v) for v in data[column]]
    runs = "; ".join(f"{c.role} = {c.title}" for c in chosen)
    return Section("Per-class IoU", [
        f"IoU per class ({runs}). {NA}: the class is absent from both prediction and ground "
        "truth of that split (excluded from mIoU)."
    ], Table("classes", data, view), empty="_no class names tracked_")
