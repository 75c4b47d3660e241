"""The report on a one-at-a-time study written with known numbers into a real MLflow store."""

from __future__ import annotations

import io
import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from ablate.reporting import assemble, load_runs
from ablate.stores import resolve_stores
from ablate.testing.fixtures import StoreWriter, binary_metrics, sqlite_store
from ablate.tracking import fetch

THRESHOLDS = [0.3, 0.5, 0.7]
COMPONENTS = ["hflip", "focal", "rot90"]
# (config, repeat, state, val_iou, reason) in start order; see the assertions below
RUNS = [
    ("baseline", 0, "COMPLETE", 0.70, None),
    ("baseline", 1, "COMPLETE", 0.72, None),
    ("baseline", 2, "COMPLETE", 0.71, None),
    ("+hflip", 0, "COMPLETE", 0.74, None),
    ("+hflip", 1, "COMPLETE", 0.75, None),
    ("+hflip", 2, "COMPLETE", 0.50, None),  # superseded by the later complete run below
    ("+focal", 0, "COMPLETE", 0.69, None),
    ("+focal", 1, "FAIL", None, "worker died"),  # retried below
    ("+focal", 2, "COMPLETE", 0.72, None),
    ("+rot90", 0, "COMPLETE", 0.80, None),
    ("+blur", 0, "PRUNED", None, "pruned at epoch 2"),
    ("+mixup", 0, "FAIL", None, "out of memory at batch size 8"),
    ("+cutout", 0, "RUNNING", None, None),
    ("+focal", 1, "COMPLETE", 0.73, None),
    ("+hflip", 2, "COMPLETE", 0.76, None),
]
EXPECTED = {  # config -> the repeats that count
    "baseline": [0.70, 0.72, 0.71],
    "+hflip": [0.74, 0.75, 0.76],
    "+focal": [0.69, 0.72, 0.73],
    "+rot90": [0.80],
}
GFLOPS = {"+rot90": 2.0}
SCAN = {  # (split, threshold) -> tp, fp, fn, tn
    (split, thr): (500 + 100 * i + 7 * j, 80 - 20 * i + j, 60 + 25 * i, 3000 - 5 * i - j)
    for j, split in enumerate(("val", "test")) for i, thr in enumerate(THRESHOLDS)
}


def _metrics(config: str, value: float) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for i, split in enumerate(("train", "val", "test")):
        metrics.update(binary_metrics(split, 900 + i, 100 + i, 50 + i, 5000 + i))
    gflops = GFLOPS.get(config, 1.0)
    metrics.update({
        "val_iou": value, "test_iou": value - 0.02, "gflops": gflops, "params": 2.5e6,
        "efficiency": 100 * value / gflops, "model_size_mb": 10.0, "latency_ms": 5 * gflops,
        "latency_iqr_ms": 0.25 * gflops,
    })
    if config == "+rot90":
        for (split, thr), counts in SCAN.items():
            for name, count in zip(("tp", "fp", "fn", "tn"), counts, strict=True):
                metrics[f"{split}_thr{thr:g}_{name}"] = count
    return metrics


def write_oat(uri: str, name: str = "oat", runs=RUNS) -> None:
    writer = StoreWriter(uri, name, design="one_at_a_time", baseline="baseline",
                         components=COMPONENTS, thresholds=THRESHOLDS)
    for trial, (config, repeat, state, value, reason) in enumerate(runs):
        on = {c: config == f"+{c}" for c in COMPONENTS}
        metrics = _metrics(config, value) if value is not None else {}
        writer.trial(trial, metrics, state=state, reason=reason, config=config, repeat=repeat,
                     seed=repeat, components=on, params={"optim.lr": 0.01})


@pytest.fixture(scope="module")
def uri(tmp_path_factory) -> str:
    uri = sqlite_store(tmp_path_factory.mktemp("oat"))
    write_oat(uri)
    write_oat(uri, "oat_other", [
        ("baseline", r, "COMPLETE", v, None) for r, v in enumerate([0.60, 0.64, 0.62])])
    return uri


@pytest.fixture(scope="module")
def report(uri) -> assemble.Report:
    return assemble.build(load_runs(resolve_stores(tracking_uri=uri), "oat"))


def _section(report: assemble.Report, start: str):
    return next(s for s in report.sections if s.title.startswith(start))


def _by_seed(config):
    """The values that count, in seed order (seed = repeat; the latest complete run of each)."""
    latest = {r: v for c, r, state, v, _ in RUNS if c == config and state == "COMPLETE"}
    return np.array([latest[r] for r in sorted(latest)])


def test_ablation_means_std_and_paired_intervals(report):
    table = _section(report, "Ablation table").table
    data = table.data.set_index("config")
    assert list(data.index) == ["+rot90", "+hflip", "+focal", "baseline"]  # best first
    base = EXPECTED["baseline"]
    for config, values in EXPECTED.items():
        row = data.loc[config]
        assert row["n"] == len(values)
        assert row["mean"] == pytest.approx(np.mean(values))
        if len(values) > 1:
            assert row["std"] == pytest.approx(np.std(values, ddof=1))
        else:
            assert math.isnan(row["std"])
        if config == "baseline":
            assert pd.isna(row["decision"]) and pd.isna(row["delta"])
            continue
        diffs = _by_seed(config) - _by_seed("baseline")[: len(values)]
        assert row["paired"] and row["n_compared"] == len(values)
        assert row["delta"] == pytest.approx(diffs.mean())
        assert row["rel_gain"] == pytest.approx(diffs.mean() / np.mean(base[: len(values)]))
        assert row["p_better"] == pytest.approx(np.mean(diffs > 0))
        if len(values) > 1:
            ci = sps.ttest_rel(_by_seed(config), _by_seed("baseline")).confidence_interval(0.95)
            assert (row["ci_low"], row["ci_high"]) == pytest.approx((ci.low, ci.high))
            exact = sps.permutation_test((diffs,), np.mean, permutation_type="samples",
                                         n_resamples=np.inf).pvalue
            assert row["p"] == pytest.approx(exact)
    assert math.isnan(data.loc["+rot90", "ci_low"])  # one repeat: no interval
    # Holm over the three comparisons, by hand
    p = data.loc[["+rot90", "+hflip", "+focal"], "p"].to_numpy()
    order = np.argsort(p)
    holm = np.maximum.accumulate(np.minimum(1, (3 - np.arange(3)) * p[order]))
    expected = np.empty(3)
    expected[order] = holm
    assert data.loc[["+rot90", "+hflip", "+focal"], "p_adj"].to_numpy() == pytest.approx(
        expected)
    # components as Y/N; mean ± std in the view
    view = table.view.set_index("config")
    assert view.loc["+hflip", "hflip"] == "Y" and view.loc["+hflip", "focal"] == "N"
    assert view.loc["+hflip", "val_iou (mean ± std)"] == "0.75 ± 0.01"
    assert view.loc["+rot90", "val_iou (mean ± std)"] == "0.8"  # one repeat: the value alone
    assert view.loc["+rot90", "95% CI"] == "n/a"
    assert view.loc["baseline", "diff vs baseline"] == "baseline"


def test_decision_column_replaces_the_noise_mark(report):
    section = _section(report, "Ablation table")
    view = section.table.view.set_index("config")
    data = section.table.data.set_index("config")
    assert "~" not in view.columns
    # three seeds: the smallest sign-flip p is 0.25, so nothing can be declared
    for config in ("+rot90", "+hflip", "+focal"):
        assert view.loc[config, "decision"] == data.loc[config, "decision"] == "undecided"
    # +hflip wins on every seed yet stays undecided; its MDE is infinite at n = 3 and the
    # seeds needed are those that let a sign-flip p reach 0.05 / 3 (2 / 2^7 < 0.0167)
    assert view.loc["+hflip", "MDE"] == "∞" and math.isinf(data.loc["+hflip", "mde"])
    assert data.loc["+hflip", "seeds_needed"] == 7
    assert view.loc["+hflip", "seeds needed"] == "7"
    assert view.loc["baseline", "decision"] == ""
    notes = " ".join(section.notes)
    assert "paired t interval" in notes and "Holm" in notes and "p_adj <= 0.05" in notes
    assert "- `+hflip` vs `baseline`: **undecided**" in notes


def test_failed_pruned_excluded_and_counted_retries_once(report):
    configs = set(_section(report, "Ablation table").table.data["config"])
    assert configs == set(EXPECTED)  # +blur, +mixup, +cutout never completed
    footer = " ".join(report.footer)
    assert "2 failed (1 later retried successfully)" in footer
    assert "worker died" in footer and "out of memory at batch size 8" in footer
    assert "1 pruned: pruned at epoch 2" in footer
    assert "1 still running or lost" in footer
    assert "1 earlier complete run(s) superseded" in footer


def test_threshold_scan_equals_scores_from_counts(report):
    section = _section(report, "Threshold scan")
    assert "+rot90" in section.title
    data = section.table.data.set_index("threshold")
    assert list(data.index) == THRESHOLDS
    for (split, thr), (tp, fp, fn, tn) in SCAN.items():
        assert data.loc[thr, f"{split} accuracy"] == pytest.approx((tp + tn) / (tp + fp + fn + tn))
        assert data.loc[thr, f"{split} IoU"] == pytest.approx(tp / (tp + fp + fn))
        assert data.loc[thr, f"{split} F1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))


def test_pareto_front_and_efficiency(report):
    front = _section(report, "Pareto front").table.data
    # +rot90: best objective (2 GFLOPs); +hflip: best at 1 GFLOP; the others are dominated
    assert set(front["config"]) == {"+rot90", "+hflip"}
    efficiency = _section(report, "Efficiency ranking")
    data = efficiency.table.data
    assert data.iloc[0]["config"] == "+hflip"  # 75 % / 1 GFLOP beats 80 % / 2 GFLOPs
    assert data.set_index("config").loc["+rot90", "% per GFLOP"] == pytest.approx(40.0)
    assert "one multiply-add counts as one FLOP" in " ".join(efficiency.text)
    # latency: the median of the runs' medians with the spread of the timed passes
    assert data.set_index("config").loc["+rot90", "latency (ms)"] == pytest.approx(10.0)
    assert data.set_index("config").loc["+rot90", "latency IQR (ms)"] == pytest.approx(0.5)
    view = efficiency.table.view.set_index("config")
    assert view.loc["+rot90", "latency (ms)"] == "10 (IQR 0.5)"
    assert "latency IQR (ms)" not in view.columns


def test_split_tables_best_and_median_baseline_repeat(report):
    titles = [s.title for s in report.sections if s.level == 3]
    assert titles[0].startswith("best: +rot90 (trial 9")
    # baseline repeats 0.70, 0.72, 0.71: the median is repeat 2
    assert titles[1].startswith("baseline: baseline (trial 2, repeat 2 of 3, median")
    data = next(s for s in report.sections if s.title.startswith("best:")).table.data
    val = data.set_index("split").loc["val"]
    assert (val["TP"], val["FP"], val["FN"], val["TN"]) == (901, 101, 51, 5001)
    assert val["FP/FN"] == pytest.approx(101 / 51)


def test_chosen_trials(uri):
    study = load_runs(resolve_stores(tracking_uri=uri), "oat")
    report = assemble.build(study, trials=[3, 11])
    titles = [s.title for s in report.sections if s.level == 3]
    assert titles == ["trial 3: +hflip (trial 3)"]
    notes = " ".join(_section(report, "Confusion counts").notes)
    assert "trial 11: FAIL (out of memory at batch size 8)" in notes


def test_compare_two_studies(uri):
    stores = resolve_stores(tracking_uri=uri)
    report = assemble.build(load_runs(stores, "oat"), load_runs(stores, "oat_other"))
    section = _section(report, "Comparison with oat_other")
    data = section.table.data.set_index("metric")
    assert data.loc["val_iou", "oat mean"] == pytest.approx(0.80)
    assert data.loc["val_iou", "oat_other mean"] == pytest.approx(0.62)
    assert data.loc["val_iou", "oat_other n"] == 3
    assert data.loc["val_iou", "diff"] == pytest.approx(0.18)
    assert {"test_iou", "gflops", "params"} <= set(data.index)
    assert "`+rot90`" in section.text[0] and "`baseline`" in section.text[0]


def test_sql_reader_matches_search_runs(uri):
    stores = resolve_stores(tracking_uri=uri)
    fast = fetch(stores, "oat", "sql").set_index("run_id").sort_index()
    slow = fetch(stores, "oat", "mlflow").set_index("run_id").sort_index()
    assert set(fast.columns) == set(slow.columns)
    pd.testing.assert_frame_equal(fast, slow[fast.columns], check_dtype=False)


def test_cli_markdown_figures_and_relative_links(cli, uri, tmp_path):
    result = cli("report", "oat", "--tracking-uri", uri)
    assert result.exit_code == 0, result.output
    assert "## Ablation table" in result.output and "written only with `--out FILE`" in \
        result.output
    out = tmp_path / "reports" / "oat.md"
    result = cli("report", "oat", "--tracking-uri", uri, "--out", out)
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert (tmp_path / "reports" / "oat_pareto.png").stat().st_size > 1000
    assert "](oat_pareto.png)" in text and "written only with" not in text


def test_cli_csv_and_latex_exports(cli, uri, tmp_path):
    out = tmp_path / "oat.csv"
    result = cli("report", "oat", "--tracking-uri", uri, "--format", "csv", "--out", out)
    assert result.exit_code == 0, result.output
    ablation = pd.read_csv(tmp_path / "oat_ablation.csv").set_index("config")
    assert ablation.loc["+hflip", "mean"] == pytest.approx(0.75)
    assert ablation.loc["+hflip", "delta"] == pytest.approx(0.04)
    assert ablation.loc["+hflip", "decision"] == "undecided"
    scan = pd.read_csv(tmp_path / "oat_thresholds.csv")
    assert list(scan["threshold"]) == THRESHOLDS
    blocks = out.read_text().split("\n# ")
    assert blocks[0].startswith("# Ablation table")
    assert pd.read_csv(io.StringIO(blocks[0].split("\n", 1)[1])).shape[0] == 4
    latex = cli("report", "oat", "--tracking-uri", uri, "--format", "latex")
    assert latex.exit_code == 0, latex.output
    text = latex.output
    assert text.count("\\begin{table}") == text.count("\\end{table}") >= 6
    assert "\\caption{Pareto front: val\\_iou vs gflops}" in text
    assert re.search(r"val\\_iou \(mean ± std\)", text)
    assert "0.75 ± 0.01" in text


def test_cli_rejects_bad_options(cli, uri):
    assert cli("report", "oat", "--tracking-uri", uri, "--format", "docx").exit_code == 2
    assert cli("report", "oat", "--tracking-uri", uri, "--trials", "x,y").exit_code == 2
    missing = cli("report", "nope", "--tracking-uri", uri)
    assert missing.exit_code == 2 and "no MLflow experiment named 'nope'" in missing.output
