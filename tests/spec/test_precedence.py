"""Values that stick: preset < spec (with --profile and --set) < design component < sampled.

Every leaf of the run configuration (the list comes from the pydantic models) is set to a value
different from what the spec and its presets give, through each way a value can be given, and
the resolved configuration must hold exactly that value.
"""

from __future__ import annotations

import copy
import json
import typing
from pathlib import Path
from typing import Any, Literal

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient
from pydantic import BaseModel

from ablate.designs import configurations
from ablate.errors import AblateError
from ablate.spec import RunConfig, load_spec, spec_from_dict
from ablate.spec.paths import get_dotted, set_dotted
from ablate.spec.precedence import leaves
from ablate.study.search import suggest
from ablate.tracking import names as keys
from tests.conftest import spec_dict

# A spec where every optional section is present (so that every leaf may be set) and presets
# are on: augment.preset strong switches six toggles on, loss.preset combined gives bce + dice.
BASE = spec_dict(
    data={
        "synthetic": {"num_images": 12, "channels": 3, "size": 32, "seed": 1},
        "max_images": {"train": 6, "val": 3, "test": 3},
        "ignore_index": 255,
    },
    loss={"preset": "combined", "weights": {"jaccard": 0.4}},
    augment={"preset": "strong", "vflip": False},
)
BASE.pop("search")


def _folders(**sources: Any) -> dict[str, Any]:
    raw = copy.deepcopy(BASE)
    raw["data"].pop("synthetic")
    raw["data"].pop("split_ratios")
    raw["data"].update(root="/data/set", images="img", masks="lbl")
    raw["data"].update(sources)
    return raw


CARVED = _folders(split_ratios={"val": 0.2, "test": 0.2}, group_pattern="^(.*)_")
# Each split has one source (data.synthetic, or a folder or list per split, or a share carved
# by split_ratios from the train source), so the leaves of each source kind are walked on a
# spec that uses that kind: there, a different value is a valid one.
BASES: dict[str, dict[str, Any]] = {
    "data.split_dirs.": _folders(images=None, masks=None, split_dirs={
        s: {"images": f"{s}_img", "masks": f"{s}_lbl"} for s in ("train", "val", "test")}),
    "data.split_lists.": _folders(split_lists={s: f"{s}.txt" for s in ("train", "val", "test")}),
    "data.split_ratios.": CARVED,
    "data.group_pattern": CARVED,
    "data.carve": CARVED,
    "data.images": _folders(),
    "data.masks": _folders(),
    "data.root": _folders(),
}


def _base(leaf: str) -> dict[str, Any]:
    return next((raw for prefix, raw in BASES.items() if leaf.startswith(prefix)), BASE)

# Values that only make sense together with others (set in the same place as the leaf).
TOGETHER: dict[str, dict[str, Any]] = {
    "data.task": {"data.num_classes": 3, "objective.metric": "val_miou"},
    "data.num_classes": {"data.task": "multiclass", "objective.metric": "val_miou"},
    "loss.weights.ce": {"data.task": "multiclass", "data.num_classes": 3,
                        "objective.metric": "val_miou"},
    "loss.weights.bce": {},
    "data.carve_gap": {"data.carve": "blocks"},
}
SPECIAL: dict[str, Any] = {
    "data.task": "multiclass",
    "data.num_classes": 3,
    "data.class_names": ["a", "b"],
    "data.mask_map": {7: 1},
    "data.mask_colors": {1: [[0, 255, 0]]},
    "data.palette": [[0, 0, 0], [255, 255, 255]],
    "data.size": [48, 40],
    "data.crop": [24, 20],
    "data.group_pattern": "^(.*)-",
    "data.root": "/data/elsewhere",  # absolute: a relative root is relative to the spec file
    "model.arch": "FPN",
    "model.encoder": "resnet34",
    "model.encoder_weights": "weights.pth",
    "model.custom": "pkg.mod:Net",
    "model.init_from": "0123abcd",
    "loss.ce.class_weights": "inverse",
    "eval.thresholds": [0.3, 0.6],
    "objective.metric": "val_f1",
    "data.num_workers": 2,  # an int or auto (the default)
}
ADDRESSABLE = [leaf for leaf in leaves(RunConfig) if leaf != "device"]


def _annotation(path: str) -> Any:
    annotation: Any = RunConfig
    for key in path.split("."):
        args = [a for a in typing.get_args(annotation) if a is not type(None)] or [annotation]
        inner = args[0]
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            annotation = inner.model_fields[key].annotation
        else:  # dict[K, V]
            annotation = typing.get_args(inner)[1]
    return annotation


def _different(path: str, current: Any) -> Any:
    """A valid value for ``path`` other than ``current`` (what the spec and presets give)."""
    if path in SPECIAL:
        return SPECIAL[path]
    annotation = _annotation(path)
    literal = [a for a in [annotation, *typing.get_args(annotation)]
               if typing.get_origin(a) is Literal]
    if literal:
        return next(c for c in typing.get_args(literal[0]) if c != current)
    if isinstance(current, bool):
        return not current
    if isinstance(current, int):
        return current + 1
    if isinstance(current, float):
        return current / 2 if current else 0.25
    if isinstance(current, str):
        return current + "_other"
    types = str(annotation)  # current is None: a value of the annotated type
    if "str" in types:
        return "other"
    return 3 if "int" in types and "float" not in types else 0.25


def _expected(path: str) -> dict[str, Any]:
    base = spec_from_dict(_base(path)).resolve().model_dump(mode="json")
    value = _different(path, get_dotted(base, path))
    return {path: value, **TOGETHER.get(path, {})}


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _check(resolved: RunConfig, values: dict[str, Any]) -> None:
    dumped = resolved.model_dump(mode="json")
    for path, value in values.items():
        assert get_dotted(dumped, path, "<missing>") == _json(value), path


def _via_spec(base: dict[str, Any], values: dict[str, Any], _: Path) -> RunConfig:
    raw = copy.deepcopy(base)
    for path, value in values.items():
        set_dotted(raw, path, value)
    return spec_from_dict(raw).resolve()


def _via_set(base: dict[str, Any], values: dict[str, Any], _: Path) -> RunConfig:
    return spec_from_dict(base, [f"{p}={json.dumps(v)}" for p, v in values.items()]).resolve()


def _via_profile(base: dict[str, Any], values: dict[str, Any], folder: Path) -> RunConfig:
    path = folder / "profiled.yaml"
    path.write_text(yaml.safe_dump({**base, "profiles": {"p": values}}))
    return load_spec(path, profile="p").resolve()


def _via_component(base: dict[str, Any], values: dict[str, Any], _: Path) -> RunConfig:
    raw = {**copy.deepcopy(base), "design": {
        "kind": "one_at_a_time", "components": [{"name": "c", "set": values}]}}
    spec = spec_from_dict(raw)
    component = configurations(spec.design)[1]
    return spec.resolve(component.values)


def _via_search(base: dict[str, Any], values: dict[str, Any], _: Path) -> RunConfig:
    (path, value), together = next(iter(values.items())), dict(list(values.items())[1:])
    raw = copy.deepcopy(base)
    for other, v in together.items():
        set_dotted(raw, other, v)
    param: dict[str, Any] = {"type": "categorical", "choices": [value]}
    if isinstance(value, float | int) and not isinstance(value, bool):
        param = {"type": type(value).__name__, "low": value, "high": value}
    raw["search"] = {path: param}
    spec = spec_from_dict(raw)
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    return spec.resolve(suggest(trial, spec.search))


ROUTES = {"spec": _via_spec, "set": _via_set, "profile": _via_profile,
          "component": _via_component, "search": _via_search}


def test_every_leaf_is_walked():
    # the list is generated from the models: a new field is covered without editing this test
    assert len(ADDRESSABLE) > 100
    assert {"augment.hflip", "loss.weights.focal", "data.split_dirs.val.masks",
            "optim.ema_decay", "objective.direction"} <= set(ADDRESSABLE)


@pytest.mark.parametrize("route", list(ROUTES))
def test_every_leaf_sticks(route, tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    failures = []
    for leaf in ADDRESSABLE:
        values = _expected(leaf)
        if route == "search" and TOGETHER.get(leaf):
            # one sampled value at a time; its companions cannot be written in the spec
            # without making the spec itself invalid, so these go through the other routes
            continue
        try:
            _check(ROUTES[route](_base(leaf), values, tmp_path), values)
        except (AssertionError, AblateError) as err:
            failures.append(f"{leaf}: {type(err).__name__}: {err}")
    assert not failures, failures


def test_presets_fill_only_unwritten_values():
    config = spec_from_dict(BASE).resolve()
    # strong switches its toggles on, except vflip, which the spec writes as false
    assert config.augment.hflip and config.augment.rot90 and not config.augment.vflip
    # combined gives bce and dice; the written jaccard term is added to the mix
    assert config.loss.weights == {"bce": 0.5, "dice": 0.5, "jaccard": 0.4}
    searched = spec_from_dict(BASE).resolve({"loss.weights.focal": 0.3, "augment.hflip": False})
    assert searched.loss.weights == {"bce": 0.5, "dice": 0.5, "jaccard": 0.4, "focal": 0.3}
    assert not searched.augment.hflip


def test_searched_preset_replaces_the_default_mix_not_written_terms():
    # no preset and no weights written: the default mix (bce) alone, and a searched term is
    # added to it; a preset set by a later level replaces the default mix
    raw = spec_dict()
    raw["loss"] = {}
    spec = spec_from_dict(raw)
    assert spec.resolve().loss.weights == {"bce": 1.0}
    assert spec.resolve({"loss.weights.focal": 0.2}).loss.weights == {"bce": 1.0, "focal": 0.2}
    assert spec.resolve({"loss.preset": "dice"}).loss.weights == {"dice": 1.0}


def test_component_beats_baseline_and_spec():
    raw = {**spec_dict(optim={"lr": 0.01}), "design": {
        "kind": "cumulative", "baseline": {"optim.lr": 0.003},
        "components": [{"name": "fast", "set": {"optim.lr": 0.02}}]}}
    raw.pop("search")
    spec = spec_from_dict(raw)
    base, fast = configurations(spec.design)
    assert spec.resolve(base.values).optim.lr == 0.003
    assert spec.resolve(fast.values).optim.lr == 0.02


def test_stored_spec_keeps_presets_as_presets(tmp_path):
    # the stored copy is the spec as written: loading it back resolves the same way
    spec = spec_from_dict(BASE)
    again = spec_from_dict(spec.written())
    assert again.resolve() == spec.resolve()
    assert "hflip" not in spec.written()["augment"]


@pytest.mark.slow
def test_study_with_presets_logs_params_equal_to_searched_tags(cli, write_spec, store):
    spec = spec_dict(
        loss={"preset": "combined"},
        augment={"preset": "light"},
        trials=2,
        sampler={"name": "grid", "seed": 0},
    )
    spec["search"] = {"loss.weights.focal": {"type": "float", "low": 0.3, "high": 0.3,
                                             "step": 0.1},
                      "augment.hflip": {"type": "bool"}}
    result = cli("study", "run", write_spec(spec), "--store", store, "--quiet")
    assert result.exit_code == 0, result.output
    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny").experiment_id
    runs = client.search_runs([experiment], f"tags.`{keys.TAG_ROLE}` = 'trial'")
    assert len(runs) == 2
    hflips = set()
    for run in runs:
        for path in ("loss.weights.focal", "augment.hflip"):
            searched = json.loads(run.data.tags[keys.SEARCHED_PREFIX + path])
            assert run.data.params[path] == str(searched), (path, run.data.params[path])
        hflips.add(run.data.params["augment.hflip"])
        # the preset still fills in what nothing sets
        assert run.data.params["augment.vflip"] == "True"
        assert run.data.params["loss.weights.dice"] == "0.5"
    assert hflips == {"True", "False"}
    # the search space is recorded whole, on the parent run and in the Optuna study
    (parent,) = client.search_runs([experiment], f"tags.`{keys.TAG_ROLE}` = 'parent'")
    space = json.loads(parent.data.tags[keys.TAG_SEARCH])
    assert space["loss.weights.focal"] == {"type": "float", "low": 0.3, "high": 0.3,
                                           "log": False, "step": 0.1}
    assert space["augment.hflip"] == {"type": "bool", "log": False}
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{store / 'optuna.db'}")
    assert study.user_attrs["ablate_search_space"] == space
    # the parent's params are the base configuration as it trains (presets filled in)
    assert parent.data.params["spec.augment.hflip"] == "True"
