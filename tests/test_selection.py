"""One rule for "best": the mean over repeats decides the configuration, the median repeat
represents it, and study run/show, the report and predict all agree."""

from __future__ import annotations

import math

import optuna
import pandas as pd
import pytest

from ablate import selection
from ablate.reporting import assemble, load_runs
from ablate.runs.predict import choose_run
from ablate.spec import spec_from_dict
from ablate.stores import resolve_stores
from ablate.study.storage import CONFIG_PARAM, REPEAT_ATTR, SPEC_ATTR
from ablate.study.tables import best_configuration
from ablate.testing.fixtures import StoreWriter, binary_metrics
from ablate.tracking import Tracker
from tests.conftest import spec_dict


def _table(rows: list[tuple[str, float, int, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(selection.COLUMNS))


def test_mean_over_repeats_decides_not_the_best_single_run():
    # A has the best single run (0.9) but B the best mean
    table = _table([("A", 0.9, 0, 0), ("A", 0.1, 0, 1), ("B", 0.6, 1, 0), ("B", 0.62, 1, 1)])
    assert selection.best(table, maximize=True).config == "B"
    assert selection.best(table, maximize=False).config == "A"


def test_ties_are_broken_deterministically():
    # equal means: more runs first, then the configuration tried first, then the label
    table = _table([("late", 0.5, 5, 0), ("early", 0.5, 2, 0), ("many", 0.5, 7, 0),
                    ("many", 0.5, 7, 1)])
    assert [r.config for r in selection.ranking(table, True)] == ["many", "early", "late"]
    same = _table([("b", 0.5, 1, 0), ("a", 0.5, 1, 0)])
    assert selection.best(same, True).config == "a"
    # NaN objectives are not counted; a configuration without any is never best
    nan = _table([("x", math.nan, 0, 0), ("y", 0.1, 1, 0)])
    assert selection.best(nan, True).config == "y"
    assert selection.best(_table([("x", math.nan, 0, 0)]), True) is None


@pytest.mark.parametrize(("values", "maximize", "expected"), [
    ([0.3], True, 0.3),
    ([0.1, 0.5, 0.3], True, 0.3),  # the median
    ([0.1, 0.5, 0.3], False, 0.3),
    ([0.2, 0.8], True, 0.2),  # even count: the worse middle run
    ([0.2, 0.8], False, 0.8),
    ([0.1, 0.4, 0.6, 0.9], True, 0.4),
])
def test_representative_is_the_median_repeat(values, maximize, expected):
    table = _table([("c", v, 0, r) for r, v in enumerate(values)])
    assert table.loc[selection.representative(table, maximize), "objective"] == expected


def test_equal_objectives_are_ordered_by_repeat_whatever_the_row_order():
    rows = [("c", 0.5, 0, 2), ("c", 0.5, 0, 0), ("c", 0.5, 0, 1), ("c", 0.7, 0, 3)]
    for table in (_table(rows), _table(rows[::-1])):
        # ranked 0.7 (repeat 3), then the 0.5s by repeat: 0, 1, 2; the worse middle: repeat 1
        assert table.loc[selection.representative(table, True), "repeat"] == 1


# (config, repeat) -> val_iou; A wins on its best single run, B on the mean
RUNS = [("A", 0, 0.90), ("A", 1, 0.10), ("B", 0, 0.58), ("B", 1, 0.64), ("B", 2, 0.61)]


@pytest.fixture
def study_store(store):
    """The same study in Optuna (trials with their values) and MLflow (runs)."""
    stores = resolve_stores(store)
    spec = spec_from_dict({**spec_dict(design={"kind": "one_at_a_time", "components": [
        {"name": "B", "set": {"optim.lr": 0.002}}]}), "search": {}})
    study = optuna.create_study(study_name="tiny", storage=stores.storage, direction="maximize")
    study.set_user_attr(SPEC_ATTR, spec.written())
    writer = StoreWriter(stores.tracking_uri, "tiny", design="one_at_a_time", baseline="A",
                         components=["B"])
    for number, (config, repeat, value) in enumerate(RUNS):
        distributions = {CONFIG_PARAM: optuna.distributions.CategoricalDistribution(["A", "B"])}
        study.add_trial(optuna.trial.create_trial(
            params={CONFIG_PARAM: config}, distributions=distributions, value=value,
            user_attrs={REPEAT_ATTR: repeat}))
        metrics = {**binary_metrics("val", 90, 10, 5, 895), "val_iou": value}
        writer.trial(number, metrics, config=config, repeat=repeat,
                     components={"B": config == "B"})
    return stores, study


def test_every_consumer_names_the_same_best(study_store, cli, store):
    stores, study = study_store
    # study run's summary and study show
    best = best_configuration(study)
    assert (best.config, best.trial.number) == ("B", 4)  # median of 0.58, 0.64, 0.61
    assert best.mean == pytest.approx((0.58 + 0.64 + 0.61) / 3)
    shown = cli("study", "show", "tiny", "--store", store)
    assert shown.exit_code == 0, shown.output
    assert "best configuration: B: mean objective 0.6100 over 3 run(s); represented by " \
           "trial 4, repeat 2" in shown.output
    listed = cli("study", "list", "--store", store)
    assert "0.61" in listed.output
    # the report: the best configuration and the run its per-run tables show
    runs = load_runs(stores, "tiny")
    report = assemble.build(runs)
    titles = [s.title for s in report.sections]
    assert any(t.startswith("best: B (trial 4, repeat 2 of 3") for t in titles), titles
    # predict STUDY: the representative run of B, not A's lucky 0.9
    chosen = choose_run(Tracker(stores, write=False), "tiny")
    row = runs.runs.set_index("run_id").loc[chosen]
    assert (row["config"], row["repeat"]) == ("B", "2")


def test_rows_by_key_and_a_dataframe_choose_alike():
    # study list reads plain rows (no pandas); the report reads DataFrames with missing orders
    rows = [("a", 0.5, pd.NA, 0), ("a", 0.7, 3, 1), ("b", 0.6, 1, 0), ("b", math.nan, 2, 1)]
    table = _table(rows).set_axis([10, 11, 12, 13])
    plain = {key: dict(zip(selection.COLUMNS, row, strict=True))
             for key, row in zip([10, 11, 12, 13], rows, strict=True)}
    assert selection.best(table, True) == selection.best(plain, True)
    assert selection.best(plain, True) == selection.Choice("a", 0.6, 2, 10)
    assert selection.best(plain, False).config == "a"  # 0.6 == 0.6: more runs first
