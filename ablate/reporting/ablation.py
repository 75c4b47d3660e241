"""The ablation table (one row per configuration, compared with the baseline) and, for
cumulative designs, the steps table (each configuration compared with its predecessor), with
a decision per comparison, the decisions in words and the method under the table."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from ablate.inference.onesample import BOOTSTRAP_MIN_N, EXACT_UP_TO, RESAMPLES, SEED
from ablate.reporting.comparisons import Pair, Row, compare_all, report_pairs
from ablate.reporting.runs import COMP, VALUE, StudyRuns
from ablate.reporting.sections import NA, Section, Table, interval, mean_std, num, signed, yes_no
from ablate.reporting.settings import Settings

FEW_SEEDS = 10  # below this a bootstrap over seeds has too few distinct resamples
# The numbers of a comparison, as the JSON and CSV carry them.
FIELDS = ("delta", "rel_gain", "ci_low", "ci_high", "boot_low", "boot_high", "p", "p_adj",
          "p_better", "decision", "mde", "seeds_needed", "paired", "sequential", "method",
          "explanation")


def on_test_split(objective: str) -> str | None:
    """The test-split counterpart of a ``val_`` objective (``val_iou`` -> ``test_iou``)."""
    return "test_" + objective.removeprefix("val_") if objective.startswith("val_") else None


def _value(value: object) -> object:
    if isinstance(value, list | dict):
        return json.dumps(value)
    return value


def family(study: StudyRuns, configs: pd.DataFrame, baseline: str | None,
           settings: Settings) -> dict[Pair, Row]:
    """Every comparison of the report, decided together (one family)."""
    pairs = report_pairs(study, [str(c) for c in configs.index], baseline)
    return compare_all(study, pairs, settings)


def ablation_section(study: StudyRuns, configs: pd.DataFrame, baseline: str | None,
                     rows: dict[Pair, Row], settings: Settings) -> Section:
    """One row per configuration: toggles Y/N, searched values, the objective's mean ± std
    over repeats, n, and (with a baseline) its comparison with the baseline."""
    obj = study.objective
    labels = [str(c) for c in configs.index]
    data: dict[str, list[Any]] = {"config": labels}
    view: dict[str, list[Any]] = {"config": labels}
    for comp in study.components:
        data[comp] = list(configs.get(COMP + comp, pd.Series(None, index=configs.index)))
        view[comp] = [yes_no(v) for v in data[comp]]
    for path in study.values:
        data[path] = [_value(v) for v in configs.get(VALUE + path, [None] * len(configs))]
        view[path] = [num(v) for v in data[path]]
    means, stds = _column(configs, "mean." + obj), _column(configs, "std." + obj)
    data["n"], data["mean"], data["std"] = [int(n) for n in configs["n"]], means, stds
    view[f"{obj} (mean ± std)"] = [mean_std(m, s) for m, s in zip(means, stds, strict=True)]
    view["n"] = data["n"]
    test = on_test_split(obj)
    text = [_intro(study)]
    notes: list[str] = []
    if baseline is not None:
        chosen = [rows.get((label, baseline)) for label in labels]
        data["reference"] = [None if r is None else baseline for r in chosen]
        _comparison_columns(data, view, chosen, f"diff vs {baseline}", labels, baseline)
        text.append(f"Baseline: `{baseline}`.")
        notes = [method_note(study, settings, list(rows.values()), "the baseline"),
                 *_in_words(chosen)]
    if test and "mean." + test in configs:
        data["test_mean"] = _column(configs, "mean." + test)
        data["test_std"] = _column(configs, "std." + test)
        view[f"{test} (mean ± std)"] = [
            mean_std(m, s) for m, s in zip(data["test_mean"], data["test_std"], strict=True)]
    return Section("Ablation table", text, Table("ablation", _frame(data), pd.DataFrame(view)),
                   notes)


def steps_section(study: StudyRuns, configs: pd.DataFrame, rows: dict[Pair, Row],
                  settings: Settings) -> Section:
    """Cumulative designs: each configuration against the one before it (what its last
    component adds)."""
    labels = [str(c) for c in configs.index]
    found = [rows.get((after, before)) for before, after in itertools.pairwise(labels)]
    chosen = [r for r in found if r is not None]
    data: dict[str, list[Any]] = {"config": [r.config for r in chosen],
                                     "reference": [r.reference for r in chosen]}
    data["n"] = [r.n for r in chosen]
    view: dict[str, list[Any]] = {"config": data["config"],
                                     "predecessor": data["reference"], "n": data["n"]}
    _comparison_columns(data, view, list(chosen), "diff", data["config"], None)
    text = [f"Each configuration against the one before it in the design: what its last "
            f"component adds to `{study.objective}`. These comparisons belong to the same "
            "family as the ablation table's (one correction across both tables)."]
    notes = [*_in_words(chosen)]
    return Section("Cumulative steps", text, Table("steps", _frame(data), pd.DataFrame(view)),
                   notes,
                   empty="_fewer than two configurations after the baseline_")


def _frame(data: dict[str, list[Any]]) -> pd.DataFrame:
    """The numbers, counts as nullable integers (a blank stays blank, 3 stays 3)."""
    frame = pd.DataFrame(data)
    for column in ("n", "n_compared", "seeds_needed"):
        if column in frame:
            frame[column] = frame[column].astype("Int64")
    return frame


def _column(configs: pd.DataFrame, name: str) -> list[float]:
    return [float(v) for v in configs.get(name, pd.Series(math.nan, index=configs.index))]


def _intro(study: StudyRuns) -> str:
    order = ("in design order" if study.kind.ordered
             else f"{'highest' if study.maximize else 'lowest'} mean `{study.objective}` first")
    return (f"One row per configuration, {order}; repeats (runs sharing a configuration label) "
            "are aggregated as mean ± std (ddof=1; one repeat: the value alone), `n` repeats. "
            "Components are shown as Y/N.")


def _comparison_columns(data: dict[str, list[Any]], view: dict[str, list[Any]],
                        rows: Sequence[Row | None], diff_header: str, labels: list[str],
                        reference: str | None) -> None:
    """The numbers of each row's comparison (``None``: the reference itself, or none)."""
    def get(row: Row | None, name: str) -> object:
        return getattr(row, name) if row is not None else None

    data["n_compared"] = [get(r, "n") for r in rows]
    for name in FIELDS:
        data[name] = [get(r, name) for r in rows]
    sequential = any(r is not None and r.sequential for r in rows)
    own = [label == reference for label in labels]
    if any(r is not None and r.n != n for r, n in zip(rows, data.get("n", []), strict=False)):
        view["seeds compared"] = [NA if r is None else r.n for r in rows]
    view[diff_header] = ["baseline" if b else (NA if r is None else signed(r.delta))
                         for b, r in zip(own, rows, strict=True)]
    view["gain %"] = ["" if r is None else signed(100 * r.rel_gain, 3) for r in rows]
    view["repeated CI" if sequential else "95% CI"] = [
        "" if r is None else interval(r.ci_low, r.ci_high) + ("" if r.paired else " (Welch)")
        for r in rows]
    if not sequential:
        view["BCa 95%"] = ["" if r is None else interval(r.boot_low, r.boot_high) for r in rows]
        view["p_adj"] = ["" if r is None else _p(r.p_adj) for r in rows]
    view["P(better)"] = ["" if r is None else num(r.p_better, 2) for r in rows]
    view["decision"] = ["" if r is None else r.decision for r in rows]
    if any(r is not None and r.decision == "undecided" for r in rows):
        view["MDE"] = ["" if r is None or r.decision != "undecided" else _mde(r.mde)
                       for r in rows]
        view["seeds needed"] = ["" if r is None or r.decision != "undecided" else r.seeds_text
                                for r in rows]


def _p(value: float) -> str:
    if value is None or math.isnan(value):
        return NA
    return f"{value:.3g}" if value >= 1e-3 else f"{value:.1e}"


def _mde(value: float) -> str:
    if value is None or math.isnan(value):
        return NA
    return "∞" if math.isinf(value) else f"{value:.3g}"


def _in_words(rows: Sequence[Row | None]) -> list[str]:
    lines = [f"- `{r.config}` vs `{r.reference}`: **{r.decision}**: {r.explanation}."
             for r in rows if r is not None]
    return ["\n".join(lines)] if lines else []


def method_note(study: StudyRuns, settings: Settings, rows: list[Row], reference: str) -> str:
    """The method in one paragraph: which intervals, which test, which correction, alpha."""
    m = len(rows)
    against = (f"{reference} (steps table: its predecessor)" if study.kind.chained
               else reference)
    head = (f"Method: paired by seed (repeat r of every configuration uses seed r, tag "
            f"`ablate.seed`); each comparison works on the per-seed differences, configuration "
            f"minus {against}. `diff`: their mean; `gain %`: diff in percent of the "
            f"reference's mean on those seeds; `P(better)`: share of seeds won "
            f"(`{study.objective}`: {'higher' if study.maximize else 'lower'} is better).")
    margin = settings.equivalence_margin
    equivalent = (f" `equivalent`: two one-sided t tests put the difference within "
                  f"±{margin:g};" if margin else "")
    target = (f"the target effect {settings.target_effect:g}" if settings.target_effect
              else "the observed difference")
    if settings.adaptive:
        low, high = settings.repeats or (0, 0)
        return (
            f"{head} Adaptive repeats: {low} seeds each, then one more while a comparison was "
            f"undecided, up to {high}. Each comparison is a group-sequential paired t test "
            f"(O'Brien-Fleming-type alpha spending over the looks at {low}..{high} seeds, "
            f"thresholds calibrated for the t statistic) at alpha {settings.alpha:g} / {m}, so "
            f"the chance of any wrong `better`/`worse` at any look stays <= "
            f"{settings.alpha:g}. `diff` and `repeated CI` (level 1 - alpha/m) are taken where "
            "the comparison stopped (`seeds compared`, where it differs from `n`); that "
            "interval stays valid wherever it stopped, a fixed-n p-value or bootstrap "
            "interval would not (not shown). `identical`: every difference exactly 0 between "
            "bit-reproducible runs (not CUDA with deterministic: false);"
            + equivalent + " `undecided` at the last look: `MDE` (what a fixed-n t test at "
            f"level alpha/m finds with 80% power at that n) and `seeds needed` for 80% power "
            f"to find {target}.")
    welch = [r for r in rows if not r.paired]
    return (
        f"{head} `95% CI`: paired t interval; `BCa 95%`: bootstrap interval ({RESAMPLES:,} "
        f"resamples, seed {SEED}; {NA} below 3 seeds{_few(rows)}). `p_adj`: two-sided sign-flip "
        f"permutation p-value (exact up to {EXACT_UP_TO} seeds), adjusted across the {m} "
        f"comparisons of this report with {_correction(settings)}. `better`/`worse`: p_adj "
        f"<= {settings.alpha:g}; `identical`: every difference exactly 0 between bit-reproducible "
        "runs (not CUDA with deterministic: false);" + equivalent +
        f" else `undecided`, with `MDE` (what a t test at level alpha/m = "
        f"{settings.alpha / max(m, 1):.3g} finds with 80% power at this n; ∞: no sign-flip "
        f"p-value is that small with so few seeds) and `seeds needed` for 80% power to find "
        f"{target}. Intervals are per comparison; the decisions are corrected."
        + (f" {len(welch)} comparison(s) marked (Welch) are unpaired (seeds missing on the "
           "reference side): Welch's t interval and test instead." if welch else ""))


def _few(rows: list[Row]) -> str:
    """A warning when some bootstrap interval rests on too few seeds to be trusted."""
    few = [r.n for r in rows if BOOTSTRAP_MIN_N <= r.n < FEW_SEEDS]
    if not few:
        return ""
    return (f"; too narrow below about {FEW_SEEDS} seeds: n seeds have few distinct "
            f"resamples ({min(few)} seeds: {math.comb(2 * min(few) - 1, min(few))}), so read "
            "the t interval there")


def _correction(settings: Settings) -> str:
    return {"holm": "Holm's step-down method (family-wise error <= alpha)",
            "bh": "Benjamini-Hochberg (false discovery rate <= alpha)",
            "none": "no correction"}[settings.correction]
