"""Two studies side by side: each one's best configuration on the metrics both tracked."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ablate.reporting import stats
from ablate.reporting.configs import aggregate, best_label
from ablate.reporting.runs import StudyRuns
from ablate.reporting.sections import Section, Table, interval, mean_std, signed
from ablate.tracking.names import FLOP_CONVENTION

NOISE_MARK = "~"  # the interval includes 0

SHARED = tuple(
    f"{split}_{m}" for split in ("val", "test")
    for m in ("iou", "f1", "miou", "mf1", "accuracy", "precision", "recall")
) + ("gflops", "params", "efficiency", "model_size_mb", "latency_ms")


def _best_runs(study: StudyRuns) -> tuple[str | None, pd.DataFrame]:
    label = best_label(study, aggregate(study))
    done = study.complete()
    return label, done[done["config"] == label] if label is not None else done.iloc[:0]


def _values(runs: pd.DataFrame, metric: str) -> pd.Series:
    column = f"metrics.{metric}"
    return runs[column].dropna().astype(float) if column in runs else pd.Series(dtype=float)


def compare_section(study: StudyRuns, other: StudyRuns) -> Section:
    """Best configuration of each study on their shared final metrics, with the difference
    (this study minus the other) and its Welch interval over the two groups of repeats."""
    a_label, a_runs = _best_runs(study)
    b_label, b_runs = _best_runs(other)
    metrics = list(dict.fromkeys([study.objective, other.objective, *SHARED]))
    metrics = [m for m in metrics
               if not _values(a_runs, m).empty and not _values(b_runs, m).empty]
    rows: list[dict[str, Any]] = []
    for metric in metrics:
        a, b = _values(a_runs, metric), _values(b_runs, metric)
        (am, asd, an), (bm, bsd, bn) = stats.summary(a), stats.summary(b)
        estimate = stats.welch_difference(a, b)
        rows.append({
            "metric": metric, f"{study.name} mean": am, f"{study.name} std": asd,
            f"{study.name} n": an, f"{other.name} mean": bm, f"{other.name} std": bsd,
            f"{other.name} n": bn, "diff": estimate.value, "ci_low": estimate.low,
            "ci_high": estimate.high, "ci_includes_zero": estimate.includes_zero,
        })
    data = pd.DataFrame(rows)
    view = pd.DataFrame({
        "metric": data.get("metric", []),
        study.name: [mean_std(r[f"{study.name} mean"], r[f"{study.name} std"]) for r in rows],
        other.name: [mean_std(r[f"{other.name} mean"], r[f"{other.name} std"]) for r in rows],
        f"diff ({study.name} - {other.name})": [signed(r["diff"]) for r in rows],
        "95% CI": [interval(r["ci_low"], r["ci_high"]) for r in rows],
        NOISE_MARK: [NOISE_MARK if r["ci_includes_zero"] else "" for r in rows],
    })
    text = [
        f"Best configuration of each study by its own objective: `{study.name}`: "
        f"`{a_label}` (n={len(a_runs)}, `{study.objective}` {study.direction}); "
        f"`{other.name}`: `{b_label}` (n={len(b_runs)}, `{other.objective}` "
        f"{other.direction}). Mean ± std over repeats on the final metrics both tracked; "
        f"`diff` with a Welch 95% interval, `{NOISE_MARK}` where it includes 0. "
        f"GFLOPs: {FLOP_CONVENTION}."
    ]
    if study.objective != other.objective:
        text.append(f"The objectives differ (`{study.objective}` vs `{other.objective}`).")
    return Section(f"Comparison with {other.name}", text, Table("compare", data, view),
                   empty="_no shared final metrics_")
