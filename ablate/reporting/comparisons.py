"""Each configuration against its reference, seed by seed, with one decision per comparison.

A configuration is compared with the baseline and, in a cumulative design, with the
configuration before it (its predecessor) too. Repeat r of every configuration is trained
with seed r (tag ``ablate.seed``), so runs sharing a seed are paired
(:mod:`ablate.inference.paired`). Every comparison the report shows is one test of one family:

- fixed repeats: the sign-flip p-values are adjusted across the family
  (``Settings.correction``), and :func:`ablate.inference.decide` gives each decision;
- adaptive repeats: each comparison is the group-sequential test the study ran
  (:func:`ablate.inference.final_decision`, alpha / family size per comparison): its decision
  and repeated confidence interval at the look where it stopped, no fixed-n p-value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ablate.designs import reference_pairs
from ablate.inference import (
    Comparison,
    Estimate,
    Outcome,
    SequentialPlan,
    Verdict,
    compare,
    decide,
    final_decision,
)
from ablate.inference.estimate import fields_of
from ablate.inference.paired import differences
from ablate.inference.sequential import SequentialState
from ablate.reporting.configs import objective_column
from ablate.reporting.runs import StudyRuns
from ablate.reporting.settings import Settings

Pair = tuple[str, str]  # (configuration, reference)


@dataclass(frozen=True, kw_only=True)
class Row(Estimate, Outcome):
    """One comparison, configuration minus reference: its
    :class:`~ablate.inference.estimate.Estimate` and :class:`~ablate.inference.Outcome`
    (the report's JSON carries :data:`~ablate.reporting.ablation.FIELDS` of it, flat).

    ``n``: seeds compared (adaptive: the look where the comparison stopped); ``rel_gain``:
    ``delta`` over the reference's mean on the same seeds; ``ci_low``/``ci_high``: paired t 95%
    interval, Welch's when unpaired, the repeated confidence interval when sequential;
    ``p``/``p_adj``: sign-flip (or Welch) p-value and its adjusted value (NaN when
    sequential); ``p_better``: share of seeds won; ``mde``/``seeds_needed``: for undecided
    comparisons.
    """

    config: str
    reference: str
    rel_gain: float
    p_better: float
    paired: bool
    sequential: bool
    method: str


def seed_values(study: StudyRuns) -> dict[str, dict[int, float]]:
    """Objective value by seed of each configuration's complete runs (seed tag; the repeat
    index for runs without one)."""
    done = study.complete()
    column = objective_column(study)
    if column not in done:
        return {}
    seeds = pd.to_numeric(done["seed"], errors="coerce")
    repeats = pd.to_numeric(done["repeat"], errors="coerce")
    keys = seeds.where(seeds.notna(), repeats)
    out: dict[str, dict[int, float]] = {}
    for label, key, value in zip(done["config"], keys, done[column], strict=True):
        if key is not None and not math.isnan(key):
            out.setdefault(str(label), {})[int(key)] = float(value)
    return out


def exact_configs(study: StudyRuns) -> set[str]:
    """Configurations whose complete runs are all bit-reproducible where they trained."""
    done = study.complete()
    if "reproducible" not in done:
        return set(done["config"].astype(str)) if "config" in done else set()
    return {str(label) for label, group in done.groupby("config")
            if bool(group["reproducible"].all())}


def report_pairs(study: StudyRuns, labels: list[str], baseline: str | None) -> list[Pair]:
    """The family: every configuration with the baseline, and each cumulative step with its
    predecessor (``labels`` in the table's order)."""
    return reference_pairs(study.design, labels, baseline)


def compare_all(study: StudyRuns, pairs: list[Pair], settings: Settings) -> dict[Pair, Row]:
    """One :class:`Row` per comparison of the family ``pairs``."""
    values = seed_values(study)
    exact = exact_configs(study)
    if settings.adaptive and pairs:
        low, high = settings.repeats or (2, 2)
        plan = SequentialPlan(low, high, settings.alpha, len(pairs), study.maximize,
                              settings.equivalence_margin)
        return {pair: _sequential(pair, values, replace(plan, exact=set(pair) <= exact),
                                  settings) for pair in pairs}
    rows = [compare(values.get(c, {}), values.get(r, {}), study.maximize) for c, r in pairs]
    # all-zero differences are "identical" only between bit-reproducible runs
    rows = [row if {c, r} <= exact else replace(row, identical=False)
            for (c, r), row in zip(pairs, rows, strict=True)]
    verdicts = decide(rows, settings.alpha, settings.correction, settings.equivalence_margin,
                      settings.target_effect)
    return {pair: _fixed(pair, row, verdict)
            for pair, row, verdict in zip(pairs, rows, verdicts, strict=True)}


def _fixed(pair: Pair, row: Comparison, verdict: Verdict) -> Row:
    return Row(**fields_of(Estimate, row), **fields_of(Outcome, verdict), config=pair[0],
               reference=pair[1], rel_gain=row.rel_gain, p_better=row.p_better,
               paired=row.paired, sequential=False, method=row.method)


def _sequential(pair: Pair, values: dict[str, dict[int, float]], plan: SequentialPlan,
                settings: Settings) -> Row:
    config, reference = values.get(pair[0], {}), values.get(pair[1], {})
    diffs = differences(config, reference)
    state: SequentialState = final_decision(diffs, plan, settings.target_effect)
    used = np.asarray(diffs[: state.n])
    shared = sorted(s for s in config if s in reference)[: state.n]
    ref_mean = float(np.mean([reference[s] for s in shared])) if shared else math.nan
    wins = (used > 0) if plan.maximize else (used < 0)
    nan = math.nan
    return Row(
        **fields_of(Estimate, state), **fields_of(Outcome, state), config=pair[0],
        reference=pair[1], rel_gain=state.delta / abs(ref_mean) if ref_mean else nan,
        p_better=float(wins.mean()) if used.size else nan, paired=True, sequential=True,
        method=(f"group-sequential paired t test (O'Brien-Fleming-type alpha spending over "
                f"looks at {plan.min_n}..{plan.max_n} seeds, alpha {plan.alpha:g} / "
                f"{plan.rows}), repeated confidence interval"))
