"""Adaptive repeats: after ``min_n`` seeds, add seed r+1 only to configurations whose
comparison with the reference is still undecided, up to ``max_n``.

Looking at the data after every seed and stopping when a fixed-n test happens to pass would
inflate the false-positive rate well above alpha. This is a group-sequential test instead:

- at each look n = min_n, min_n+1, ..., max_n the statistic is the paired t statistic of the
  per-seed differences, ``T_n = mean / (sd / sqrt(n))``;
- the false-positive probability is spent across the looks with a Lan-DeMets spending
  function of the information fraction f = n / max_n: O'Brien-Fleming type by default,
  ``alpha(f) = 2 - 2 Phi(z_{1-alpha/2} / sqrt(f))``, which spends almost nothing at the
  first looks (where a t test on 2-4 degrees of freedom has little power anyway) and most
  near max_n; or Pocock type, ``alpha ln(1 + (e - 1) f)``, which spends evenly and loses
  more power at these small n;
- the threshold at each look is set so that, for normally distributed differences with no
  effect, the probability of first crossing it at that look is the alpha spent there. The
  joint law of (T_min, ..., T_max) under no effect does not depend on the unknown SD, so the
  thresholds are computed once by simulating that law (2^20 paths, fixed seed; each look's
  count of crossing paths is set two binomial standard errors below the spent share, so that
  the simulation error makes the test slightly conservative, never liberal). This accounts
  for the t statistic's heavy tails at 2-9 degrees of freedom, which the usual normal-theory
  boundaries converted to t quantiles do not (they exceed alpha here);
- several configurations compared with one baseline form a family of ``rows`` tests:
  each row is tested at ``alpha / rows`` (Bonferroni), so the probability that any row is
  wrongly declared better or worse, at any look, is <= alpha (family-wise, whatever the
  correlation between rows through the shared baseline);
- ``equivalent`` (with a margin): both one-sided t statistics ``(mean + margin) / se`` and
  ``(margin - mean) / se`` cross a one-sided threshold calibrated the same way at
  ``alpha / rows``; the chance of wrongly declaring a row equivalent is <= alpha as well;
- ``identical``: every difference exactly 0 at the first look is decided at once (no test).

The interval reported at a look is the repeated confidence interval ``mean ± threshold * se``
(level 1 - alpha / rows): it covers the true difference at every look simultaneously, so it
stays valid at whatever look the row stopped. (The plain mean of a row that stopped early
tends to overstate its effect, which is why stopping early needs this wider interval; a
fixed-n interval or p-value computed on the stopped seeds is not valid.) The final report
uses :func:`final_decision`, which replays the looks, so report and runner reach the same
decision from the same seeds. The price against a fixed n = max_n with the same test is
some power; the gain is fewer seeds for clear effects and for identical configurations
(``benchmarks/sequential_sim.py`` prints both).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from ablate.inference import power
from ablate.inference.decision import ALPHA, Decision, Outcome
from ablate.inference.estimate import Estimate
from ablate.inference.lazy import stats

Spending = Literal["obrien-fleming", "pocock"]
PATHS = 2**20
CALIBRATION_SEED = 20240917


@dataclass(frozen=True)
class Look:
    """One look of a plan: at ``n`` seeds, a row is declared better/worse when
    ``|T_n| >= threshold`` and equivalent when both one-sided margin statistics are
    ``>= equivalence_threshold`` (inf: no decision possible at this look). ``spent``: the
    cumulative false-positive probability per row spent by this look; ``nominal_p``: the
    two-sided p-value of a fixed-n t test at ``threshold``."""

    n: int
    spent: float
    threshold: float
    nominal_p: float
    equivalence_threshold: float


@dataclass(frozen=True)
class SequentialPlan:
    """Looks at n = ``min_n`` .. ``max_n`` seeds per configuration, ``rows`` configurations
    compared with the reference at family-wise level ``alpha``; ``maximize``: higher metric
    is better; ``equivalence_margin``: declare ``equivalent`` within ±margin (None: never);
    ``exact``: the runs are bit-reproducible, so all-zero differences are ``identical``."""

    min_n: int
    max_n: int
    alpha: float = ALPHA
    rows: int = 1
    maximize: bool = True
    equivalence_margin: float | None = None
    spending: Spending = "obrien-fleming"
    # whether the runs compared are bit-reproducible: only then may all-zero differences be
    # declared identical (GPU noise makes same-seed runs differ; see ablate.training.determinism)
    exact: bool = True

    def __post_init__(self) -> None:
        if not 2 <= self.min_n <= self.max_n:
            raise ValueError(f"repeats need 2 <= min ({self.min_n}) <= max ({self.max_n})")
        if not 0.0 < self.alpha < 1.0 or self.rows < 1:
            raise ValueError(f"alpha must be in (0, 1) and rows >= 1, got {self.alpha}, "
                             f"{self.rows}")
        if self.equivalence_margin is not None and not self.equivalence_margin > 0:
            raise ValueError(f"equivalence_margin must be > 0, got {self.equivalence_margin}")

    @property
    def row_alpha(self) -> float:
        """Level of each row's test: alpha / rows (Bonferroni over the family)."""
        return self.alpha / self.rows

    def boundaries(self) -> tuple[Look, ...]:
        """The looks n = min_n .. max_n with their thresholds (equivalence thresholds NaN
        without a margin)."""
        return _looks(self)


@functools.lru_cache(maxsize=64)
def _looks(plan: SequentialPlan) -> tuple[Look, ...]:
    args = (plan.min_n, plan.max_n, plan.row_alpha, plan.spending)
    two = _thresholds(*args, one_sided=False)
    one = (_thresholds(*args, one_sided=True) if plan.equivalence_margin is not None
           else (math.nan,) * len(two))
    return tuple(
        Look(n, _spend(plan.spending, plan.row_alpha, n / plan.max_n), c,
             float(2 * stats.t.sf(c, n - 1)), e)
        for n, c, e in zip(range(plan.min_n, plan.max_n + 1), two, one, strict=True))


@dataclass(frozen=True, kw_only=True)
class SequentialState(Estimate, Outcome):
    """A row after a look at ``n`` seeds: the :class:`~ablate.inference.estimate.Estimate`
    of the per-seed differences (configuration minus reference) and its
    :class:`~ablate.inference.decision.Outcome`.

    - ``decision``: better / worse / identical / equivalent, ``continue`` (add a seed) from
      :func:`look`, ``undecided`` from :func:`final_decision` when max_n did not decide;
    - ``stat``: the t statistic of the differences, ``threshold``: the look's boundary for
      |stat|;
    - ``ci_low``/``ci_high``: the repeated confidence interval ``delta ± threshold * se`` at
      ``level`` 1 - alpha / rows; no bootstrap interval and no p-value (not valid after
      stopping early);
    - ``equivalence_stat``: the smaller of ``(delta ± margin) / se`` (NaN without a margin),
      against ``equivalence_threshold``;
    - ``dropped``: NaN differences left out; ``mde``/``seeds_needed``: for an undecided row,
      the fixed-n minimum detectable effect at 80% power at level alpha / rows and the seeds a
      fixed-n study would need (None: more than 1,000 or unknown).
    """

    boot_method: str = "none (adaptive repeats: not valid after stopping early)"
    stat: float = math.nan
    threshold: float = math.nan
    equivalence_stat: float = math.nan
    equivalence_threshold: float = math.nan
    dropped: int = 0


def look(diffs: Sequence[float], plan: SequentialPlan) -> SequentialState:
    """The decision after the seeds so far (``diffs`` in seed order; NaNs dropped): decided, or
    ``continue`` to add a seed (also below ``min_n``)."""
    d = np.asarray(diffs, dtype=float)
    dropped = int(np.isnan(d).sum())
    d = d[~np.isnan(d)]
    n = int(d.size)
    if n > plan.max_n:
        raise ValueError(f"{n} differences exceed the plan's max_n {plan.max_n}")
    level = 1.0 - plan.row_alpha  # of the repeated confidence interval
    if n < plan.min_n:
        mean = float(d.mean()) if n else math.nan
        return SequentialState(decision=Decision.CONTINUE, n=n, delta=mean, level=level,
                               dropped=dropped,
                               explanation=f"{n} of at least {plan.min_n} seeds so far")
    bound = plan.boundaries()[n - plan.min_n]
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    se = sd / math.sqrt(n)
    stat = _ratio(mean, se)
    half = bound.threshold * se if math.isfinite(bound.threshold) else math.inf
    state = SequentialState(decision=Decision.CONTINUE, n=n, delta=mean, level=level, sd=sd,
                            se=se, df=float(n - 1), stat=stat, threshold=bound.threshold,
                            ci_low=mean - half, ci_high=mean + half, dropped=dropped)
    if plan.equivalence_margin is not None:
        margin = plan.equivalence_margin
        state = replace(state, equivalence_stat=min(_ratio(mean + margin, se),
                                                    _ratio(margin - mean, se)),
                        equivalence_threshold=bound.equivalence_threshold)
    return _decide(state, d, plan)


def final_decision(diffs: Sequence[float], plan: SequentialPlan,
                   target_effect: float | None = None) -> SequentialState:
    """The decision the report shows for an adaptively sampled row: the looks replayed from
    ``min_n`` on, the first decided one wins; at the last look (``max_n``, or fewer seeds when
    runs are missing) ``continue`` becomes ``undecided``, with the MDE and the seeds a
    fixed-n study would need for ``target_effect`` (or else the observed difference)."""
    d = np.asarray(diffs, dtype=float)
    dropped = int(np.isnan(d).sum())
    d = d[~np.isnan(d)][: plan.max_n]
    state = look(d[: plan.min_n], plan)  # below min_n: continue
    for n in range(plan.min_n + 1, d.size + 1):
        if state.decision != Decision.CONTINUE:
            break
        state = look(d[:n], plan)
    state = replace(state, dropped=dropped)
    if state.decision != Decision.CONTINUE:
        return state
    return _undecided(state, plan, target_effect)


def _decide(state: SequentialState, d: np.ndarray, plan: SequentialPlan) -> SequentialState:
    n = state.n
    if plan.exact and np.all(d == 0.0):
        return replace(state, decision=Decision.IDENTICAL, explanation=(
            f"every one of the {n} per-seed differences is exactly 0: the runs are "
            "bit-identical to the reference"))
    if abs(state.stat) >= state.threshold and math.isfinite(state.threshold):
        higher = state.delta > 0
        decision = Decision.BETTER if higher == plan.maximize else Decision.WORSE
        return replace(state, decision=decision, explanation=(
            f"{'higher' if higher else 'lower'} by {abs(state.delta):.3g} at n = {n}: "
            f"|t| = {abs(state.stat):.3g} >= {state.threshold:.3g}, the sequential boundary at "
            f"this look (family-wise alpha {plan.alpha:g} over {plan.rows} row(s)); repeated "
            f"CI [{state.ci_low:.3g}, {state.ci_high:.3g}]"))
    eq = state.equivalence_threshold
    if plan.equivalence_margin is not None and math.isfinite(eq) and state.equivalence_stat >= eq:
        return replace(state, decision=Decision.EQUIVALENT, explanation=(
            f"within ±{plan.equivalence_margin:g} of the reference at n = {n} (difference "
            f"{state.delta:.3g}): both one-sided t >= {eq:.3g}"))
    return replace(state, explanation=(
        f"undecided at n = {n}: |t| = {abs(state.stat):.3g} < {state.threshold:.3g}"))


def _undecided(state: SequentialState, plan: SequentialPlan,
               target: float | None) -> SequentialState:
    words = f"undecided after {state.n} of at most {plan.max_n} seeds"
    if state.n < max(plan.min_n, 2) or math.isnan(state.sd):
        return replace(state, decision=Decision.UNDECIDED, explanation=words)
    level = plan.row_alpha
    mde = power.mde(state.sd, state.n, level)
    effect = abs(target) if target else abs(state.delta)
    needed = power.seeds_needed(effect, state.sd, level)
    text = str(needed) if needed is not None else f"> {power.CAP}"
    which = "the target effect" if target else "the observed difference"
    return replace(state, decision=Decision.UNDECIDED, mde=mde, seeds_needed=needed,
                   explanation=(
                       f"{words} (|t| = {abs(state.stat):.3g} < {state.threshold:.3g}); a "
                       f"fixed-n t test at level {level:.3g} would find {mde:.3g} with 80% "
                       f"power at this n and needs {text} seeds for {which} ({effect:.3g})"))


def _ratio(mean: float, se: float) -> float:
    """``mean / se`` with no spread read as certainty: ±inf for a non-zero mean, 0 for 0."""
    if se > 0.0:
        return mean / se
    return math.copysign(math.inf, mean) if mean != 0.0 else 0.0


def _spend(spending: Spending, level: float, fraction: float) -> float:
    """Cumulative false-positive probability spent at information ``fraction`` (0..1]."""
    if spending == "pocock":
        return level * math.log(1.0 + (math.e - 1.0) * fraction)
    z = stats.norm.isf(level / 2)
    return float(2.0 * stats.norm.sf(z / math.sqrt(fraction)))


@functools.lru_cache(maxsize=64)
def _thresholds(min_n: int, max_n: int, level: float, spending: Spending,
                one_sided: bool) -> tuple[float, ...]:
    """Per-look thresholds for T_n (or |T_n|, two-sided) such that, for normal differences
    with no effect, the share of simulated paths first crossing by look n is the spent level.

    Paths grow one standard-normal difference at a time; at each look the threshold is the
    k-th largest statistic among the paths still running, k the paths allowed to cross
    there (none allowed: inf); at the first look it is the exact t quantile. The paths
    allowed to cross by a look are the spent share less two binomial standard errors, so
    that the simulation's own error errs on the conservative side."""
    if min_n == max_n:  # one look: the fixed-n t test
        return (float(stats.t.isf(level if one_sided else level / 2, min_n - 1)),)
    rng = np.random.default_rng(CALIBRATION_SEED)
    total, squares = np.zeros(PATHS), np.zeros(PATHS)
    running = np.ones(PATHS, dtype=bool)
    crossed, out = 0, []
    for n in range(1, max_n + 1):
        x = rng.standard_normal(PATHS)
        total += x
        squares += x * x
        if n < min_n:
            continue
        mean = total / n
        t = mean / np.sqrt((squares - n * mean * mean) / (n - 1) / n)
        stat = t if one_sided else np.abs(t)
        spent = _spend(spending, level, n / max_n)
        if n == min_n:  # the first look alone has a known law: Student's t
            threshold = float(stats.t.isf(spent if one_sided else spent / 2, n - 1))
        else:
            expected = spent * PATHS
            allowed = math.floor(expected - 2.0 * math.sqrt(expected)) - crossed
            live = stat[running]
            if allowed <= 0 or live.size == 0:
                out.append(math.inf)
                continue
            threshold = float(np.partition(live, live.size - allowed)[live.size - allowed])
        hit = running & (stat >= threshold)
        crossed += int(hit.sum())
        running &= ~hit
        out.append(threshold)
    return tuple(out)
