"""Spec validation: every bad input is one line naming the file and key, exit 2, nothing written."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ablate.errors import SpecError
from ablate.spec import load_spec
from ablate.training.models import check_models
from tests.conftest import spec_dict


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("optim.lr=0", "optim.lr: Input should be greater than 0"),
        ("optim.lrr=0.1", "unknown key 'lrr' (did you mean 'lr'?)"),
        ("data.batch_size=0", "data.batch_size"),
        ("loss.weights.focal=-1", "loss.weights.focal"),
        ("optim.epochs=two", "optim.epochs"),
        ("optim.optimizer=adamax", "optim.optimizer"),
        ("objective.metric=test_iou", "not a val_ metric"),
        ("objective.metric=val_iuo", "did you mean val_iou?"),
        ("model.arch=Unett", "unknown architecture 'Unett'; did you mean 'Unet'?"),
        ("model.encoder=resnet19", "unknown encoder 'resnet19'"),
        ("model.encoder_weights=imagenet", "would need a download"),
        ("model.decoder_chanels=[8]", "did you mean 'decoder_channels'?"),
        ("search.optim.lr.low=0", "search.optim.lr: a log distribution needs low > 0"),
        ("search.model.arch={type: categorical, choices: []}", "non-empty choices"),
        ("search.optim.momentum={type: float, low: 0.5, high: 1.5}",
         "optim.momentum=1.5 gives an invalid config"),
        ("search.optim.nothing={type: bool}", "search.optim.nothing"),
        ("loss.weights.ce=1", "ce is for multiclass"),
    ],
)
def test_bad_values_are_one_clear_line(write_spec, override, expected):
    path = write_spec()
    with pytest.raises(SpecError) as err:
        # model names are checked by the preflight (it imports smp), the rest on load
        check_models(load_spec(path, [override]))
    message = str(err.value)
    assert message.startswith(str(path)), message
    assert expected in message
    assert "\n" not in message


def test_malformed_yaml_names_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\ndata: {task: binary\n")
    with pytest.raises(SpecError, match=r"bad.yaml: malformed YAML at line \d+"):
        load_spec(path)


def test_overrides_and_resolve(write_spec):
    spec = load_spec(write_spec(), ["optim.epochs=3", "search.augment.hflip=null"])
    assert spec.optim.epochs == 3
    assert list(spec.search) == ["optim.lr"]
    config = spec.resolve({"optim.lr": 0.005, "loss.weights.focal": 0.2})
    assert config.optim.lr == 0.005 and config.loss.weights["focal"] == 0.2
    # the resolved config round-trips: it is what reproduces the run
    assert type(config).model_validate(json.loads(config.model_dump_json())) == config


def test_list_choices_are_searchable(write_spec):
    spec = load_spec(write_spec(spec_dict(search={
        "model.decoder_channels": {"type": "categorical", "choices": [[16, 8, 4], [8, 8, 8]]},
    })))
    assert spec.resolve({"model.decoder_channels": [8, 8, 8]}).model.kwargs[
        "decoder_channels"] == [8, 8, 8]


@pytest.mark.parametrize("command", [("study", "create"), ("study", "run"), ("train",), ("flops",)])
def test_cli_spec_error_exit_2_and_nothing_written(cli, write_spec, empty_store, command):
    store = empty_store
    path = write_spec(spec_dict(optim={"lr": -1}))
    result = cli(*command, path, "--store", store) if command[0] != "flops" else cli(*command, path)
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "optim.lr" in lines[0]
    assert not store.exists()


def test_cli_bad_storage_url(cli, write_spec, store):
    result = cli("study", "create", write_spec(), "--storage", "postgres//nohost")
    assert result.exit_code == 2 and "malformed URL" in result.output


def test_create_refuses_existing_name(cli, write_spec, store):
    path = write_spec()
    assert cli("study", "create", path, "--store", store).exit_code == 0
    again = cli("study", "create", path, "--store", store)
    assert again.exit_code == 2 and "already exists" in again.output
    assert cli("study", "create", path, "--store", store, "--replace").exit_code == 0


def test_run_unknown_study(cli, store):
    result = cli("study", "run", "nope", "--store", store)
    assert result.exit_code == 2 and "no study named 'nope'" in result.output


def test_loading_a_spec_imports_no_torch(write_spec):
    code = ("import sys; from ablate.spec import load_spec; "
            f"load_spec({str(write_spec())!r}); "
            "print(sorted(m for m in ('torch', 'segmentation_models_pytorch', 'timm') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_searched_and_design_model_names_are_checked(write_spec):
    searched = spec_dict(search={"model.encoder": {"type": "categorical",
                                                   "choices": ["resnet18", "resnet19"]}})
    with pytest.raises(SpecError, match="search.model.encoder: unknown encoder 'resnet19'"):
        check_models(load_spec(write_spec(searched)))
    design = spec_dict(design={"kind": "one_at_a_time", "components": [
        {"name": "fpn", "set": {"model.arch": "FPNN"}}]})
    del design["search"]
    with pytest.raises(SpecError, match="design.components.fpn: unknown architecture 'FPNN'"):
        check_models(load_spec(write_spec(design)))


def _design(repeats):
    spec = spec_dict(design={"kind": "one_at_a_time", "components": ["augment.hflip"],
                             "repeats": repeats})
    del spec["search"]
    return spec


@pytest.mark.parametrize(("repeats", "expected"), [
    (0, "design.repeats: Input should be greater than or equal to 1"),
    ({"min": 5, "max": 3}, "design.repeats: min (5) is above max (3)"),
    ({"min": 1, "max": 3}, "design.repeats.min: Input should be greater than or equal to 2"),
    ({"min": 3}, "design.repeats.max: required key is missing"),
    ({"min": 3, "max": 10, "step": 2}, "unknown key 'step'; valid keys here: min, max"),
])
def test_repeats_are_an_integer_or_a_range(write_spec, repeats, expected):
    with pytest.raises(SpecError) as err:
        load_spec(write_spec(_design(repeats)))
    assert str(err.value).endswith(expected) or expected in str(err.value)
    assert "(and" not in str(err.value)  # one problem, not one per union member


def test_adaptive_repeats_and_the_report_section(write_spec):
    spec = load_spec(write_spec(_design({"min": 3, "max": 10})))
    design = spec.design
    assert (design.adaptive, design.min_repeats, design.max_repeats) == (True, 3, 10)
    assert (spec.report.correction, spec.report.alpha) == ("holm", 0.05)
    fixed = load_spec(write_spec(_design(4)), ["report.correction=bh", "report.alpha=0.1"])
    assert (fixed.design.adaptive, fixed.design.min_repeats, fixed.design.max_repeats) == (
        False, 4, 4)
    assert (fixed.report.correction, fixed.report.alpha) == ("bh", 0.1)
    factorial = _design({"min": 3, "max": 10})
    factorial["design"]["kind"] = "factorial"
    with pytest.raises(SpecError, match="adaptive repeats .* need a one_at_a_time or cumulative"):
        load_spec(write_spec(factorial))
    with pytest.raises(SpecError, match="report.correction: Input should be 'holm', 'bh' or"):
        load_spec(write_spec(_design(3)), ["report.correction=bonferroni"])
    with pytest.raises(SpecError, match="report.equivalence_margin"):
        load_spec(write_spec(_design(3)), ["report.equivalence_margin=-0.1"])
