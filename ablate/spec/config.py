"""A study spec and the resolved configuration of one run."""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    Discriminator,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    PrivateAttr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from ablate.spec.base import Registry
from ablate.spec.limits import check_upper
from ablate.spec.messages import error_loc, error_msg
from ablate.spec.paths import get_dotted
from ablate.spec.precedence import addressable, fill_presets, resolve_data
from ablate.spec.sections import (
    MAX_SEED,
    AugmentSpec,
    DataSpec,
    EvalSpec,
    LossSpec,
    ModelSpec,
    ObjectiveSpec,
    OptimSpec,
    Seed,
    _Strict,
    metric_names,
)

if TYPE_CHECKING:
    from ablate.designs import Design

# ------------------------------------------------------------------------------ study settings


class Component(_Strict):
    """One ablation component: a name and the config values it changes."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.+-]+$")
    """Its name: the configuration's label and its Y/N column in the report."""
    set: dict[str, Any] = Field(min_length=1)
    """The values it sets, by dotted path (`{loss.weights.focal: 0.3}`), applied together
    over the design's baseline."""


class RepeatRange(_Strict):
    """Adaptive repeats: every configuration gets ``min`` seeds; a configuration whose
    comparison with its reference is still undecided gets one more seed at a time, up to
    ``max`` (see :mod:`ablate.study.adaptive`)."""

    min: int = Field(ge=2, le=100)
    """Seeds every configuration gets."""
    max: int = Field(ge=2, le=100)
    """The most seeds a configuration may get."""

    @model_validator(mode="after")
    def _ordered(self) -> RepeatRange:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self


# The kinds of ablate.designs; checked when a spec is validated (the registry sits above).
DesignKind = Annotated[str, Registry("ablate.designs", "DESIGNS", "design kind")]


def _design_kind(name: str) -> Design:
    from ablate.designs import design_kind

    return design_kind(name)


def _kinds(**traits: bool) -> str:
    from ablate.designs import kind_names

    names = kind_names(**traits)
    return ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else "".join(names)


class DesignSpec(_Strict):
    """How configurations are chosen: an Optuna search, or a fixed ablation design.

    ``components`` may be written as dotted paths of bool toggles (``augment.hflip``), short
    for ``{name: hflip, set: {augment.hflip: true}}``. ``baseline`` values apply to every
    configuration. Each configuration is trained ``repeats`` times with seeds seed, seed+1, ...;
    ``repeats: {min, max}`` adds seeds only while a comparison is undecided (one_at_a_time and
    cumulative designs).
    """

    kind: DesignKind = "search"
    """How configurations are chosen: `search` (the sampler draws them from `search`), or a
    fixed design: `one_at_a_time` (the baseline, then each component alone), `cumulative`
    (the components added in the listed order), `factorial` (every subset, at most 8
    components)."""
    baseline: dict[str, Any] = Field(default_factory=dict)
    """Values, by dotted path, that every configuration of a fixed design starts from."""
    components: list[Component] = Field(default_factory=list)
    """What a fixed design switches on: `{name, set}` each, or the dotted path of a bool toggle
    (`augment.hflip`, short for `{name: hflip, set: {augment.hflip: true}}`)."""
    repeats: Annotated[
        Annotated[int, Field(ge=1, le=100), Tag("<count>")]
        | Annotated[RepeatRange, Tag("<range>")],
        Discriminator(lambda v: "<range>" if isinstance(v, dict | RepeatRange) else "<count>"),
    ] = 1
    """Runs per configuration, with seeds seed, seed+1, ...; or `{min, max}`: adaptive, a seed
    more only while a comparison is undecided (designs that compare each configuration with a
    reference: one_at_a_time, cumulative)."""

    @property
    def adaptive(self) -> bool:
        """Seeds are added while comparisons are undecided (``repeats: {min, max}``)."""
        return isinstance(self.repeats, RepeatRange)

    @property
    def min_repeats(self) -> int:
        """Seeds every configuration gets (all of them with fixed repeats)."""
        return self.repeats.min if isinstance(self.repeats, RepeatRange) else self.repeats

    @property
    def max_repeats(self) -> int:
        """The most seeds a configuration may get."""
        return self.repeats.max if isinstance(self.repeats, RepeatRange) else self.repeats

    @field_validator("components", mode="before")
    @classmethod
    def _toggle_shorthand(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return [
            {"name": item.rsplit(".", 1)[-1], "set": {item: True}} if isinstance(item, str)
            else item
            for item in value
        ]

    @model_validator(mode="after")
    def _enough(self) -> DesignSpec:
        kind = _design_kind(self.kind)
        if not kind.sampled and not self.components:
            raise ValueError(f"a {self.kind} design needs a non-empty components list")
        names = [c.name for c in self.components]
        if len(set(names)) != len(names):
            raise ValueError(f"component names repeat: {', '.join(names)}")
        cap = kind.max_components
        if cap is not None and len(self.components) > cap:
            raise ValueError(f"a {self.kind} design takes at most {cap} components, not "
                             f"{len(self.components)}")
        if self.adaptive and not kind.adaptive:
            raise ValueError(
                f"repeats: adaptive repeats ({{min, max}}) need a {_kinds(adaptive=True)} "
                f"design (each configuration compared with a reference); a {self.kind} design "
                "takes an integer")
        return self


class ReportSpec(_Strict):
    """How the report decides: ``correction`` of the p-values across a table's comparisons
    (holm, bh or none) at level ``alpha``; ``equivalence_margin``: a difference within
    ±margin counts as equivalent (two one-sided tests); ``target_effect``: the difference the
    seeds-needed figure is computed for (default: the observed one). Also the level of the
    adaptive-repeats rule."""

    correction: Literal["holm", "bh", "none"] = "holm"
    """How the p-values of a report's comparisons are adjusted: Holm (family-wise error),
    Benjamini-Hochberg (false discovery rate), or not at all."""
    alpha: float = Field(0.05, gt=0.0, lt=0.5)
    """The level of every decision, and of the adaptive-repeats rule."""
    equivalence_margin: PositiveFloat | None = None
    """A difference within ±margin counts as `equivalent` (two one-sided tests); null: no
    equivalence decisions."""
    target_effect: PositiveFloat | None = None
    """The difference the seeds-needed figure is computed for (null: the observed one)."""


class SamplerSpec(_Strict):
    name: Literal["tpe", "random", "grid"] = "tpe"
    """The Optuna sampler of a search: TPE, random, or every cell of the grid once (`trials`
    capped at the grid's size)."""
    seed: Seed | None = None
    """The sampler's seed (null: the spec's `seed`); each trial's is drawn from it and the
    trial number, so parallel workers draw different values."""
    n_startup_trials: NonNegativeInt = 4
    """TPE: random trials before the model of the results so far takes over."""


class PrunerSpec(_Strict):
    name: Literal["none", "median", "hyperband"] = "none"
    """The Optuna pruner that stops unpromising trials early (none, the median rule, or
    Hyperband); its steps are epochs, from 1."""
    n_startup_trials: NonNegativeInt = 2
    """median: trials that finish before any is pruned."""
    n_warmup_steps: NonNegativeInt = 1
    """median: the first epochs of a trial, which are never pruned."""
    min_resource: PositiveInt = 1
    """hyperband: epochs every trial gets before it may be stopped."""
    reduction_factor: int = Field(3, ge=2)
    """hyperband: 1 / the share of trials promoted at each rung."""


class SearchParam(_Strict):
    """A distribution over one config value, addressed by its dotted path."""

    type: Literal["float", "int", "categorical", "bool"]
    """The distribution: a float or int range, a list of choices, or a bool toggle."""
    low: float | None = None
    """float / int: the lowest value."""
    high: float | None = None
    """float / int: the highest value."""
    log: bool = False
    """float / int: sample on a log scale (needs low > 0)."""
    step: PositiveFloat | None = None
    """float / int: only values low + k x step (it must divide the range; the grid sampler
    needs one for floats)."""
    choices: list[Any] | None = None
    """categorical: the values to choose from (any YAML values, lists included)."""

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
            self._check_step()
        elif self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical distribution needs a non-empty choices list")
            if self.low is not None or self.high is not None:
                raise ValueError("low/high belong to float or int, not categorical")
        elif any(v is not None for v in (self.low, self.high, self.choices)):
            raise ValueError("a bool toggle takes no low, high or choices")
        return self

    def _check_step(self) -> None:
        """A step must divide the range (Optuna would silently move ``high``)."""
        if self.step is None or self.low is None or self.high is None:
            return
        if self.type == "int" and self.step != int(self.step):
            raise ValueError(f"an int distribution needs a whole step, not {self.step:g}")
        count = (self.high - self.low) / self.step
        if abs(count - round(count)) > 1e-6 * max(1.0, abs(count)):
            raise ValueError(
                f"step {self.step:g} does not divide the range {self.low:g}..{self.high:g}; "
                f"make high - low a multiple of the step (e.g. high: "
                f"{self.low + math.floor(count) * self.step:g})"
            )

    def bounds(self) -> list[Any]:
        """The values that must all make a valid config: the extremes or every choice."""
        if self.type == "bool":
            return [False, True]
        if self.type == "categorical":
            return list(self.choices or [])
        low, high = self.range
        return [int(low), int(high)] if self.type == "int" else [low, high]

    @property
    def range(self) -> tuple[float, float]:
        """``(low, high)`` of a float or int distribution (validated to be set)."""
        if self.low is None or self.high is None:
            raise ValueError(f"a {self.type} distribution has no low/high")
        return self.low, self.high


# ------------------------------------------------------------------------------------- configs


class RunConfig(_Strict):
    """Everything one training run needs; a trial's resolved configuration.

    Presets are filled in from the values as given (:mod:`ablate.spec.precedence`); a resolved
    configuration holds every value explicitly, so validating its dump gives it back unchanged.
    """

    seed: Seed = 0
    """The seed of the first run of each configuration; repeat r trains with seed + r."""
    device: str = "auto"
    """Where runs train: `auto` (CUDA when present, else the CPU), `cpu`, `cuda`, `cuda:1`."""
    deterministic: bool = True
    """CUDA: deterministic cuDNN and torch algorithms (the same seed on the same GPU model gives
    the same numbers, at some cost in speed); false: cuDNN's autotuned fastest algorithms."""
    data: DataSpec
    """The data set: where it is, how it is split and read (docs/data.md tells how)."""
    model: ModelSpec = Field(default_factory=ModelSpec)
    """The network: an smp architecture and encoder, or your own model; every key not listed
    here is passed to the architecture (`decoder_channels`, `encoder_depth`, ...)."""
    loss: LossSpec = Field(default_factory=LossSpec)
    """The training loss: a weighted sum of terms."""
    augment: AugmentSpec = Field(default_factory=AugmentSpec)
    """Augmentations of the train split (image and mask together), each a toggle."""
    optim: OptimSpec = Field(default_factory=OptimSpec)
    """Optimizer, schedule, epochs and the tricks of training."""
    eval: EvalSpec = Field(default_factory=EvalSpec)
    """How runs are evaluated and what they keep."""
    objective: ObjectiveSpec = Field(default_factory=ObjectiveSpec)
    """What picks a run's best epoch and what the study optimises (with `objectives`: the
    first of them)."""

    @model_validator(mode="before")
    @classmethod
    def _presets(cls, data: Any) -> Any:
        return fill_presets(data) if isinstance(data, dict) else data

    @model_validator(mode="after")
    def _loss_terms(self) -> RunConfig:
        weights = self.loss.weights
        if not any(w > 0 for w in weights.values()):
            raise ValueError("loss.weights: every weight is 0; give at least one term a weight")
        if self.data.task == "multiclass" and "bce" in weights:
            raise ValueError("loss.weights.bce is for binary tasks; use ce for multiclass")
        if self.data.task == "binary" and "ce" in weights:
            raise ValueError("loss.weights.ce is for multiclass tasks; use bce for binary")
        return self

    @model_validator(mode="after")
    def _limits(self) -> RunConfig:
        check_upper(self.model_dump(mode="json"))
        return self

    @model_validator(mode="after")
    def _cross_checks(self) -> RunConfig:
        task = self.data.task
        ce_weights = self.loss.ce.class_weights
        if isinstance(ce_weights, list) and len(ce_weights) != self.data.num_classes:
            raise ValueError(
                f"loss.ce.class_weights has {len(ce_weights)} values for "
                f"{self.data.num_classes} classes"
            )
        valid = metric_names(self.data)
        name = self.objective.metric.removeprefix("val_")
        if not self.objective.metric.startswith("val_"):
            raise ValueError(
                f"objective.metric '{self.objective.metric}' is not a val_ metric; the objective "
                "picks the best epoch on the validation split, e.g. val_iou or val_miou"
            )
        if name not in valid:
            close = difflib.get_close_matches(name, valid, n=1)
            hint = f" (did you mean val_{close[0]}?)" if close else ""
            raise ValueError(
                f"objective.metric '{self.objective.metric}' is not a {task} metric{hint}; "
                f"choose one of: {', '.join('val_' + v for v in valid[:8])}"
            )
        return self


class StudySpec(RunConfig):
    """A study: the run configuration plus how Optuna explores it.

    A spec holds its configuration as written (presets are not filled in here); each run's
    configuration comes from :meth:`resolve`, which applies the precedence rule of
    :mod:`ablate.spec.precedence`.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=128)
    """The study's name: letters, digits and `_.-`, at most 128 characters (a folder and file
    name in the store)."""
    description: str = ""
    """What the study is for, shown with it in MLflow."""
    trials: PositiveInt = 10
    """A search's budget of finished trials (a fixed design runs its configurations x
    repeats)."""
    max_failures: PositiveInt = 5
    """A worker stops (exit code 1) after this many failed trials."""
    on_oom: Literal["fail", "halve_batch"] = "fail"
    """Out of memory: fail the trial, or queue the configuration again with half the batch and
    twice the gradient accumulation (the same effective batch)."""
    min_batch_size: PositiveInt = 1
    """`halve_batch` halves the batch down to this size at most."""
    max_worker_deaths: int = Field(3, ge=0, le=100)
    """A configuration whose worker dies every time (the OOM killer, say) is queued again at
    most this many times, then failed with that reason."""
    resume: bool = True
    """Keep each trial's state after every epoch, so that one queued again continues there."""
    checkpoint_dir: str | None = None
    """Where those states go (null: `<store>/cache/resume`; ABLATE_CHECKPOINT_DIR
    overrides)."""
    sampler: SamplerSpec = Field(default_factory=SamplerSpec)
    """How a search draws its configurations."""
    pruner: PrunerSpec = Field(default_factory=PrunerSpec)
    """Whether and how trials are stopped early."""
    search: dict[str, SearchParam] = Field(default_factory=dict)
    """The search space of a search design: a distribution per dotted path of a config value
    (`optim.lr`, `loss.weights.focal`, `model.arch`, ...)."""
    design: DesignSpec = Field(default_factory=DesignSpec)
    """How configurations are chosen: a search, or a fixed ablation design."""
    report: ReportSpec = Field(default_factory=ReportSpec)
    """How the report decides whether a configuration beats its reference."""
    objectives: list[ObjectiveSpec] = Field(default_factory=list)
    """Several objectives (a multi-objective search: the Pareto front); the first one picks
    each run's best epoch."""
    # Where the spec came from (a file, or a study's stored copy), for messages.
    _source: str = PrivateAttr("spec")
    # The absolute path of the spec file, when it was read from one.
    _path: str | None = PrivateAttr(None)

    @model_validator(mode="before")
    @classmethod
    def _presets(cls, data: Any) -> Any:
        return data  # a spec stays as written; presets are filled in by resolve()

    @model_validator(mode="after")
    def _loss_terms(self) -> StudySpec:
        return self  # checked on the resolved configuration (_resolves)

    @model_validator(mode="before")
    @classmethod
    def _first_objective(cls, data: Any) -> Any:
        # With objectives: [...], the first one is the run's objective (picks the best epoch).
        if isinstance(data, dict) and data.get("objectives"):
            first = data["objectives"][0]
            if isinstance(first, dict):
                data = {**data, "objective": first}
        return data

    @model_validator(mode="after")
    def _resolves(self) -> StudySpec:
        try:
            self.resolve({})
        except ValidationError as err:
            first = err.errors()[0]
            where = error_loc(first["loc"])
            raise ValueError(f"{where + ': ' if where else ''}{error_msg(first)}") from None
        return self

    @model_validator(mode="after")
    def _search_paths(self) -> StudySpec:
        for path, param in self.search.items():
            for value in param.bounds():
                self._check_value(f"search.{path}", path, value)
            if self.sampler.name == "grid" and param.type == "float" and param.step is None:
                raise ValueError(f"search.{path}: the grid sampler needs a step for floats")
        return self

    @model_validator(mode="after")
    def _design(self) -> StudySpec:
        design = self.design
        if _design_kind(design.kind).sampled:
            if design.components:
                raise ValueError(f"design.components: only for {_kinds(sampled=False)} designs")
            return self
        if self.search:
            raise ValueError(f"search: a {design.kind} design runs fixed configurations; "
                             "remove search or use design.kind: search")
        self._check_values("design.baseline", design.baseline)
        for component in design.components:
            # a component's values are applied together, over the baseline
            self._check_values(f"design.components.{component.name}",
                               {**design.baseline, **component.set}, list(component.set))
        return self

    @model_validator(mode="after")
    def _seeds(self) -> StudySpec:
        last = self.seed + self.design.max_repeats - 1
        if last > MAX_SEED:
            raise ValueError(f"seed: repeats use seeds {self.seed}..{last}, beyond {MAX_SEED} "
                             "(the largest seed numpy takes); use a smaller seed")
        return self

    @model_validator(mode="after")
    def _objectives(self) -> StudySpec:
        if not self.objectives:
            return self
        if len(self.objectives) > 1 and self.pruner.name != "none":
            raise ValueError("pruner: Optuna cannot prune multi-objective studies; use none")
        if not self.objectives[0].metric.startswith("val_"):
            raise ValueError("objectives[0] must be a val_ metric (it picks the best epoch)")
        return self

    def _check_value(self, where: str, path: str, value: Any) -> None:
        """Raise ValueError unless setting ``path`` to ``value`` gives a valid run config."""
        self._check_values(where, {path: value})

    def _check_values(
        self, where: str, values: Mapping[str, Any], shown: list[str] | None = None
    ) -> None:
        """Raise ValueError unless setting all ``values`` (dotted path -> value) together gives
        a valid run config; ``shown``: the paths the message names (default: all)."""
        for path in values:
            if not self.settable(path):
                raise ValueError(f"{where}: '{path}' is not a config value that can be set")
        try:
            self.resolve(values)
        except ValidationError as err:
            first = err.errors()[0]
            named = ", ".join(f"{p}={values[p]!r}" for p in (shown or list(values)))
            raise ValueError(
                f"{where}: {named} gives an invalid config: "
                f"{error_loc(first['loc'])}: {error_msg(first)}".replace(": : ", ": ")
            ) from None

    def settable(self, path: str) -> bool:
        """Whether a search or a design may set ``path``: a value of the run config (not
        ``device``, which belongs to the machine) inside no section the spec leaves unset
        (``data.synthetic`` of a folder data set, ``data.max_images`` when absent)."""
        if path == "device" or not addressable(RunConfig, path):
            return False
        full = self.model_dump(mode="json", include=set(RunConfig.model_fields))
        keys = path.split(".")
        return all(get_dotted(full, ".".join(keys[:depth])) is not None
                   for depth in range(1, len(keys)))

    @property
    def source(self) -> str:
        """The file (or stored study) this spec was read from, as messages name it."""
        return self._source

    def model_variants(self) -> list[tuple[str, dict[str, Any]]]:
        """``(where, values)`` for every model a trial may build: the spec's own, each
        searched ``model.*`` value (every choice or extreme), each design configuration that
        sets ``model.*``."""
        variants: list[tuple[str, dict[str, Any]]] = [("model", {})]
        for path, param in self.search.items():
            if path.startswith("model."):
                variants += [(f"search.{path}", {path: value}) for value in param.bounds()]
        sets = [("design.baseline", self.design.baseline)] + [
            (f"design.components.{c.name}", {**self.design.baseline, **c.set})
            for c in self.design.components
        ]
        variants += [(where, values) for where, values in sets
                     if any(path.startswith("model.") for path in values)]
        return variants

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def directions(self) -> list[str]:
        """Optuna directions, one per objective."""
        return [o.direction for o in self.objectives] or [self.objective.direction]

    @property
    def path(self) -> str | None:
        """The absolute path of the spec file (None for a study's stored copy)."""
        return self._path

    def search_space(self) -> dict[str, dict[str, Any]]:
        """The whole search space: ``{path: {type, low, high, log, step, choices}}`` (keys
        that do not apply to a type are left out)."""
        return {path: param.model_dump(mode="json", exclude_none=True)
                for path, param in self.search.items()}

    def written(self) -> dict[str, Any]:
        """The spec as written (after --profile and --set): only the values given, no
        defaults, presets not filled in. What a study stores; loading it gives this spec."""
        return self.model_dump(mode="json", exclude_unset=True)

    def run_dict(self) -> dict[str, Any]:
        """The run-config part of the spec as written (see :meth:`written`)."""
        return {k: v for k, v in self.written().items() if k in RunConfig.model_fields}

    def resolve(self, *layers: Mapping[str, Any]) -> RunConfig:
        """The run config of one run: this spec with each layer's ``{dotted path: value}``
        written over it in order (a design's values, then sampled ones, then e.g. the seed),
        presets filled in where nothing was given (:mod:`ablate.spec.precedence`)."""
        for layer in layers:
            for path in layer:
                if not addressable(RunConfig, path):
                    raise KeyError(path)
        config = RunConfig.model_validate(resolve_data(self.run_dict(), layers))
        # the split shares that apply are held explicitly, so the logged config shows them
        ratios = config.data.carve_ratios or None
        return config.model_copy(
            update={"data": config.data.model_copy(update={"split_ratios": ratios})})
