"""Simulated ablation studies (pure numpy, no training): does adaptive repeats keep its error
rate, and what does it cost or save against a fixed number of seeds?

Each study compares ``--rows`` configurations with one baseline. Seed r of every
configuration shares a seed effect (common random numbers, SD 2) plus its own run noise, so
the per-seed differences to the baseline have SD 1 and rows are correlated through the
shared baseline runs (0.5). Noise is normal, or Student t with 3 df scaled to the same SD
(heavier tails). For every row the runner's rule is replayed: ``look`` after each seed from
``--min`` on, a seed added while it says ``continue``, up to ``--max``.

Procedures compared on the same simulated seeds:

- adaptive: :class:`ablate.inference.SequentialPlan` (group-sequential t test, alpha spent
  over the looks, Bonferroni over rows);
- fixed n=max, same test: the same plan with one look at n = max (the t test at alpha / rows);
- fixed n=max, report rule: exact sign-flip p-values, Holm over rows (``decide``'s rule);
- naive: the fixed-n t test at alpha / rows re-run after every seed (what not to do).

Figures: the share of rows declared better or worse (per row; with no effect this is the
false-positive rate, with an effect the power), the share of studies with at least one false
declaration (family-wise; the adaptive procedure controls this one, <= alpha, and so the
per-row rate too), and the mean number of seeds each configuration used. In the two "margin"
scenarios the claim counted is ``equivalent`` (within ±margin): false when the true
difference is at the margin, the power of the equivalence test when it is 0.

    python benchmarks/sequential_sim.py [--studies 5000] [--rows 3] [--min 3] [--max 10]
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import time
from dataclasses import dataclass

import numpy as np
import scipy
from scipy import stats

from ablate.inference import Decision, SequentialPlan, adjust, look
from ablate.inference.onesample import sign_flip_p

DECLARED = (Decision.BETTER, Decision.WORSE)


@dataclass(frozen=True)
class Scenario:
    name: str
    effect: float  # true mean difference of every row, in SDs of the per-seed differences
    noise: str  # "normal" or "t3"
    margin: float | None = None  # equivalence margin (SDs); then "equivalent" is what counts


@dataclass(frozen=True)
class Outcome:
    declared: np.ndarray  # studies x rows, the claim of interest was made
    seeds: np.ndarray  # studies x rows, seeds used


def differences(s: Scenario, studies: int, rows: int, max_n: int,
                rng: np.random.Generator) -> np.ndarray:
    """Per-seed differences (studies x rows x seeds) from simulated runs of the baseline and
    each row sharing seed effects; SD of a difference 1."""
    shape = (studies, rows + 1, max_n)
    if s.noise == "normal":
        noise = rng.standard_normal(shape)
    else:
        noise = rng.standard_t(3, shape) / math.sqrt(3.0)  # t3 has variance 3
    seed_effect = 2.0 * rng.standard_normal((studies, 1, max_n))
    runs = seed_effect + noise / math.sqrt(2.0)
    runs[:, 1:, :] += s.effect
    return runs[:, 1:, :] - runs[:, :1, :]


def adaptive(d: np.ndarray, plan: SequentialPlan, claim: tuple[Decision, ...]) -> Outcome:
    """Each row replayed through ``look`` seed by seed until decided or max_n."""
    studies, rows, _ = d.shape
    declared = np.zeros((studies, rows), dtype=bool)
    seeds = np.full((studies, rows), plan.max_n)
    for i in range(studies):
        for j in range(rows):
            for n in range(plan.min_n, plan.max_n + 1):
                decision = look(d[i, j, :n], plan).decision
                if decision != Decision.CONTINUE:
                    declared[i, j], seeds[i, j] = decision in claim, n
                    break
    return Outcome(declared, seeds)


def naive(d: np.ndarray, plan: SequentialPlan) -> Outcome:
    """The fixed-n t test at alpha / rows after every seed, stopping at the first p <= it."""
    studies, rows, _ = d.shape
    declared = np.zeros((studies, rows), dtype=bool)
    seeds = np.full((studies, rows), plan.max_n)
    for n in range(plan.max_n, plan.min_n - 1, -1):  # the earliest crossing wins
        x = d[:, :, :n]
        t = x.mean(-1) / (x.std(-1, ddof=1) / math.sqrt(n))
        hit = 2 * stats.t.sf(np.abs(t), n - 1) <= plan.row_alpha
        declared |= hit
        seeds = np.where(hit, n, seeds)
    return Outcome(declared, seeds)


def report_rule(d: np.ndarray, alpha: float) -> Outcome:
    """Fixed n: exact sign-flip p-value per row, Holm over the rows, adjusted p <= alpha."""
    studies, rows, n = d.shape
    declared = np.zeros((studies, rows), dtype=bool)
    for i in range(studies):
        p = [sign_flip_p(d[i, j])[0] for j in range(rows)]
        declared[i] = adjust(p, "holm") <= alpha
    return Outcome(declared, np.full((studies, rows), n))


def figures(out: Outcome, s: Scenario) -> tuple[float, float, float]:
    """Per-row rate, family-wise rate (when every row's claim is false) and mean seeds."""
    per_row = float(out.declared.mean())
    false_claims = s.effect == 0.0 if s.margin is None else abs(s.effect) >= s.margin
    family = float(out.declared.any(axis=1).mean()) if false_claims else math.nan
    return per_row, family, float(out.seeds.mean())


def outcomes(s: Scenario, d: np.ndarray, args: argparse.Namespace) -> dict[str, Outcome]:
    """Every procedure on the same simulated differences."""
    plan = SequentialPlan(args.min, args.max, args.alpha, args.rows,
                          equivalence_margin=s.margin, spending=args.spending)
    fixed = SequentialPlan(args.max, args.max, args.alpha, args.rows,
                           equivalence_margin=s.margin)
    claim = (Decision.EQUIVALENT,) if s.margin is not None else DECLARED
    out = {
        "adaptive (sequential)": adaptive(d, plan, claim),
        f"fixed n={args.max}, same test": adaptive(d, fixed, claim),
    }
    if s.margin is None:
        out[f"fixed n={args.max}, sign-flip+Holm"] = report_rule(d, args.alpha)
        out["naive t test after each seed"] = naive(d, plan)
    return out


SCENARIOS = (
    Scenario("no effect, normal", 0.0, "normal"),
    Scenario("no effect, t3 tails", 0.0, "t3"),
    Scenario("effect 1 SD, normal", 1.0, "normal"),
    Scenario("effect 1 SD, t3 tails", 1.0, "t3"),
    Scenario("effect 2 SD, normal", 2.0, "normal"),
    Scenario("at the margin 1 SD, normal", 1.0, "normal", margin=1.0),
    Scenario("no effect, margin 1 SD, normal", 0.0, "normal", margin=1.0),
)


def run(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(args.seed)
    print(f"{'scenario':32} {'procedure':30} {'declared/row':>12} {'family-wise':>11} "
          f"{'seeds/config':>12}")
    for s in SCENARIOS:
        d = differences(s, args.studies, args.rows, args.max, rng)
        for label, outcome in outcomes(s, d, args).items():
            per_row, family, seeds = figures(outcome, s)
            fam = "" if math.isnan(family) else f"{family:.4f}"
            print(f"{s.name:32} {label:30} {per_row:12.4f} {fam:>11} {seeds:12.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=5000)
    parser.add_argument("--rows", type=int, default=3)
    parser.add_argument("--min", type=int, default=3)
    parser.add_argument("--max", type=int, default=10)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--spending", default="obrien-fleming",
                        choices=["obrien-fleming", "pocock"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    print(f"{datetime.date.today()}  {os.cpu_count()} cores  {platform.python_version()}  "
          f"numpy {np.__version__}  scipy {scipy.__version__}")
    print(f"{args.studies} studies per scenario, {args.rows} configurations vs a baseline, "
          f"repeats min {args.min} max {args.max}, alpha {args.alpha} family-wise, "
          f"{args.spending} spending, simulation seed {args.seed}")
    run(args)
    print(f"MC standard error of a rate near {args.alpha}: "
          f"{math.sqrt(args.alpha * (1 - args.alpha) / args.studies):.4f} (family-wise), "
          f"took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
