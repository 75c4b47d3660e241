"""Markdown reports of a study, built only from what MLflow holds."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from ablate.report.runs import StudyRuns, load_runs
from ablate.report.tables import (
    ablation_table,
    class_table,
    efficiency_table,
    excluded_summary,
    split_table,
)
from ablate.stores import Stores
from ablate.tracking import FLOP_CONVENTION

__all__ = ["StudyRuns", "load_runs", "render_markdown", "build_report"]


def _md(table: pd.DataFrame) -> str:
    if table.empty:
        return "_no complete trials_"
    return table.to_markdown(index=False, floatfmt=".4g")


def render_markdown(study: StudyRuns) -> str:
    """The report: ablation table, efficiency ranking, the best trial's per-split counts."""
    complete = study.complete()
    best_word = "highest" if study.maximize else "lowest"
    out = [
        f"# Ablation report: {study.name}",
        "",
        f"Objective: `{study.objective}` ({study.direction}), read on the validation split; "
        f"test figures are reported, never used for selection. {len(complete)} complete "
        f"trial(s); generated {dt.datetime.now().strftime('%Y-%m-%d %H:%M')}.",
        "",
        "## Ablation table",
        "",
        f"One row per complete trial, {best_word} `{study.objective}` first. "
        "Searched toggles are shown as Y/N.",
        "",
        _md(ablation_table(study)),
        "",
        "## Efficiency ranking",
        "",
        f"`{study.objective}` in percent per GFLOP of one forward pass at the evaluation input "
        f"size ({FLOP_CONVENTION}).",
        "",
        _md(efficiency_table(study)),
        "",
    ]
    if not complete.empty:
        best = complete.iloc[0]
        counts = "summed over classes" if study.task == "multiclass" else "positive class"
        out += [
            f"## Best trial ({int(best['trial'])}): counts per split",
            "",
            f"Confusion counts accumulated over each whole split ({counts}), at the best "
            "epoch's weights.",
            "",
            _md(split_table(study, best)),
            "",
        ]
        if study.task == "multiclass":
            out += [
                f"### Per-class IoU and F1, trial {int(best['trial'])}",
                "",
                "NaN marks a class absent from both prediction and ground truth of that split "
                "(excluded from the means).",
                "",
                _md(class_table(study, best)),
                "",
            ]
    excluded = excluded_summary(study)
    if excluded:
        out += ["---", "", "Not in the tables: " + "; ".join(excluded) + ".", ""]
    return "\n".join(out)


def build_report(stores: Stores, name: str) -> str:
    """Read the study from MLflow and render the markdown report."""
    return render_markdown(load_runs(stores, name))
