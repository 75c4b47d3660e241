"""One decision per row of a table of comparisons with a fixed number of seeds.

In order:

- ``identical``: paired and every per-seed difference exactly 0 (bit-identical runs);
- ``better`` / ``worse``: the row's p-value, adjusted across the table's rows (Holm by
  default), is <= alpha; the sign of ``delta`` and the metric's direction say which;
- ``equivalent`` (only with an ``equivalence_margin``): the two one-sided t tests (TOST) of
  "the difference is <= -margin" and ">= +margin" both reject at alpha, their larger p-value
  adjusted across the rows in the same way; the difference is then within ±margin;
- ``undecided``: none of the above. The explanation gives the minimum detectable effect (MDE:
  the difference the t test would find with 80% power at the current n and the SD of the
  differences) and the seeds needed to find ``target_effect`` (or else the observed
  difference) with 80% power.

MDE and seeds needed are computed at level alpha / m (m rows with a test): a row whose raw
p-value is below that is declared by Holm and by Benjamini-Hochberg whatever the other rows
show. A paired row is tested with the sign-flip permutation test, whose smallest possible
p-value with n seeds is 2 / 2^n (for n <= 12); where that exceeds the level no difference can
be declared at this n, the MDE is infinite and the seeds needed are at least enough to get
below it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from ablate.inference import power
from ablate.inference.lazy import stats
from ablate.inference.multiple import Correction, adjust
from ablate.inference.onesample import EXACT_UP_TO
from ablate.inference.paired import Comparison

ALPHA = 0.05


class Decision(StrEnum):
    """What a comparison concludes; ``continue`` only comes from a sequential look."""

    BETTER = "better"
    WORSE = "worse"
    IDENTICAL = "identical"
    EQUIVALENT = "equivalent"
    UNDECIDED = "undecided"
    CONTINUE = "continue"


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What a comparison concluded, and what an undecided one would take.

    - ``p_adj``: its p-value adjusted across the family (NaN for a sequential test, which
      has no fixed-n p-value);
    - ``mde``: minimum detectable effect at 80% power (undecided rows; inf when the current n
      cannot reach the level at all; NaN below 2 seeds);
    - ``seeds_needed``: seeds for 80% power to find the target effect or else the observed
      difference (undecided rows; None: more than 1,000, or unknown below 2 seeds);
      :attr:`seeds_text` writes it for a table;
    - ``explanation``: the decision in words, with the figures behind it.
    """

    decision: Decision
    p_adj: float = math.nan
    mde: float = math.nan
    seeds_needed: int | None = None
    explanation: str = ""

    @property
    def seeds_text(self) -> str:
        """``seeds_needed`` for a table: blank unless undecided, ``"> 1000"`` beyond the cap,
        ``"n/a"`` without a spread estimate."""
        if self.decision != Decision.UNDECIDED:
            return ""
        if self.seeds_needed is not None:
            return str(self.seeds_needed)
        return "n/a" if math.isnan(self.mde) else f"> {power.CAP}"


@dataclass(frozen=True, kw_only=True)
class Verdict(Outcome):
    """The :class:`Outcome` of one row of a fixed-n table: ``p_equiv``: the adjusted TOST
    p-value (NaN without a margin); ``level``: alpha / m, the level of the MDE and
    seeds-needed figures."""

    p_equiv: float = math.nan
    level: float = math.nan


def decide(
    rows: Sequence[Comparison],
    alpha: float = ALPHA,
    correction: Correction = "holm",
    equivalence_margin: float | None = None,
    target_effect: float | None = None,
) -> list[Verdict]:
    """A :class:`Verdict` for each comparison, the p-values adjusted across ``rows``."""
    p_adj = adjust([r.p for r in rows], correction)
    tost = [tost_p(r, equivalence_margin) if equivalence_margin else math.nan for r in rows]
    p_equiv = adjust(tost, correction)
    tested = sum(1 for r in rows if not math.isnan(r.p))
    level = alpha / tested if correction != "none" and tested else alpha
    return [
        _verdict(r, float(pa), float(pe), alpha, level, correction, equivalence_margin,
                 target_effect)
        for r, pa, pe in zip(rows, p_adj, p_equiv, strict=True)
    ]


def tost_p(row: Comparison, margin: float) -> float:
    """p-value of the two one-sided t tests that the difference lies within ±``margin``: the
    larger of P(T >= (delta + margin) / se) and P(T <= (delta - margin) / se), T ~ t(df)."""
    if math.isnan(row.se) or not row.df > 0:
        return math.nan
    if row.se == 0.0:
        return 0.0 if abs(row.delta) < margin else 1.0
    lower = stats.t.sf((row.delta + margin) / row.se, row.df)
    upper = stats.t.cdf((row.delta - margin) / row.se, row.df)
    return float(max(lower, upper))


def _verdict(row: Comparison, p_adj: float, p_equiv: float, alpha: float, level: float,
             correction: Correction, margin: float | None, target: float | None) -> Verdict:
    adjusted = f"adjusted p = {p_adj:.3g} ({correction})"
    made = functools.partial(Verdict, p_adj=p_adj, p_equiv=p_equiv, level=level)
    if row.identical:
        return made(decision=Decision.IDENTICAL, explanation=(
            f"every one of the {row.n} per-seed differences is exactly 0: the runs are "
            "bit-identical to the reference"))
    if p_adj <= alpha:
        higher = row.delta > 0
        decision = Decision.BETTER if higher == row.maximize else Decision.WORSE
        return made(decision=decision, explanation=(
            f"{'higher' if higher else 'lower'} by {abs(row.delta):.3g} "
            f"({'higher' if row.maximize else 'lower'} is better), {row.level:.0%} CI "
            f"[{row.ci_low:.3g}, {row.ci_high:.3g}]; {adjusted} <= {alpha:g}"))
    if margin and p_equiv <= alpha:
        return made(decision=Decision.EQUIVALENT, explanation=(
            f"within ±{margin:g} of the reference (difference {row.delta:.3g}): TOST "
            f"adjusted p = {p_equiv:.3g} ({correction}) <= {alpha:g}"))
    return _undecided(row, p_adj, p_equiv, alpha, level, adjusted, target)


def _undecided(row: Comparison, p_adj: float, p_equiv: float, alpha: float, level: float,
               adjusted: str, target: float | None) -> Verdict:
    samples: power.Samples = 1 if row.paired else 2
    sd = row.sd if row.paired else math.hypot(row.std, row.ref_std)
    words = f"not distinguishable from the reference at n = {row.n} ({adjusted} > {alpha:g})"
    if math.isnan(sd) or math.isnan(p_adj):
        return Verdict(decision=Decision.UNDECIDED, p_adj=p_adj, p_equiv=p_equiv, level=level,
                       explanation=f"{words}; no spread estimate below 2 seeds a side")
    floor_n = _permutation_floor(level) if row.paired else 2
    mde = power.mde(sd, row.n, level, samples=samples) if row.n >= floor_n else math.inf
    effect = abs(target) if target else abs(row.delta)
    needed = power.seeds_needed(effect, sd, level, samples=samples)
    if needed is not None:
        needed = max(needed, floor_n)
    verdict = Verdict(decision=Decision.UNDECIDED, p_adj=p_adj, p_equiv=p_equiv, level=level,
                      mde=mde, seeds_needed=needed)
    which = "the target effect" if target else "the observed difference"
    return replace(verdict, explanation=(
        f"{words}; minimum detectable effect at 80% power {mde:.3g} (level {level:.3g}); "
        f"{verdict.seeds_text} seeds for 80% power to find {which} ({effect:.3g})"))


def _permutation_floor(level: float) -> int:
    """Smallest n whose exact sign-flip test can give a p-value <= ``level`` (2 / 2^n)."""
    n = 1
    while n <= EXACT_UP_TO and 2.0 ** (1 - n) > level:
        n += 1
    return n
