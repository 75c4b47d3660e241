"""Ablation designs: their configurations, repeats with seeds, and workers sharing a design."""

from __future__ import annotations

from collections import Counter

import optuna
import pytest
from optuna.trial import TrialState
from pydantic import ValidationError

from ablate.designs import (
    DESIGNS,
    Configuration,
    baseline_label,
    configurations,
    design_kind,
    reference_pairs,
    register,
)
from ablate.spec import DesignSpec, load_spec
from ablate.tracking import names as keys
from tests.conftest import spec_dict
from tests.study.test_recovery import _ablate, _study, _trial_runs

TOGGLES = ["augment.hflip", "augment.vflip", "augment.rot90"]


def _design_spec(**design) -> dict:
    spec = spec_dict(design=design, optim={"epochs": 1})
    del spec["search"]
    return spec


def test_one_at_a_time_changes_one_component_each():
    design = DesignSpec.model_validate({
        "kind": "one_at_a_time",
        "baseline": {"optim.lr": 0.01},
        "components": ["augment.hflip", {"name": "focal", "set": {"loss.weights.focal": 0.3}}],
    })
    configs = configurations(design)
    assert [c.label for c in configs] == ["baseline", "hflip", "focal"]
    assert configs[0].values == {"optim.lr": 0.01}
    assert configs[1].values == {"optim.lr": 0.01, "augment.hflip": True}
    assert configs[2].components == {"hflip": False, "focal": True}
    assert baseline_label(design) == "baseline"


def test_cumulative_adds_components_in_order():
    design = DesignSpec.model_validate({"kind": "cumulative", "components": TOGGLES})
    configs = configurations(design)
    assert [c.label for c in configs] == ["baseline", "+hflip", "+hflip+vflip",
                                          "+hflip+vflip+rot90"]
    assert [sum(c.components.values()) for c in configs] == [0, 1, 2, 3]


def test_factorial_has_every_cell_once():
    design = DesignSpec.model_validate({"kind": "factorial", "components": TOGGLES})
    configs = configurations(design)
    assert len(configs) == 8
    assert len({tuple(c.components.values()) for c in configs}) == 8
    assert baseline_label(design) == "hflip=N,vflip=N,rot90=N"


@pytest.fixture
def registry():
    """The registry as it is; kinds registered by the test are gone afterwards."""
    saved = dict(DESIGNS)
    yield DESIGNS
    DESIGNS.clear()
    DESIGNS.update(saved)


def test_the_registry_knows_what_each_built_in_kind_means():
    traits = {name: (d.sampled, d.chained, d.ordered, d.adaptive, d.max_components, d.sections)
              for name, d in DESIGNS.items()}
    assert traits == {
        "search": (True, False, False, False, None, ("importance", "history")),
        "one_at_a_time": (False, False, False, True, None, ()),
        "cumulative": (False, True, True, True, None, ("steps",)),
        "factorial": (False, False, False, False, 8, ("effects",)),
    }
    search = DesignSpec.model_validate({"kind": "search"})
    assert configurations(search) == [] and baseline_label(search) is None


def test_the_spec_accepts_every_registered_kind_and_names_them_otherwise():
    for name, kind in DESIGNS.items():
        components = [] if kind.sampled else TOGGLES[:1]
        assert DesignSpec.model_validate({"kind": name, "components": components}).kind == name
    with pytest.raises(ValidationError, match=r"'cumulatve' is not a design kind \(did you "
                       r"mean 'cumulative'\?\); choose one of: search, one_at_a_time, "
                       r"cumulative, factorial"):
        DesignSpec.model_validate({"kind": "cumulatve", "components": TOGGLES})


def test_the_spec_checks_components_and_repeats_against_the_kind():
    with pytest.raises(ValidationError, match="a factorial design takes at most 8 components, "
                       "not 9"):
        DesignSpec.model_validate({"kind": "factorial",
                                   "components": [f"augment.t{i}" for i in range(9)]})
    with pytest.raises(ValidationError, match=r"adaptive repeats \(\{min, max\}\) need a "
                       "one_at_a_time or cumulative design"):
        DesignSpec.model_validate({"kind": "factorial", "components": TOGGLES,
                                   "repeats": {"min": 2, "max": 4}})
    with pytest.raises(ValidationError, match="needs a non-empty components list"):
        DesignSpec.model_validate({"kind": "one_at_a_time"})


def test_cumulative_steps_are_also_compared_with_the_step_before():
    labels = ["baseline", "+a", "+a+b"]
    assert reference_pairs("cumulative", labels, "baseline") == [
        ("+a", "baseline"), ("+a+b", "baseline"), ("+a+b", "+a")]
    assert reference_pairs("one_at_a_time", ["baseline", "a", "b"], "baseline") == [
        ("a", "baseline"), ("b", "baseline")]


def test_a_registered_design_kind_is_used_by_name(registry, write_spec):
    @register("leave_one_out", baseline=lambda d: "all", chained=True, ordered=True,
              adaptive=True, max_components=3, sections=("steps",))
    def _leave_one_out(design: DesignSpec) -> list[Configuration]:
        names = [c.name for c in design.components]
        return [Configuration("all")] + [Configuration(f"-{n}") for n in names]

    design = DesignSpec.model_validate({"kind": "leave_one_out", "components": TOGGLES[:2],
                                        "repeats": {"min": 2, "max": 3}})
    assert [c.label for c in configurations(design)] == ["all", "-hflip", "-vflip"]
    assert baseline_label(design) == "all"
    assert reference_pairs("leave_one_out", ["all", "-hflip", "-vflip"], "all") == [
        ("-hflip", "all"), ("-vflip", "all"), ("-vflip", "-hflip")]
    with pytest.raises(ValidationError, match="takes at most 3 components, not 4"):
        DesignSpec.model_validate({"kind": "leave_one_out",
                                   "components": [*TOGGLES, "augment.blur"]})
    spec = load_spec(write_spec(_design_spec(kind="leave_one_out", components=TOGGLES[:1])))
    assert spec.design.kind == "leave_one_out"
    with pytest.raises(ValueError, match="unknown report section"):
        register("odd", sections=("pictures",))  # type: ignore[arg-type]


def test_a_kind_a_store_names_but_this_version_lacks_reads_as_a_plain_fixed_design():
    kind = design_kind("from_the_future")
    assert not kind.sampled and kind.sections == () and kind.baseline(None) is None


def test_design_values_are_validated(write_spec):
    import pytest

    from ablate.errors import SpecError

    bad = _design_spec(kind="one_at_a_time", components=[
        {"name": "lr", "set": {"optim.lr": -1}}])
    with pytest.raises(SpecError, match=r"design.components.lr: optim.lr=-1 gives an invalid"):
        load_spec(write_spec(bad))
    with pytest.raises(SpecError, match="needs a non-empty components list"):
        load_spec(write_spec(_design_spec(kind="cumulative")))


@pytest.mark.slow
def test_repeats_train_each_configuration_with_its_own_seed(cli, write_spec, store):
    spec = _design_spec(kind="one_at_a_time", components=["augment.hflip"], repeats=2)
    result = cli("study", "run", write_spec(spec), "--store", store, "--quiet")
    assert result.exit_code == 0, result.output
    runs = _trial_runs(store)
    seeds = Counter((r.data.tags[keys.TAG_CONFIG], r.data.tags[keys.TAG_SEED]) for r in runs)
    assert seeds == {("baseline", "0"): 1, ("baseline", "1"): 1, ("hflip", "0"): 1,
                     ("hflip", "1"): 1}
    assert all(r.data.params["seed"] == r.data.tags[keys.TAG_SEED] for r in runs)


@pytest.mark.slow
def test_factorial_with_two_workers_runs_each_cell_exactly_once(cli, write_spec, store):
    path = write_spec(_design_spec(kind="factorial", components=TOGGLES))
    assert cli("study", "create", path, "--store", store).exit_code == 0
    workers = [_ablate("study", "run", "tiny", "--store", store, "--quiet",
                       env_extra={"ABLATE_WORKER": f"w{i}"}) for i in range(2)]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs
    assert all("COMPLETE" in out for out in outputs)  # both workers took cells
    trials = _study(store).get_trials(deepcopy=False)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 8
    assert len({t.params["config"] for t in trials}) == 8
    assert len(_trial_runs(store)) == 8
    report = cli("report", "tiny", "--store", store)
    assert report.exit_code == 0 and "### Main effects" in report.output


@pytest.mark.slow
def test_search_repeats_average_the_seeds(cli, write_spec, store):
    spec = spec_dict(trials=1, design={"kind": "search", "repeats": 2}, optim={"epochs": 1})
    result = cli("study", "run", write_spec(spec), "--store", store, "--quiet")
    assert result.exit_code == 0, result.output
    runs = _trial_runs(store)
    assert sorted(r.data.tags[keys.TAG_REPEAT] for r in runs) == ["0", "1"]
    assert {r.data.tags[keys.TAG_CONFIG] for r in runs} == {"trial-000"}
    assert sorted(r.info.run_name for r in runs) == ["trial-000-r0", "trial-000-r1"]
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{store / 'optuna.db'}")
    mean = sum(r.data.metrics["val/iou"] for r in runs) / 2
    assert abs(study.trials[0].value - mean) < 1e-9


@pytest.mark.slow
def test_multi_objective_study_trades_iou_against_gflops(cli, write_spec, store):
    spec = spec_dict(
        trials=3,
        objectives=[{"metric": "val_iou", "direction": "maximize"},
                    {"metric": "gflops", "direction": "minimize"}],
        search={"model.decoder_channels": {"type": "categorical",
                                           "choices": [[16, 8, 4], [32, 16, 8]]}},
    )
    result = cli("study", "run", write_spec(spec), "--store", store, "--quiet")
    assert result.exit_code == 0, result.output
    assert "Pareto front: trials" in result.output
    out = store.parent / "mo" / "report.md"
    report = cli("report", "tiny", "--store", store, "--out", out)
    assert report.exit_code == 0, report.output
    text = out.read_text()
    assert "## Pareto front: val_iou vs gflops" in text
    assert list(out.parent.glob("*pareto*.png"))
    study = _study(store)
    assert len(study.directions) == 2
    for trial in study.trials:
        (run,) = [r for r in _trial_runs(store)
                  if r.data.tags[keys.TAG_TRIAL] == str(trial.number)]
        assert trial.values == [run.data.metrics["val/iou"], run.data.metrics["model/gflops"]]
