"""Pairing, correction and decisions of the ablation table on stores written with known
per-seed values; the report's settings and its JSON; the image-level tables."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from ablate.inference import SequentialPlan, final_decision, mde, seeds_needed
from ablate.reporting import assemble, load_runs
from ablate.stores import resolve_stores
from ablate.testing.fixtures import StoreWriter, sqlite_store
from ablate.training.result import ImageCounts

# Seeds 0..7 with large seed effects shared by every configuration (common random numbers).
BASE = np.array([0.50, 0.70, 0.30, 0.60, 0.40, 0.80, 0.55, 0.45])
SHIFTS = {  # configuration minus baseline, seed by seed
    "+up": np.array([0.020, 0.025, 0.018, 0.022, 0.021, 0.019, 0.024, 0.023]),
    "+down": -np.array([0.030, 0.028, 0.035, 0.031, 0.029, 0.033, 0.030, 0.032]),
    "+noop": np.zeros(8),
    "+noise": np.array([0.010, -0.020, 0.015, -0.010, 0.005, -0.012, 0.000, 0.004]),
}
# the same +up as a configuration with an extra seed (9) the baseline lacks: unpaired
GAP_SEEDS = [0, 1, 2, 3, 4, 5, 6, 7, 9]
# Seven seeds, four rows with the same sign-flip p (2 / 128) against one baseline: Holm
# multiplies it by 4 (0.0625), Benjamini-Hochberg leaves it (0.0156).
FAMILY = {f"+c{i}": 0.01 * (i + 1) + np.linspace(0.001, 0.007, 7) for i in range(4)}
# adaptive repeats: frozen worse on every seed, noop bit-identical
SEQ_BASE = np.array([0.70, 0.50, 0.49, 0.66, 0.61, 0.58])
SEQ_FROZEN = SEQ_BASE + np.array([-0.41, -0.36, -0.12, -0.38, -0.40, -0.35])
# per-image test counts (TP, FP, FN, TN) of the baseline run and a better run
IMAGES_BASE = np.array([[50, 30, 10, 910], [500, 100, 300, 100], [8, 2, 2, 988],
                        [300, 20, 50, 630], [20, 40, 5, 935]])  # images of very unequal size
IMAGES_BEST = IMAGES_BASE + np.array([[5, -10, -5, 10], [20, -10, -20, 10], [1, -1, -1, 1],
                                      [10, -5, -10, 5], [3, -10, -3, 10]])  # better on each


def _trial(writer: StoreWriter, trial: int, config: str, seed: int, value: float,
           **extra) -> None:
    writer.trial(trial, {"val_iou": value, "test_iou": value - 0.01}, config=config,
                 repeat=seed, seed=seed, components={"x": config != "baseline"}, **extra)


def _counts(rows: np.ndarray, order: list[int]) -> ImageCounts:
    """Counts of images ``img_<i>`` for i in ``order`` (a run may list them in any order)."""
    names = [f"img_{i}" for i in order]
    picked = rows[order][:, None, :]
    return ImageCounts({"val": picked, "test": picked}, {"val": names, "test": names},
                       ["fg"], [True])


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    uri = sqlite_store(tmp_path_factory.mktemp("decisions"))
    pair = StoreWriter(uri, "pair", design="one_at_a_time", baseline="baseline",
                       components=["x"])
    trial = 0
    for seed, value in enumerate(BASE):
        _trial(pair, trial, "baseline", seed, float(value))
        trial += 1
    for config, shift in SHIFTS.items():
        # written in reverse seed order: pairing must follow the seed tag, not run order
        for seed in reversed(range(8)):
            _trial(pair, trial, config, seed, float(BASE[seed] + shift[seed]))
            trial += 1
    for seed in GAP_SEEDS:
        value = BASE[seed] + SHIFTS["+up"][seed] if seed < 8 else 0.9
        _trial(pair, trial, "+gap", seed, float(value))
        trial += 1
    family = StoreWriter(uri, "family", design="one_at_a_time", baseline="baseline",
                         components=["x"])
    trial = 0
    for seed in range(7):
        _trial(family, trial, "baseline", seed, float(BASE[seed]))
        trial += 1
        for config, shift in FAMILY.items():
            _trial(family, trial, config, seed, float(BASE[seed] + shift[seed]))
            trial += 1
    equiv = StoreWriter(uri, "equiv", design="one_at_a_time", baseline="baseline",
                        components=["x"], report={"equivalence_margin": 0.01,
                                                  "target_effect": 0.05})
    tiny = np.array([0.001, -0.002, 0.0015, 0.0, -0.001, 0.0005, 0.001, -0.001])
    unsure = np.array([0.04, -0.05, 0.03, -0.02, 0.06, -0.04, 0.01, 0.02])
    trial = 0
    for seed in range(8):
        for config, shift in (("baseline", 0.0), ("+tiny", tiny[seed]),
                              ("+unsure", unsure[seed])):
            _trial(equiv, trial, config, seed, float(BASE[seed] + shift))
            trial += 1
    seq = StoreWriter(uri, "seq", design="one_at_a_time", baseline="baseline",
                      components=["x"], repeats={"min": 3, "max": 10})
    trial = 0
    for seed in range(6):
        _trial(seq, trial, "baseline", seed, float(SEQ_BASE[seed]))
        _trial(seq, trial + 1, "frozen", seed, float(SEQ_FROZEN[seed]))
        trial += 2
        if seed < 3:
            _trial(seq, trial, "noop", seed, float(SEQ_BASE[seed]))
            trial += 1
    images = StoreWriter(uri, "img", design="one_at_a_time", baseline="baseline",
                         components=["x"])
    _trial(images, 0, "baseline", 0, 0.5, image_counts=_counts(IMAGES_BASE, [0, 1, 2, 3, 4]))
    _trial(images, 1, "+better", 0, 0.6, image_counts=_counts(IMAGES_BEST, [4, 3, 2, 1, 0]))
    return resolve_stores(tracking_uri=uri)


def _ablation(stores, name: str, **overrides):
    study = load_runs(stores, name)
    report = assemble.build(study, settings=study.settings.override(**overrides))
    section = next(s for s in report.sections if s.title == "Ablation table")
    return section, section.table.data.set_index("config")


def test_pairing_follows_the_seed_tag_and_beats_welch(stores):
    section, data = _ablation(stores, "pair")
    up = BASE + SHIFTS["+up"]
    row = data.loc["+up"]
    assert row["paired"] and row["n_compared"] == 8
    paired = sps.ttest_rel(up, BASE).confidence_interval(0.95)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((paired.low, paired.high))
    assert row["p"] == pytest.approx(2 / 256)  # every seed better: only 2 of 256 sign patterns
    assert row["p_better"] == 1.0
    # the same numbers unpaired are lost in the seed noise
    welch = sps.ttest_ind(up, BASE, equal_var=False).confidence_interval(0.95)
    assert welch.low < 0 < welch.high and row["ci_low"] > 0
    # five comparisons, Holm: 5 * 2/256 <= 0.05
    assert row["p_adj"] == pytest.approx(5 * 2 / 256)
    assert row["decision"] == "better" and data.loc["+down", "decision"] == "worse"
    assert data.loc["+noop", "decision"] == "identical"
    assert data.loc["+noise", "decision"] == "undecided"
    view = section.table.view.set_index("config")
    assert list(view["decision"]) == list(data["decision"].fillna(""))


def test_a_seed_without_a_reference_falls_back_to_welch(stores):
    section, data = _ablation(stores, "pair")
    row = data.loc["+gap"]
    values = [BASE[s] + SHIFTS["+up"][s] if s < 8 else 0.9 for s in GAP_SEEDS]
    welch = sps.ttest_ind(values, BASE, equal_var=False)
    assert not row["paired"] and "Welch" in row["method"]
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(
        tuple(welch.confidence_interval(0.95)))
    assert row["p"] == pytest.approx(welch.pvalue)
    assert section.table.view.set_index("config").loc["+gap", "95% CI"].endswith("(Welch)")
    assert "marked (Welch) are unpaired" in section.notes[0]


@pytest.mark.parametrize(("correction", "decision", "factor"), [
    ("holm", "undecided", 4), ("bh", "better", 1), ("none", "better", 1)])
def test_the_correction_decides(stores, correction, decision, factor):
    section, data = _ablation(stores, "family", correction=correction)
    rows = data.loc[list(FAMILY)]
    assert list(rows["p"]) == pytest.approx([2 / 128] * 4)
    assert list(rows["p_adj"]) == pytest.approx([factor * 2 / 128] * 4)
    assert set(rows["decision"]) == {decision}
    assert {"holm": "Holm", "bh": "Benjamini-Hochberg", "none": "no correction"}[
        correction] in section.notes[0]


def test_equivalence_margin_and_target_effect_from_the_study(stores):
    section, data = _ablation(stores, "equiv")
    assert data.loc["+tiny", "decision"] == "equivalent"
    unsure = data.loc["+unsure"]
    assert unsure["decision"] == "undecided"
    d = np.array([0.04, -0.05, 0.03, -0.02, 0.06, -0.04, 0.01, 0.02])
    level = 0.05 / 2  # two comparisons
    assert unsure["mde"] == pytest.approx(mde(d.std(ddof=1), 8, level), rel=1e-4)
    assert unsure["seeds_needed"] == seeds_needed(0.05, d.std(ddof=1), level)  # target 0.05
    view = section.table.view.set_index("config")
    assert view.loc["+unsure", "seeds needed"] == str(unsure["seeds_needed"])
    assert view.loc["+tiny", "MDE"] == ""  # only undecided rows carry MDE and seeds
    assert "within ±0.01" in section.notes[0] and "the target effect 0.05" in section.notes[0]
    # the command line overrides the study: a margin this narrow is not shown
    _, narrow = _ablation(stores, "equiv", equivalence_margin=0.0005)
    assert narrow.loc["+tiny", "decision"] == "undecided"


def test_adaptive_rows_report_the_sequential_decision(stores):
    section, data = _ablation(stores, "seq")
    plan = SequentialPlan(3, 10, rows=2)
    state = final_decision(SEQ_FROZEN - SEQ_BASE, plan)
    row = data.loc["frozen"]
    assert row["decision"] == state.decision == "worse"
    assert row["n_compared"] == state.n
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((state.ci_low, state.ci_high))
    fixed = sps.ttest_rel(SEQ_FROZEN, SEQ_BASE).confidence_interval(0.95)
    assert row["ci_low"] < fixed.low  # the repeated interval is wider than a fixed-n one
    assert math.isnan(row["p"]) and math.isnan(row["p_adj"]) and row["sequential"]
    assert data.loc["noop", "decision"] == "identical" and data.loc["noop", "n"] == 3
    view = section.table.view
    assert "repeated CI" in view.columns and "p_adj" not in view.columns
    assert "group-sequential paired t test" in section.notes[0]


def test_json_report_carries_rows_and_settings(cli, stores, tmp_path):
    result = cli("report", "seq", "--tracking-uri", stores.tracking_uri, "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["settings"] == {"correction": "holm", "alpha": 0.05,
                                    "equivalence_margin": None, "target_effect": None,
                                    "repeats": {"min": 3, "max": 10}}
    rows = {r["config"]: r for r in document["tables"]["ablation"]["rows"]}
    required = {"config", "n", "mean", "std", "delta", "ci_low", "ci_high", "p", "p_adj",
                "p_better", "decision", "mde", "seeds_needed", "method", "paired",
                "boot_low", "boot_high"}
    assert required <= set(rows["frozen"])
    assert (rows["noop"]["decision"], rows["frozen"]["decision"]) == ("identical", "worse")
    assert rows["frozen"]["n"] == 6 and rows["frozen"]["p"] is None
    assert {"efficiency", "splits_best"} <= set(document["tables"])
    out = tmp_path / "family.json"
    result = cli("report", "family", "--tracking-uri", stores.tracking_uri, "--format",
                 "json", "--out", out, "--correction", "bh", "--alpha", "0.01")
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    assert (document["settings"]["correction"], document["settings"]["alpha"]) == ("bh", 0.01)
    rows = document["tables"]["ablation"]["rows"]
    assert {r["decision"] for r in rows if r["config"] != "baseline"} == {"undecided"}
    bad = cli("report", "family", "--tracking-uri", stores.tracking_uri, "--correction",
              "bonferroni")
    assert bad.exit_code == 2 and "--correction" in bad.output


def test_image_level_tables_pool_counts_and_pair_images_by_name(stores):
    report = assemble.build(load_runs(stores, "img"))
    images = next(s for s in report.sections if s.title == "Test-set sampling uncertainty")
    data = images.table.data.set_index("role")

    def pooled(rows):
        total = rows.sum(axis=0)
        return total[0] / total[:3].sum()

    assert data.loc["best", "test IoU"] == pytest.approx(pooled(IMAGES_BEST))
    assert data.loc["baseline", "test IoU"] == pytest.approx(pooled(IMAGES_BASE))
    assert data.loc["best", "ci_low"] < pooled(IMAGES_BEST) < data.loc["best", "ci_high"]
    assert "not the seed-to-seed variation" in images.text[0]
    paired = next(s for s in report.sections if s.title.startswith("Image-level comparison"))
    row = paired.table.data.iloc[0]
    assert row["delta"] == pytest.approx(pooled(IMAGES_BEST) - pooled(IMAGES_BASE))
    # better on every image: only the two extreme swaps are as extreme. The best run lists
    # its images in reverse order; paired by position instead of name, p would be 0.69.
    assert row["images"] == 5 and row["p"] == pytest.approx(2 / 32)
