"""The study spec: a YAML file, validated into typed models.

A :class:`StudySpec` declares a whole study. Each trial receives a :class:`RunConfig`: the spec's
configuration sections with the sampled values written in. The run config is what ``train()``
gets, what is logged, and what reproduces a run.
"""

from __future__ import annotations

import copy
import difflib
import re
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from ablate.errors import SpecError

SPLITS = ("train", "val", "test")
Split = Literal["train", "val", "test"]

BINARY_METRICS = ("iou", "f1", "precision", "recall", "specificity", "accuracy", "loss")
MULTICLASS_METRICS = ("miou", "mf1", "accuracy", "loss")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# ---------------------------------------------------------------------------------------- data


class SplitDir(_Strict):
    images: str
    masks: str


class SyntheticSpec(_Strict):
    """Shapes on noise, generated deterministically from ``seed``."""

    num_images: int = Field(32, ge=3)
    channels: PositiveInt = 3
    size: int = Field(64, ge=16)
    seed: int = 0


class DataSpec(_Strict):
    task: Literal["binary", "multiclass"] = "binary"
    num_classes: int | None = Field(None, ge=2)
    class_names: list[str] | None = None
    # Folder data: ``root`` is relative to the spec file; everything else relative to ``root``.
    root: str | None = None
    images: str | None = None
    masks: str | None = None
    split_dirs: dict[Split, SplitDir] | None = None
    split_lists: dict[Split, str] | None = None
    split_ratios: dict[Split, NonNegativeFloat] = Field(
        default_factory=lambda: {"train": 0.7, "val": 0.15, "test": 0.15}
    )
    split_seed: int = 0
    group_pattern: str | None = None
    synthetic: SyntheticSpec | None = None
    mask_map: dict[int, int] = Field(default_factory=dict)
    ignore_index: int | None = None
    size: tuple[PositiveInt, PositiveInt] | None = None
    crop: tuple[PositiveInt, PositiveInt] | None = None
    normalize: Literal["train", "none"] = "train"
    batch_size: PositiveInt = 4
    eval_batch_size: PositiveInt | None = None
    num_workers: NonNegativeInt = 0

    @field_validator("group_pattern")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as err:
                raise ValueError(f"not a valid regular expression ({err})") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> DataSpec:
        if self.task == "binary":
            if self.num_classes not in (None, 2):
                raise ValueError("a binary task has 2 classes; use task: multiclass for more")
            self.__dict__["num_classes"] = 2
            if self.ignore_index in (0, 1):
                raise ValueError("ignore_index 0 or 1 is a class of a binary task; use e.g. 255")
        elif self.num_classes is None:
            raise ValueError("num_classes is required for task: multiclass")
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise ValueError(
                f"class_names has {len(self.class_names)} names for {self.num_classes} classes"
            )
        if self.synthetic is None:
            if self.root is None:
                raise ValueError("give either data.root (a folder data set) or data.synthetic")
            if self.split_dirs is None and (self.images is None or self.masks is None):
                raise ValueError("a folder data set needs images and masks, or split_dirs")
        if self.split_dirs is None and self.split_lists is None:
            if self.split_ratios.get("train", 0) <= 0 or self.split_ratios.get("val", 0) <= 0:
                raise ValueError("split_ratios needs train and val ratios above 0")
            if sum(self.split_ratios.values()) > 1.0 + 1e-6:
                raise ValueError("split_ratios add up to more than 1")
        for split, mapped in self.mask_map.items():
            if mapped != self.ignore_index and not 0 <= mapped < self.num_classes:
                raise ValueError(
                    f"mask_map sends {split} to {mapped}, which is neither a class "
                    f"(0..{self.num_classes - 1}) nor ignore_index"
                )
        return self

    @property
    def names(self) -> list[str]:
        """Class names, defaulting to background/foreground or class_<i>."""
        if self.class_names:
            return list(self.class_names)
        if self.task == "binary":
            return ["background", "foreground"]
        return [f"class_{i}" for i in range(self.num_classes or 0)]


# --------------------------------------------------------------------------------------- model


class ModelSpec(BaseModel):
    """An smp architecture + encoder; any other key is passed to the architecture."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    arch: str = "Unet"
    encoder: str = "resnet18"
    encoder_weights: str | None = None

    @field_validator("encoder_weights")
    @classmethod
    def _local_weights(cls, value: str | None) -> str | None:
        if value is None or value.lower() == "none":
            return None
        if not value.endswith((".pth", ".pt", ".bin", ".safetensors")) and "/" not in value:
            raise ValueError(
                f"'{value}' would need a download, which is not possible here; "
                "use null or the path of a local weights file (.pth)"
            )
        return value

    @model_validator(mode="after")
    def _known(self) -> ModelSpec:
        from ablate.models import check_model_names

        check_model_names(self.arch, self.encoder, self.kwargs)
        return self

    @property
    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments passed through to the architecture."""
        return dict(self.model_extra or {})


# ---------------------------------------------------------------------------------------- loss

LossTerm = Literal["ce", "bce", "dice", "jaccard", "focal", "lovasz", "tversky"]


class BCESpec(_Strict):
    pos_weight: PositiveFloat = 1.0
    neg_weight: PositiveFloat = 1.0


class CESpec(_Strict):
    class_weights: list[NonNegativeFloat] | Literal["inverse", "inverse_sqrt"] | None = None


class FocalSpec(_Strict):
    alpha: float | None = Field(None, ge=0, le=1)
    gamma: NonNegativeFloat = 2.0


class JaccardSpec(_Strict):
    pos_weight: NonNegativeFloat = 1.0
    neg_weight: NonNegativeFloat = 0.0


class TverskySpec(_Strict):
    alpha: NonNegativeFloat = 0.5
    beta: NonNegativeFloat = 0.5
    gamma: PositiveFloat = 1.0


class LossSpec(_Strict):
    weights: dict[LossTerm, NonNegativeFloat] = Field(default_factory=dict)
    bce: BCESpec = Field(default_factory=BCESpec)
    ce: CESpec = Field(default_factory=CESpec)
    focal: FocalSpec = Field(default_factory=FocalSpec)
    jaccard: JaccardSpec = Field(default_factory=JaccardSpec)
    tversky: TverskySpec = Field(default_factory=TverskySpec)


# -------------------------------------------------------------------------------- augmentation


class AugmentSpec(_Strict):
    """Train-split augmentations, each a toggle; ``p`` is the probability of each one."""

    hflip: bool = False
    vflip: bool = False
    rot90: bool = False
    shift_scale_rotate: bool = False
    color_jitter: bool = False
    blur: bool = False
    gauss_noise: bool = False
    random_resized_crop: bool = False
    p: float = Field(0.5, ge=0, le=1)


# -------------------------------------------------------------------------------- optimisation


class OptimSpec(_Strict):
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: PositiveFloat = 1e-3
    weight_decay: NonNegativeFloat = 0.0
    momentum: float = Field(0.9, ge=0, lt=1)
    epochs: PositiveInt = 10
    scheduler: Literal["none", "cosine", "step", "plateau", "cosine_restarts"] = "none"
    warmup_epochs: NonNegativeInt = 0
    step_size: PositiveInt = 10
    gamma: PositiveFloat = 0.1
    plateau_patience: NonNegativeInt = 3
    plateau_factor: float = Field(0.5, gt=0, lt=1)
    restart_epochs: PositiveInt = 10
    restart_mult: PositiveInt = 1
    grad_accum: PositiveInt = 1
    grad_clip: PositiveFloat | None = None
    amp: bool = True
    channels_last: bool = True
    early_stopping_patience: PositiveInt | None = None
    early_stopping_min_delta: NonNegativeFloat = 0.0


class EvalSpec(_Strict):
    threshold: float = Field(0.5, gt=0, lt=1)
    gallery: NonNegativeInt = 4


class ObjectiveSpec(_Strict):
    metric: str = "val_iou"
    direction: Literal["maximize", "minimize"] = "maximize"

    @field_validator("direction", mode="before")
    @classmethod
    def _short(cls, value: Any) -> Any:
        return {"max": "maximize", "min": "minimize"}.get(value, value)

    @field_validator("metric")
    @classmethod
    def _on_val(cls, value: str) -> str:
        if not value.startswith("val_"):
            raise ValueError(
                f"'{value}' is not a val_ metric; the objective is read on the validation split "
                "(test data never drives selection), e.g. val_iou or val_miou"
            )
        return value


# ------------------------------------------------------------------------------ study settings


class SamplerSpec(_Strict):
    name: Literal["tpe", "random", "grid"] = "tpe"
    seed: int | None = None
    n_startup_trials: NonNegativeInt = 4


class PrunerSpec(_Strict):
    name: Literal["none", "median", "hyperband"] = "none"
    n_startup_trials: NonNegativeInt = 2
    n_warmup_steps: NonNegativeInt = 1
    min_resource: PositiveInt = 1
    reduction_factor: int = Field(3, ge=2)


class SearchParam(_Strict):
    """A distribution over one config value, addressed by its dotted path."""

    type: Literal["float", "int", "categorical", "bool"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: PositiveFloat | None = None
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _shape(self) -> SearchParam:
        if self.type in ("float", "int"):
            if self.low is None or self.high is None:
                raise ValueError(f"a {self.type} distribution needs low and high")
            if self.low > self.high:
                raise ValueError(f"low ({self.low}) is above high ({self.high})")
            if self.log and self.low <= 0:
                raise ValueError("a log distribution needs low > 0")
            if self.log and self.step is not None:
                raise ValueError("log and step cannot be combined")
            if self.choices is not None:
                raise ValueError(f"choices belong to categorical, not {self.type}")
        elif self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical distribution needs a non-empty choices list")
            if self.low is not None or self.high is not None:
                raise ValueError("low/high belong to float or int, not categorical")
        elif any(v is not None for v in (self.low, self.high, self.choices)):
            raise ValueError("a bool toggle takes no low, high or choices")
        return self

    def bounds(self) -> list[Any]:
        """The values that must all make a valid config: the extremes or every choice."""
        if self.type == "bool":
            return [False, True]
        if self.type == "categorical":
            return list(self.choices or [])
        cast = int if self.type == "int" else float
        return [cast(self.low), cast(self.high)]


# ------------------------------------------------------------------------------------- configs


class RunConfig(_Strict):
    """Everything one training run needs; a trial's resolved configuration."""

    seed: int = 0
    device: str = "auto"
    data: DataSpec
    model: ModelSpec = Field(default_factory=ModelSpec)
    loss: LossSpec = Field(default_factory=LossSpec)
    augment: AugmentSpec = Field(default_factory=AugmentSpec)
    optim: OptimSpec = Field(default_factory=OptimSpec)
    eval: EvalSpec = Field(default_factory=EvalSpec)
    objective: ObjectiveSpec = Field(default_factory=ObjectiveSpec)

    @model_validator(mode="after")
    def _cross_checks(self) -> RunConfig:
        task = self.data.task
        weights = self.loss.weights or ({"bce": 1.0} if task == "binary" else {"ce": 1.0})
        self.loss.__dict__["weights"] = dict(weights)
        if not any(w > 0 for w in weights.values()):
            raise ValueError("loss.weights: every weight is 0; give at least one term a weight")
        if task == "multiclass" and "bce" in weights:
            raise ValueError("loss.weights.bce is for binary tasks; use ce for multiclass")
        if task == "binary" and "ce" in weights:
            raise ValueError("loss.weights.ce is for multiclass tasks; use bce for binary")
        ce_weights = self.loss.ce.class_weights
        if isinstance(ce_weights, list) and len(ce_weights) != self.data.num_classes:
            raise ValueError(
                f"loss.ce.class_weights has {len(ce_weights)} values for "
                f"{self.data.num_classes} classes"
            )
        valid = metric_names(self.data)
        name = self.objective.metric.removeprefix("val_")
        if name not in valid:
            close = difflib.get_close_matches(name, valid, n=1)
            hint = f" (did you mean val_{close[0]}?)" if close else ""
            raise ValueError(
                f"objective.metric '{self.objective.metric}' is not a {task} metric{hint}; "
                f"choose one of: {', '.join('val_' + v for v in valid[:8])}"
            )
        return self


class StudySpec(RunConfig):
    """A study: the run configuration plus how Optuna explores it."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    trials: PositiveInt = 10
    max_failures: PositiveInt = 5
    sampler: SamplerSpec = Field(default_factory=SamplerSpec)
    pruner: PrunerSpec = Field(default_factory=PrunerSpec)
    search: dict[str, SearchParam] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _search_paths(self) -> StudySpec:
        base = self.run_dict()
        for path, param in self.search.items():
            if path.split(".")[0] not in RunConfig.model_fields or path in ("seed", "device"):
                if path not in ("seed",):
                    raise ValueError(f"search.{path}: not a config value that can be searched")
            for value in param.bounds():
                trial_dict = set_dotted(copy.deepcopy(base), path, value, must_exist=True)
                try:
                    RunConfig.model_validate(trial_dict)
                except ValidationError as err:
                    first = err.errors()[0]
                    raise ValueError(
                        f"search.{path}: value {value!r} gives an invalid config: "
                        f"{_loc(first['loc'])}: {_msg(first)}"
                    ) from None
            if self.sampler.name == "grid" and param.type == "float" and param.step is None:
                raise ValueError(f"search.{path}: the grid sampler needs a step for floats")
        return self

    def run_dict(self) -> dict[str, Any]:
        """The run-config part of the spec as plain data."""
        return self.model_dump(mode="json", include=set(RunConfig.model_fields))

    def resolve(self, values: dict[str, Any]) -> RunConfig:
        """The run config of one trial: this spec with ``values`` (dotted path -> value) set."""
        data = self.run_dict()
        for path, value in values.items():
            set_dotted(data, path, value, must_exist=True)
        return RunConfig.model_validate(data)


def metric_names(data: DataSpec) -> list[str]:
    """Metric names (without split prefix) that a run of this data set reports."""
    if data.task == "binary":
        return list(BINARY_METRICS)
    per_class = [f"iou_{slug(n)}" for n in data.names] + [f"f1_{slug(n)}" for n in data.names]
    return list(MULTICLASS_METRICS) + per_class


def slug(name: str) -> str:
    """A class name as it appears inside metric keys."""
    return re.sub(r"[^A-Za-z0-9]+", "_", name.strip()).strip("_").lower() or "class"


# ----------------------------------------------------------------------------- dotted paths


def set_dotted(data: dict[str, Any], path: str, value: Any, must_exist: bool = False) -> dict:
    """Set ``data[a][b][c] = value`` for ``path = "a.b.c"``; returns ``data``."""
    keys = path.split(".")
    node = data
    for depth, key in enumerate(keys[:-1]):
        nxt = node.get(key) if isinstance(node, dict) else None
        if nxt is None:
            if must_exist and not _may_create(keys[: depth + 1]):
                raise KeyError(path)
            nxt = node[key] = {}
        if not isinstance(nxt, dict):
            raise SpecError(f"'{'.'.join(keys[: depth + 1])}' is a value, not a section")
        node = nxt
    node[keys[-1]] = value
    return data


def _may_create(keys: list[str]) -> bool:
    # Optional sections that a search may fill in (e.g. loss.weights.focal).
    return keys[:2] in (["loss", "weights"],) or keys[:1] == ["model"]


# ------------------------------------------------------------------------------------ loading


def load_spec(path: str | Path, overrides: list[str] | None = None) -> StudySpec:
    """Read, override and validate a study spec; bad input raises :class:`SpecError`."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: spec file not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise SpecError(f"{path}: malformed YAML{where}: {problem}") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: a spec is a YAML mapping (key: value), got {type(raw).__name__}")
    raw.setdefault("name", path.stem)
    _resolve_paths(raw, path.parent)
    return spec_from_dict(raw, overrides, source=str(path))


def spec_from_dict(
    raw: dict[str, Any], overrides: list[str] | None = None, source: str = "spec"
) -> StudySpec:
    """Validate a spec held as plain data (e.g. the copy stored with a study)."""
    raw = copy.deepcopy(raw)
    for item in overrides or []:
        apply_override(raw, item)
    try:
        return StudySpec.model_validate(raw)
    except ValidationError as err:
        raise SpecError(format_validation_error(err, source)) from None


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Apply one ``--set key.path=value`` (value parsed as YAML) to raw spec data."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise SpecError(f"--set {item!r}: expected key.path=value, e.g. --set optim.lr=0.001")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = text
    if key.startswith("search.") and isinstance(raw.get("search"), dict):
        rest = key.removeprefix("search.")
        for name in sorted(raw["search"], key=len, reverse=True):
            if rest == name:
                if value is None:
                    del raw["search"][name]
                else:
                    raw["search"][name] = value
                return
            if rest.startswith(name + "."):
                raw["search"][name][rest[len(name) + 1 :]] = value
                return
        raw["search"][rest] = value
        return
    set_dotted(raw, key, value)


def _resolve_paths(raw: dict[str, Any], base: Path) -> None:
    """Make paths in the spec file relative to the file, not to the working directory."""
    data = raw.get("data")
    if isinstance(data, dict) and isinstance(data.get("root"), str):
        data["root"] = str((base / data["root"]).resolve())
    model = raw.get("model")
    if isinstance(model, dict):
        weights = model.get("encoder_weights")
        if isinstance(weights, str) and (base / weights).is_file():
            model["encoder_weights"] = str((base / weights).resolve())


# ------------------------------------------------------------------------------------ errors


def format_validation_error(err: ValidationError, source: str) -> str:
    """One line: file, key path, what is wrong and what to do."""
    # An unknown key explains the "missing" errors beside it, so it goes first.
    errors = sorted(err.errors(), key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    loc = [str(p) for p in first["loc"] if not str(p).startswith(("function-", "tuple["))]
    msg = _msg(first)
    if first["type"] == "extra_forbidden":
        valid = _fields_at(StudySpec, loc[:-1])
        close = difflib.get_close_matches(loc[-1], valid, n=1)
        msg = f"unknown key '{loc[-1]}'"
        msg += f" (did you mean '{close[0]}'?)" if close else ""
        if valid:
            msg += f"; valid keys here: {', '.join(valid)}"
    elif first["type"] == "missing":
        msg = "required key is missing"
    where = f"{_loc(loc)}: " if loc else ""  # cross-field checks name their keys themselves
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return f"{source}: {where}{msg}" + (more if len(errors) > 1 else "")


def _loc(loc: Any) -> str:
    return ".".join(str(p) for p in loc if not str(p).startswith(("function-", "tuple[")))


def _msg(error: dict[str, Any]) -> str:
    msg = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] not in ("value_error", "extra_forbidden", "missing") and "input" in error:
        value = error["input"]
        if not isinstance(value, dict | list) or len(repr(value)) < 60:
            msg += f" (got {value!r})"
    return msg


def _fields_at(model: type[BaseModel], loc: list[str]) -> list[str]:
    """The valid keys of the section at ``loc``, for suggestions."""
    annotation: Any = model
    for key in loc:
        section = _model_in(annotation)
        if section is None:
            return []
        if key in section.model_fields:
            annotation = section.model_fields[key].annotation
        # else: a mapping key (e.g. a split name); the section stays the mapping's value type
    target = _model_in(annotation)
    return list(target.model_fields) if target else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
