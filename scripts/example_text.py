"""The generated text of an example page: what a built report's tables conclude, in words,
and the data line (``ablate check``'s summary with the data set's path relative to the
repository). Every number comes from the report; nothing here is written by hand."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

import pandas as pd

from ablate.reporting.sections import interval, mean_std, num, signed


def _section(report: Any, title: str) -> Any:
    return next((s for s in report.sections if s.title.startswith(title)), None)


def _rows(section: Any) -> pd.DataFrame:
    if section is None or section.table is None:
        return pd.DataFrame()
    return section.table.data


def _settings(study: Any, row: pd.Series) -> str:
    """A searched configuration's values (toggles as on/off)."""
    parts = []
    for name in study.components:
        if name in row and row[name] is not None and row[name] == row[name]:
            parts.append(f"{name} {'on' if bool(row[name]) else 'off'}")
    for path in study.values:
        if path in row and row[path] is not None:
            parts.append(f"{path} {num(row[path], 3)}")
    return ", ".join(parts)


def best_row(study: Any, table: pd.DataFrame) -> pd.Series | None:
    """The ablation table's row with the best mean objective."""
    if table.empty or "mean" not in table:
        return None
    means = table["mean"].astype(float)
    if means.isna().all():
        return None
    return table.loc[means.idxmax() if study.maximize else means.idxmin()]


def conclusions(report: Any) -> tuple[list[str], dict[str, Any]]:
    """Bullet lines for the page and the facts for the gallery's index."""
    study = report.study
    obj = study.objective
    table = _rows(_section(report, "Ablation table"))
    lines: list[str] = []
    best = best_row(study, table)
    summary: dict[str, Any] = {"design": study.design, "objective": obj, "best": None,
                               "best_text": "n/a", "beaten": None, "trivial": report.trivial}
    if best is not None:
        value = mean_std(float(best["mean"]), float(best.get("std", math.nan)))
        test = ""
        if "test_mean" in best and best["test_mean"] == best["test_mean"]:
            test = f"; on test (reported, never used to choose) {num(best['test_mean'])}"
        n = int(best["n"])
        settings = _settings(study, best) if study.design == "search" else ""
        lines.append(f"- **Best configuration**: `{best['config']}`, `{obj}` {value} "
                     f"({n} run{'s' if n > 1 else ''}{test})"
                     + (f"; its settings: {settings}." if settings else "."))
        summary |= {"best": best["config"], "best_value": float(best["mean"]),
                    "best_text": f"{num(best['mean'], 3)} (`{best['config']}`)"}
    if report.trivial is not None:
        summary["beaten"] = report.trivial["beaten"]
        lines.append("- " + _trivial_words(report.trivial))
    lines += _comparisons(table, "vs the baseline")
    lines += _comparisons(_rows(_section(report, "Cumulative steps")), "step")
    lines += _search_words(report, study)
    lines += _pareto_words(report)
    return lines, summary


def _trivial_words(trivial: dict[str, Any]) -> str:
    metrics = trivial["metrics"]
    best = ", ".join(f"{m} {num(trivial['best'][m], 3)}" for m in metrics)
    constants = "; ".join(
        f"{c['label']}: " + ", ".join(f"{m} {num(c['scores'][m], 3)}" for m in metrics)
        for c in trivial["constants"])
    head = {True: "**Above the trivial predictors**", False: "**Not above the trivial "
            "predictors**: the model learned little or nothing at this scale",
            None: "Trivial predictors not comparable"}[trivial["beaten"]]
    return f"{head} on val: best {best}; {constants}."


def _comparisons(table: pd.DataFrame, kind: str) -> list[str]:
    """One line per compared configuration: its difference, interval and decision."""
    if table.empty or "decision" not in table:
        return []
    out = []
    for _, row in table.iterrows():
        if not isinstance(row["decision"], str) or not isinstance(row.get("reference"), str):
            continue
        low, high = float(row["ci_low"]), float(row["ci_high"])
        words = row.get("explanation") or ""
        out.append(f"- `{row['config']}` vs `{row['reference']}` ({kind}): "
                   f"{signed(float(row['delta']))} {interval(low, high)}, "
                   f"**{row['decision']}**" + (f": {words}." if words else "."))
    return out


def _search_words(report: Any, study: Any) -> list[str]:
    if study.design != "search":
        return []
    section = _section(report, "Parameter importance")
    rows = _rows(section)
    if rows.empty:
        text = section.text[0] if section is not None and section.text else ""
        return [f"- Parameter importance: {text}"] if text else []
    top = ", ".join(f"`{r['parameter']}` {num(r['importance'], 2)}"
                    for _, r in rows.head(3).iterrows())
    return [f"- **Most important searched values** (fANOVA, a rough ranking with few "
            f"trials): {top}."]


def _pareto_words(report: Any) -> list[str]:
    section = _section(report, "Pareto front")
    rows = _rows(section)
    if rows.empty:
        return []
    names = ", ".join(f"`{c}`" for c in rows["config"])
    return [f"- **{section.title}**: {len(rows)} configuration(s) on the front: {names}."]


def data_line(check: str, root: Path) -> str:
    """``ablate check``'s summary line, the data set's folder relative to ``root``."""
    line = next((ln for ln in check.splitlines() if ln.startswith("ok: ")), check)
    line = line.removeprefix("ok: ")
    match = re.match(r"(/[^:]+):", line)
    if match:
        line = os.path.relpath(match.group(1), root) + line[match.end() - 1:]
    return line
