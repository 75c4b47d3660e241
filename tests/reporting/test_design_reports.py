"""Design-specific report sections on stores written with known numbers: cumulative order,
factorial effects, multi-class per-class IoU, search importance and figures, two objectives."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from ablate.designs import DESIGNS, register
from ablate.reporting import assemble, load_runs
from ablate.stores import resolve_stores
from ablate.testing.fixtures import StoreWriter, binary_metrics, sqlite_store

# factorial 2x2, three seeds per cell: (hflip, focal) -> val_iou at seeds 0, 1, 2
CELLS = {(True, True): [0.10, 0.13, 0.11], (True, False): [0.06, 0.08, 0.07],
         (False, True): [0.05, 0.07, 0.05], (False, False): [0.02, 0.05, 0.03]}
# cumulative, seeds 0..2: +hflip beats the baseline on every seed, +hflip+focal loses to
# +hflip on every seed
CUMULATIVE = [
    ("baseline", {"hflip": False, "focal": False}, [0.60, 0.62, 0.58]),
    ("+hflip", {"hflip": True, "focal": False}, [0.70, 0.71, 0.69]),
    ("+hflip+focal", {"hflip": True, "focal": True}, [0.65, 0.60, 0.66]),
]


def _metrics(value: float, gflops: float = 1.0, **extra: float) -> dict[str, float]:
    metrics = binary_metrics("val", 90, 10, 5, 895)
    metrics.update({"val_iou": value, "gflops": gflops, "params": 1e6,
                    "efficiency": 100 * value / gflops, **extra})
    return metrics


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    uri = sqlite_store(tmp_path_factory.mktemp("designs"))
    # cumulative: the last step is worse, yet the table keeps the design order
    cumulative = StoreWriter(uri, "cum", design="cumulative", baseline="baseline",
                             components=["hflip", "focal"])
    trial = 0
    for config, on, values in CUMULATIVE:
        for seed, value in enumerate(values):
            cumulative.trial(trial, _metrics(value), config=config, repeat=seed, seed=seed,
                             components=on)
            trial += 1
    factorial = StoreWriter(uri, "fact", design="factorial", components=["hflip", "focal"])
    trial = 0
    for (hflip, focal), values in CELLS.items():
        label = f"hflip={'Y' if hflip else 'N'},focal={'Y' if focal else 'N'}"
        for repeat, value in enumerate(values):
            factorial.trial(trial, _metrics(value), config=label, repeat=repeat, seed=repeat,
                            components={"hflip": hflip, "focal": focal})
            trial += 1
    multi = StoreWriter(uri, "multi", task="multiclass", objective="val_miou",
                        classes=["sky", "Road sign"], design="one_at_a_time",
                        baseline="baseline", components=["ce"])
    for trial, (config, sky, sign) in enumerate([("baseline", 0.9, 0.3), ("+ce", 0.8, 0.5)]):
        metrics = {"val_miou": (sky + sign) / 2, "val_iou_sky": sky, "val_iou_road_sign": sign,
                   "test_iou_sky": sky - 0.1, "test_iou_road_sign": sign - 0.1,
                   "val_mf1": 0.7, "val_tp": 10, "val_fp": 2, "val_fn": 3, "val_tn": 85}
        multi.trial(trial, metrics, config=config, repeat=0, components={"ce": config == "+ce"})
    search = StoreWriter(uri, "search", design="search", thresholds=[0.5], search={
        "optim.lr": "float", "augment.hflip": "bool", "model.arch": "categorical"})
    rng = np.random.default_rng(0)
    for trial in range(8):
        lr, hflip, arch = float(10 ** rng.uniform(-4, -2)), bool(trial % 2), ["Unet", "FPN"][
            trial % 3 == 0]
        value = 0.5 + 0.05 * np.log10(lr / 1e-4) + 0.1 * hflip
        search.trial(trial, _metrics(value, gflops=1.0 + (arch == "FPN")),
                     searched={"optim.lr": lr, "augment.hflip": hflip, "model.arch": arch})
    few = StoreWriter(uri, "few", search={"optim.lr": "float"})
    for trial in range(3):
        few.trial(trial, _metrics(0.5 + trial / 10), searched={"optim.lr": 10.0 ** -trial})
    pareto = StoreWriter(uri, "mo", objectives=[{"metric": "val_iou", "direction": "maximize"},
                                                 {"metric": "latency_ms", "direction": "minimize"}])
    for trial, (value, latency) in enumerate([(0.8, 30), (0.7, 10), (0.6, 20), (0.5, 5)]):
        pareto.trial(trial, _metrics(value, latency_ms=latency))
    dead = StoreWriter(uri, "dead", design="one_at_a_time", baseline="baseline",
                       components=["hflip"])
    dead.trial(0, {}, state="FAIL", reason="non-finite loss at epoch 2, step 5",
               config="baseline", repeat=0)
    dead.trial(1, {}, state="FAIL", reason="non-finite loss at epoch 2, step 5",
               config="baseline", repeat=0)
    StoreWriter(uri, "empty")
    return resolve_stores(tracking_uri=uri)


def _section(report, start):
    return next(s for s in report.sections if s.title.startswith(start))


def test_cumulative_keeps_design_order_and_compares_each_step(stores):
    report = assemble.build(load_runs(stores, "cum"))
    ablation = _section(report, "Ablation table")
    data = ablation.table.data.set_index("config")
    assert list(data.index) == ["baseline", "+hflip", "+hflip+focal"]
    assert "in design order" in ablation.text[0]
    values = {config: np.array(v) for config, _, v in CUMULATIVE}
    steps = _section(report, "Cumulative steps").table.data.set_index("config")
    assert dict(steps["reference"]) == {"+hflip": "baseline", "+hflip+focal": "+hflip"}
    step = values["+hflip+focal"] - values["+hflip"]
    assert steps.loc["+hflip+focal", "delta"] == pytest.approx(step.mean())
    ci = sps.ttest_1samp(step, 0.0).confidence_interval(0.95)
    assert (steps.loc["+hflip+focal", "ci_low"], steps.loc["+hflip+focal", "ci_high"]) == \
        pytest.approx((ci.low, ci.high))
    against_base = values["+hflip+focal"] - values["baseline"]
    assert data.loc["+hflip+focal", "delta"] == pytest.approx(against_base.mean())
    # one family of three distinct comparisons (the first step is +hflip vs baseline, counted
    # once): an exact sign-flip p of 3 seeds is 0.25 at best, times 3 by Holm
    assert steps.loc["+hflip", "p_adj"] == data.loc["+hflip", "p_adj"]
    assert data.loc["+hflip", "p"] == 0.25 and data.loc["+hflip", "p_adj"] == 0.75
    assert "adjusted across the 3 comparisons" in ablation.notes[0]


@pytest.mark.parametrize("ordered", [True, False])
def test_a_registered_kind_gets_the_order_and_sections_it_declares(tmp_path, ordered):
    saved = dict(DESIGNS)
    try:
        @register("stepwise", chained=ordered, ordered=ordered,
                  sections=("steps",) if ordered else ())
        def _stepwise(design):  # the configurations come from the store here
            return []

        uri = sqlite_store(tmp_path)
        writer = StoreWriter(uri, "mine", design="stepwise", baseline="baseline",
                             components=["hflip", "focal"])
        trial = 0
        for config, on, values in CUMULATIVE:
            for seed, value in enumerate(values):
                writer.trial(trial, _metrics(value), config=config, repeat=seed, seed=seed,
                             components=on)
                trial += 1
        report = assemble.build(load_runs(resolve_stores(tracking_uri=uri), "mine"))
    finally:
        DESIGNS.clear()
        DESIGNS.update(saved)
    order = list(_section(report, "Ablation table").table.data["config"])
    titles = [s.title for s in report.sections]
    if ordered:  # in design order, each step against its predecessor too
        assert order == ["baseline", "+hflip", "+hflip+focal"]
        assert "Cumulative steps" in titles
    else:  # best mean first, no steps
        assert order == ["+hflip", "+hflip+focal", "baseline"]
        assert "Cumulative steps" not in titles


def test_factorial_effects_from_paired_seeds(stores):
    report = assemble.build(load_runs(stores, "fact"))
    effects = _section(report, "Main effects").table.data.set_index("component")
    cell = {k: np.array(v) for k, v in CELLS.items()}
    per_seed = {
        "hflip": (cell[True, True] + cell[True, False] - cell[False, True]
                  - cell[False, False]) / 2,
        "focal": (cell[True, True] + cell[False, True] - cell[True, False]
                  - cell[False, False]) / 2,
        "hflip x focal": (cell[True, True] - cell[True, False] - cell[False, True]
                          + cell[False, False]) / 2,
    }
    inter = _section(report, "Two-way interactions").table.data.set_index("components")
    rows = {"hflip": effects.loc["hflip"], "focal": effects.loc["focal"],
            "hflip x focal": inter.loc["hflip x focal"]}
    for name, row in rows.items():
        d = per_seed[name]
        assert row["n"] == 3 and row["estimate"] == pytest.approx(d.mean())
        ci = sps.ttest_1samp(d, 0.0).confidence_interval(0.95)
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((ci.low, ci.high))
        exact = sps.permutation_test((d,), np.mean, permutation_type="samples",
                                     n_resamples=np.inf).pvalue
        assert row["p"] == pytest.approx(exact)
    # one family: Holm across the two main effects and the interaction
    p = np.array([rows[k]["p"] for k in per_seed])
    order = np.argsort(p, kind="stable")
    holm = np.empty(3)
    holm[order] = np.maximum.accumulate(np.minimum(1, (3 - np.arange(3)) * p[order]))
    assert [rows[k]["p_adj"] for k in per_seed] == pytest.approx(list(holm))
    assert effects.loc["hflip", "mean Y"] == pytest.approx(
        np.mean([*CELLS[True, True], *CELLS[True, False]]))
    # no ablate.baseline on a factorial parent: the all-N configuration is the baseline
    ablation = _section(report, "Ablation table")
    assert "Baseline: `hflip=N,focal=N`." in ablation.text
    factorial = " ".join(_section(report, "Factorial").text)
    assert "((YY - YN) - (NY - NN)) / 2" in factorial and "paired seeds" in factorial


def test_multiclass_per_class_iou(stores):
    report = assemble.build(load_runs(stores, "multi"))
    classes = _section(report, "Per-class IoU").table.data.set_index("class")
    assert classes.loc["Road sign", "best val IoU"] == pytest.approx(0.5)  # +ce: mIoU 0.65
    assert classes.loc["sky", "baseline test IoU"] == pytest.approx(0.8)
    split = next(s for s in report.sections if s.title.startswith("best:")).table.data
    assert {"mF1", "mIoU"} <= set(split.columns)
    assert not any(s.title.startswith("Threshold scan") for s in report.sections)


def test_search_importance_and_figures(stores, tmp_path):
    prefix = tmp_path / "search"
    report = assemble.build(load_runs(stores, "search"), figures=prefix)
    importance = _section(report, "Parameter importance").table.data
    assert set(importance["parameter"]) == {"optim.lr", "augment.hflip", "model.arch"}
    assert importance["importance"].sum() == pytest.approx(1.0)
    for name in ("pareto", "history", "parallel"):
        assert (tmp_path / f"search_{name}.png").stat().st_size > 1000
    ablation = _section(report, "Ablation table").table.view
    assert {"augment.hflip", "optim.lr", "model.arch"} <= set(ablation.columns)
    assert set(ablation["augment.hflip"]) == {"Y", "N"}
    assert "diff vs" not in " ".join(ablation.columns)  # search: no baseline column
    # 8 configurations for 3 searched values: shown, with a caveat (about 15 are needed)
    caveat = _section(report, "Parameter importance").text[1]
    assert caveat.startswith("Few configurations: 8 for 3 searched value(s); below about 15")
    few = assemble.build(load_runs(stores, "few"))
    skipped = _section(few, "Parameter importance").text[0]
    assert skipped.startswith("Skipped: fANOVA needs at least 4 complete configurations")
    assert "3 here" in skipped


def test_configurations_of_equal_cost_get_one_line_not_a_ranking(stores):
    """Every cumulative configuration has 1 GFLOP and 1 M params: no efficiency ranking or
    Pareto front, one paragraph saying so."""
    report = assemble.build(load_runs(stores, "cum"))
    titles = [s.title for s in report.sections]
    assert "Efficiency ranking" not in titles
    assert not any(t.startswith("Pareto front") for t in titles)
    (text,) = _section(report, "Efficiency").text
    assert text.startswith("All 3 configuration(s) have the same cost: 1 GFLOPs")
    assert "1 M params" in text


def test_two_objectives_define_the_pareto_front(stores):
    report = assemble.build(load_runs(stores, "mo"))
    section = _section(report, "Pareto front: val_iou vs latency_ms")
    # (0.6, 20 ms) is dominated by (0.7, 10 ms); the other three are not
    assert set(section.table.data["val_iou"]) == {0.8, 0.7, 0.5}
    assert "`latency_ms` (lower is better)" in section.text[0]



@pytest.mark.parametrize("name", ["dead", "empty"])
def test_studies_without_complete_runs(stores, name, tmp_path):
    report = assemble.build(load_runs(stores, name), figures=tmp_path / name)
    text = assemble.render(report)
    assert "## Ablation table" in text and "_no complete runs_" in text
    assert not list(tmp_path.glob("*.png"))
    if name == "dead":
        assert report.footer == [
            "Not in the tables: 2 failed: non-finite loss at epoch 2, step 5 (x2)."]
