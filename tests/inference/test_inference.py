"""ablate.inference against scipy, hand computation and simulation (no store needed)."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats as sps

from ablate.inference import (
    Decision,
    SequentialPlan,
    adjust,
    compare,
    decide,
    factorial_effects,
    final_decision,
    look,
    mde,
    seeds_needed,
    t_power,
    tost_p,
)
from ablate.inference.onesample import RESAMPLES, SEED, sign_flip_p

# The one-at-a-time study: noop bit-identical to the baseline, frozen worse on every
# seed by (-0.41, -0.36, -0.12).
BASELINE = {0: 0.70, 1: 0.50, 2: 0.49}
FROZEN_DIFFS = (-0.41, -0.36, -0.12)
FROZEN = {s: BASELINE[s] + d for s, d in zip(BASELINE, FROZEN_DIFFS, strict=True)}


def seeds(values):
    return dict(enumerate(values))


# --- the worked example -----------------------------------------------------------------


def test_noop_is_identical():
    row = compare(dict(BASELINE), BASELINE, maximize=True)
    assert row.paired and row.identical
    assert (row.delta, row.p, row.p_t, row.p_better) == (0.0, 1.0, 1.0, 0.0)
    assert (row.ci_low, row.ci_high) == (0.0, 0.0)
    [verdict] = decide([row])
    assert verdict.decision == Decision.IDENTICAL
    assert "bit-identical" in verdict.explanation


def test_frozen_at_three_seeds_is_honestly_undecided():
    row = compare(FROZEN, BASELINE, maximize=True)
    assert row.delta == pytest.approx(np.mean(FROZEN_DIFFS))
    assert row.rel_gain == pytest.approx(row.delta / np.mean(list(BASELINE.values())))
    assert row.p_better == 0.0
    assert row.p == 0.25  # 2 of the 8 sign patterns are as extreme: the smallest p at n = 3
    noop = compare(dict(BASELINE), BASELINE, maximize=True)
    verdicts = decide([noop, row])
    assert [v.decision for v in verdicts] == [Decision.IDENTICAL, Decision.UNDECIDED]
    # Two rows at alpha 0.05: a row is sure to be declared below p = 0.025, which the exact
    # sign-flip test first reaches at n = 7 (2 / 2^7); at n = 3 no effect is detectable.
    assert verdicts[1].mde == math.inf
    assert verdicts[1].seeds_needed == 7


@pytest.mark.parametrize("spending", ["obrien-fleming", "pocock"])
def test_frozen_with_adaptive_repeats_is_worse_within_ten_seeds(spending):
    plan = SequentialPlan(3, 10, rows=2, spending=spending)
    assert look(FROZEN_DIFFS, plan).decision == Decision.CONTINUE
    rng = np.random.default_rng(1)
    more = rng.normal(np.mean(FROZEN_DIFFS), np.std(FROZEN_DIFFS, ddof=1), size=7)
    state = final_decision([*FROZEN_DIFFS, *more], plan)
    assert state.decision == Decision.WORSE
    assert state.n <= 10 and state.ci_high < 0
    noop = final_decision([0.0] * 3, plan)
    assert (noop.decision, noop.n) == (Decision.IDENTICAL, 3)


# --- paired comparisons against scipy ---------------------------------------------------

X = [0.61, 0.58, 0.66, 0.60, 0.63, 0.57]
REF = [0.55, 0.56, 0.60, 0.61, 0.58, 0.52]


def test_paired_interval_and_t_test_match_ttest_rel():
    row = compare(seeds(X), seeds(REF), maximize=True)
    expected = sps.ttest_rel(X, REF)
    ci = expected.confidence_interval(0.95)
    assert row.paired and row.n == 6
    assert (row.ci_low, row.ci_high) == pytest.approx((ci.low, ci.high))
    assert row.p_t == pytest.approx(expected.pvalue)
    assert row.delta == pytest.approx(np.mean(X) - np.mean(REF))
    assert row.p_better == pytest.approx(5 / 6)


def test_sign_flip_p_matches_scipy_permutation_test():
    d = np.subtract(X, REF)
    expected = sps.permutation_test((d,), lambda x, axis: np.mean(x, axis=axis),
                                    permutation_type="samples", n_resamples=np.inf,
                                    vectorized=True)
    row = compare(seeds(X), seeds(REF), maximize=True)
    assert row.p == pytest.approx(expected.pvalue)
    assert "exact sign-flip" in row.method


def test_monte_carlo_sign_flip_above_twelve_seeds():
    d = np.random.default_rng(3).normal(0.4, 1.0, size=14)
    exact = sps.permutation_test((d,), lambda x, axis: np.mean(x, axis=axis),
                                 permutation_type="samples", n_resamples=np.inf,
                                 vectorized=True).pvalue
    p, is_exact = sign_flip_p(d)
    assert not is_exact
    # Monte Carlo with 10,000 flips: standard error <= 0.005
    assert p == pytest.approx(exact, abs=0.02)
    assert p == sign_flip_p(d)[0]  # fixed seed: reproducible


def test_bootstrap_is_scipy_bca_with_the_fixed_seed():
    d = np.subtract(X, REF)
    expected = sps.bootstrap((d,), np.mean, n_resamples=RESAMPLES, method="BCa",
                             rng=np.random.default_rng(SEED)).confidence_interval
    row = compare(seeds(X), seeds(REF), maximize=True)
    assert (row.boot_low, row.boot_high) == pytest.approx((expected.low, expected.high))
    assert row.boot_method.startswith("BCa")


def test_missing_seed_falls_back_to_welch():
    x = {0: 0.61, 1: 0.58, 2: 0.66, 7: 0.60}
    row = compare(x, seeds(REF), maximize=True)
    expected = sps.ttest_ind(list(x.values()), REF, equal_var=False)
    ci = expected.confidence_interval(0.95)
    assert not row.paired and row.unmatched == 1
    assert "Welch" in row.method
    assert (row.ci_low, row.ci_high) == pytest.approx((ci.low, ci.high))
    assert row.p == pytest.approx(expected.pvalue)
    assert row.diffs == ()


def test_reference_with_more_seeds_stays_paired():
    row = compare(seeds(X[:4]), seeds(REF), maximize=True)
    assert row.paired and row.n == 4
    assert row.ref_mean == pytest.approx(np.mean(REF[:4]))


def test_nan_dropped_and_counted():
    x = seeds([0.61, math.nan, 0.66, 0.60])
    row = compare(x, seeds(REF[:4]), maximize=True)
    assert row.paired and row.n == 3 and row.dropped == 1
    assert row.delta == pytest.approx(np.mean([0.61 - 0.55, 0.66 - 0.60, 0.60 - 0.61]))


def test_one_seed_has_a_difference_but_no_interval():
    row = compare({0: 0.8}, {0: 0.7}, maximize=True)
    assert row.delta == pytest.approx(0.1)
    assert math.isnan(row.ci_low) and math.isnan(row.boot_low)
    assert row.boot_method == "none (n < 3)"
    assert row.p == 1.0  # both sign patterns are as extreme
    [verdict] = decide([row])
    assert verdict.decision == Decision.UNDECIDED and verdict.seeds_text == "n/a"


def test_constant_nonzero_difference():
    row = compare(seeds([0.6, 0.7, 0.8]), seeds([0.5, 0.6, 0.7]), maximize=True)
    assert not row.identical
    assert row.ci_low == pytest.approx(0.1) and row.ci_high == pytest.approx(0.1)
    assert row.p_t < 1e-12 and row.p == 0.25


def test_p_better_is_direction_aware():
    loss = compare(seeds([0.30, 0.28, 0.35]), seeds([0.32, 0.30, 0.33]), maximize=False)
    assert loss.p_better == pytest.approx(2 / 3)
    assert compare(seeds([0.30, 0.28, 0.35]), seeds([0.32, 0.30, 0.33]),
                   maximize=True).p_better == pytest.approx(1 / 3)


# --- multiple comparisons ---------------------------------------------------------------


def test_holm_by_hand():
    # sorted p 0.01, 0.02, 0.03, 0.04 -> 4*0.01, 3*0.02, 2*0.03 (raised to 0.06), 1*0.04
    # (raised to 0.06)
    p = [0.03, 0.01, 0.04, 0.02]
    assert adjust(p, "holm") == pytest.approx([0.06, 0.04, 0.06, 0.06])
    assert adjust([0.5, 0.9], "holm") == pytest.approx([1.0, 1.0])


def test_bh_matches_scipy_and_nan_passes_through():
    p = [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205]
    assert adjust(p, "bh") == pytest.approx(sps.false_discovery_control(p))
    with_nan = adjust([0.01, math.nan, 0.04], "holm")
    assert with_nan[0] == pytest.approx(0.02) and math.isnan(with_nan[1])
    assert with_nan[2] == pytest.approx(0.04)
    assert adjust(p, "none") == pytest.approx(p)
    with pytest.raises(ValueError, match="unknown correction"):
        adjust(p, "bonferroni")


# --- decisions, TOST and power ----------------------------------------------------------


def test_decisions_are_direction_aware_and_adjusted():
    up = seeds([0.61, 0.62, 0.64, 0.63, 0.65, 0.60, 0.62])
    base = seeds([0.50, 0.52, 0.53, 0.50, 0.55, 0.49, 0.51])
    raised = compare(up, base, maximize=True)
    assert raised.p == pytest.approx(2 / 128)
    assert decide([raised])[0].decision == Decision.BETTER
    assert decide([compare(up, base, maximize=False)])[0].decision == Decision.WORSE
    # Holm over four rows: 4 * 2/128 > 0.05, so the same row becomes undecided
    noise = compare(seeds([0.5, 0.6, 0.4, 0.55, 0.45, 0.5, 0.5]), base, maximize=True)
    verdicts = decide([raised, noise, noise, noise])
    assert verdicts[0].p_adj == pytest.approx(4 * 2 / 128)
    assert verdicts[0].decision == Decision.UNDECIDED


def test_tost_constructed_case():
    base = seeds([0.50, 0.52, 0.53, 0.50, 0.55, 0.49])
    d = np.array([0.004, -0.003, 0.006, 0.001, -0.002, 0.003])
    row = compare({s: v + d[s] for s, v in base.items()}, base, maximize=True)
    lower = sps.ttest_1samp(d, -0.01, alternative="greater").pvalue
    upper = sps.ttest_1samp(d, 0.01, alternative="less").pvalue
    assert tost_p(row, 0.01) == pytest.approx(max(lower, upper))
    [verdict] = decide([row], equivalence_margin=0.01)
    assert verdict.decision == Decision.EQUIVALENT
    [narrow] = decide([row], equivalence_margin=0.002)
    assert narrow.decision == Decision.UNDECIDED


def test_power_against_nct():
    effect, sd, n, alpha = 0.5, 1.0, 10, 0.05
    crit = sps.t.isf(alpha / 2, n - 1)
    nc = effect * math.sqrt(n) / sd
    expected = sps.nct.sf(crit, n - 1, nc) + sps.nct.cdf(-crit, n - 1, nc)
    assert t_power(effect, sd, n, alpha) == pytest.approx(expected)
    assert t_power(-effect, sd, n, alpha) == pytest.approx(expected)


def test_mde_and_seeds_needed_are_consistent():
    sd, n = 0.15, 5
    detectable = mde(sd, n)
    assert t_power(detectable, sd, n) == pytest.approx(0.8, abs=1e-6)
    # larger than the normal-approximation answer, (z_0.975 + z_0.8) * sd / sqrt(n)
    assert detectable > (sps.norm.isf(0.025) + sps.norm.isf(0.2)) * sd / math.sqrt(n)
    needed = seeds_needed(0.3, sd)
    assert t_power(0.3, sd, needed) >= 0.8 > t_power(0.3, sd, needed - 1)
    assert seeds_needed(1e-4, 1.0) is None  # more than 1,000


# --- factorial effects ------------------------------------------------------------------


def test_factorial_effects_from_paired_seeds():
    # 2x2, three seeds; seed effect +0, +1, -1 shared by every cell (cancels in contrasts)
    shift = [0.0, 1.0, -1.0]
    base = {(True, True): 10.0, (True, False): 6.0, (False, True): 5.0, (False, False): 2.0}
    noise = {(True, True): [0.1, -0.1, 0.2], (True, False): [0.0, 0.1, -0.1],
             (False, True): [-0.2, 0.0, 0.1], (False, False): [0.1, 0.0, 0.0]}
    cells = {c: {r: v + shift[r] + noise[c][r] for r in range(3)} for c, v in base.items()}
    cells[(False, False)][3] = 99.0  # a seed the other cells lack
    main_a, main_b, inter = factorial_effects(cells, ["a", "b"])
    assert (main_a.name, inter.name, inter.components) == ("a", "a x b", ("a", "b"))
    assert main_a.n == 3 and main_a.dropped == 1
    per_seed = [((cells[(True, True)][r] + cells[(True, False)][r])
                 - (cells[(False, True)][r] + cells[(False, False)][r])) / 2 for r in range(3)]
    assert main_a.estimate == pytest.approx(np.mean(per_seed))
    ci = sps.ttest_1samp(per_seed, 0.0).confidence_interval(0.95)
    assert (main_a.ci_low, main_a.ci_high) == pytest.approx((ci.low, ci.high))
    assert main_a.estimate == pytest.approx(4.5, abs=0.1)
    assert main_b.estimate == pytest.approx(3.5, abs=0.1)
    assert inter.estimate == pytest.approx(0.5, abs=0.1)  # ((10-6) - (5-2)) / 2
    assert [e.p_adj for e in (main_a, main_b, inter)] == pytest.approx(
        list(adjust([main_a.p, main_b.p, inter.p], "holm")))
    with pytest.raises(ValueError, match="all 4 cells"):
        factorial_effects({(True, True): {0: 1.0}}, ["a", "b"])


# --- the sequential procedure -----------------------------------------------------------


def test_plan_boundaries():
    plan = SequentialPlan(3, 10, rows=3, equivalence_margin=0.1)
    looks = plan.boundaries()
    assert [b.n for b in looks] == list(range(3, 11))
    thresholds = [b.threshold for b in looks]
    assert thresholds == sorted(thresholds, reverse=True)
    assert looks[-1].spent == pytest.approx(0.05 / 3)
    # the first look alone is a t test at the alpha spent there
    assert looks[0].nominal_p == pytest.approx(looks[0].spent)
    # one look at n = 10: the fixed-n t test at alpha / rows
    [single] = SequentialPlan(10, 10, rows=3).boundaries()
    assert single.threshold == pytest.approx(sps.t.isf(0.05 / 6, 9))
    with pytest.raises(ValueError, match="min"):
        SequentialPlan(5, 4)


def test_look_before_min_and_undecided_at_max():
    plan = SequentialPlan(3, 6)
    assert look([0.1, -0.1], plan).decision == Decision.CONTINUE
    noisy = [0.3, -0.2, 0.1, -0.25, 0.2, -0.1]
    assert look(noisy, plan).decision == Decision.CONTINUE
    final = final_decision(noisy, plan, target_effect=0.1)
    assert final.decision == Decision.UNDECIDED and final.n == 6
    assert final.mde == pytest.approx(mde(final.sd, 6, 0.05))
    assert final.seeds_needed == seeds_needed(0.1, final.sd, 0.05)
    assert final_decision([0.1, math.nan, -0.1], plan).dropped == 1


def test_sequential_equivalence():
    plan = SequentialPlan(3, 10, equivalence_margin=0.05)
    tiny = [0.001, -0.002, 0.0015, 0.0, -0.001, 0.0005, 0.001, -0.001, 0.0, 0.001]
    state = final_decision(tiny, plan)
    assert state.decision == Decision.EQUIVALENT
    assert state.equivalence_stat >= state.equivalence_threshold
    offset = [0.04 + v for v in tiny]  # within the margin, but not surely so
    assert final_decision(offset, plan).decision == Decision.BETTER


def _simulated_nulls(studies: int, rows: int, max_n: int) -> np.ndarray:
    """Per-seed differences of null rows vs one baseline (common seed effects cancel)."""
    rng = np.random.default_rng(2024)
    runs = 2.0 * rng.standard_normal((studies, 1, max_n)) + rng.standard_normal(
        (studies, rows + 1, max_n))
    return runs[:, 1:, :] - runs[:, :1, :]


def test_adaptive_repeats_keep_the_family_wise_error():
    """600 null studies, 3 rows, looks at 3..10: the adaptive procedure's family-wise
    false-positive rate stays near alpha = 0.05 (Monte Carlo SE ~0.009, bound 0.08), while
    re-running the fixed-n test at every look, on the same data, does not."""
    rows, studies = 3, 600
    plan = SequentialPlan(3, 10, rows=rows)
    d = _simulated_nulls(studies, rows, 10)
    declared = np.zeros((studies, rows), dtype=bool)
    for i in range(studies):
        for j in range(rows):
            for n in range(3, 11):  # as the runner does: one more seed while undecided
                decision = look(d[i, j, :n], plan).decision
                if decision != Decision.CONTINUE:
                    declared[i, j] = decision in (Decision.BETTER, Decision.WORSE)
                    break
    naive = np.zeros((studies, rows), dtype=bool)
    for n in range(3, 11):
        naive |= sps.ttest_1samp(d[:, :, :n], 0.0, axis=-1).pvalue <= plan.row_alpha
    assert declared.any(axis=1).mean() <= 0.08
    assert declared.mean() <= 0.08 / rows
    assert naive.any(axis=1).mean() > 0.08


def test_imports_neither_torch_nor_tracking():
    code = ("import sys, ablate.inference; "
            "print(sorted(m for m in ('torch', 'mlflow', 'optuna', 'ablate.reporting') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


# --- test-set sampling uncertainty from per-image counts ---------------------------------


def _image_counts(rng, n: int, k: int, quality: float) -> np.ndarray:
    """(n, k, 4) TP, FP, FN, TN of n images and k classes."""
    tp = rng.integers(20, 200, (n, k))
    fp = rng.integers(0, int(80 * (1 - quality)) + 1, (n, k))
    fn = rng.integers(0, int(80 * (1 - quality)) + 1, (n, k))
    return np.stack([tp, fp, fn, 1000 - tp - fp - fn], axis=-1)


def test_image_interval_pools_counts_and_matches_scipy_bca():
    from ablate.inference.images import image_interval, pooled_score

    counts = _image_counts(np.random.default_rng(0), 20, 3, 0.5)
    scored = np.array([True, True, False])  # a void class is left out
    result = image_interval(counts, scored)
    total = counts.sum(axis=0)
    expected = np.mean([total[c, 0] / total[c, :3].sum() for c in (0, 1)])
    assert result.estimate == pytest.approx(expected)
    per_image = np.mean(counts[:, :2, 0] / counts[:, :2, :3].sum(axis=-1))
    assert result.estimate != pytest.approx(per_image, abs=1e-6)  # not a mean of image scores

    def statistic(*columns, axis):
        sums = np.stack([c.sum(axis=axis) for c in columns], axis=-1)
        return pooled_score(sums.reshape(*sums.shape[:-1], 3, 4), scored)

    columns = tuple(counts.reshape(20, -1).T.astype(float))
    reference = sps.bootstrap(columns, statistic, paired=True, vectorized=True, method="BCa",
                              n_resamples=RESAMPLES, rng=np.random.default_rng(1))
    ci = reference.confidence_interval
    width = ci.high - ci.low
    # different resamples, same method: the bounds agree to a few percent of the width
    assert result.low == pytest.approx(ci.low, abs=0.05 * width)
    assert result.high == pytest.approx(ci.high, abs=0.05 * width)
    assert result.low < result.estimate < result.high


def test_paired_image_comparison_swaps_images_between_models():
    from ablate.inference.images import compare_images, pooled_score

    rng = np.random.default_rng(3)
    base = _image_counts(rng, 8, 1, 0.3)
    better = base.copy()
    better[:, 0, 1] //= 3  # fewer false positives on every image
    better[:, 0, 3] = 1000 - better[:, 0, :3].sum(axis=-1)
    scored = np.array([True])
    result = compare_images(better, base, scored)
    assert result.delta == pytest.approx(
        pooled_score(better.sum(0), scored) - pooled_score(base.sum(0), scored))
    # brute force over all 2^8 swaps of images between the two models
    hits = 0
    for pattern in itertools.product((False, True), repeat=8):
        swap = np.array(pattern)
        a = np.where(swap[:, None, None], base, better).sum(0)
        b = np.where(swap[:, None, None], better, base).sum(0)
        hits += abs(pooled_score(a, scored) - pooled_score(b, scored)) >= abs(result.delta) - 1e-12
    assert result.p == pytest.approx(hits / 256)
    assert result.p == pytest.approx(2 / 256)  # better on every image: only the two extremes
    assert 0 < result.low < result.delta < result.high
    assert "exact paired permutation (256 swaps)" in result.method
    same = compare_images(base, base, scored)
    assert (same.delta, same.p) == (0.0, 1.0)


def test_power_far_in_the_tail_stays_finite():
    # scipy's nct.cdf returns NaN for the negligible lower tail at df 2, nc ~14-16
    assert t_power(1.6, 0.1, 3, 0.025) == pytest.approx(1.0, abs=0.01)
    detectable = mde(0.1, 3, 0.025)
    assert math.isfinite(detectable) and t_power(detectable, 0.1, 3, 0.025) == pytest.approx(0.8)
