"""The configuration sections of a spec: data (:mod:`ablate.spec.data`), model, loss, augment,
optim, eval, objective."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    field_validator,
)

from ablate.naming import SPLITS, slug
from ablate.spec import objects
from ablate.spec.base import MAX_SEED, Seed, Split, _Strict
from ablate.spec.data import DataSpec, DerivedChannels, SplitDir, SyntheticSpec

__all__ = ["MAX_SEED", "SPLITS", "DataSpec", "DerivedChannels", "Seed", "Split", "SplitDir",
           "SyntheticSpec", "_Strict"]

BINARY_METRICS = ("iou", "f1", "precision", "recall", "specificity", "accuracy", "loss")
MULTICLASS_METRICS = ("miou", "mf1", "accuracy", "loss")
# Model figures a multi-objective study may trade the val metric against.
MODEL_OBJECTIVES = ("gflops", "params", "latency_ms", "model_size_mb")


# --------------------------------------------------------------------------------------- model


class ModelSpec(BaseModel):
    """An smp architecture + encoder; any other key is passed to the architecture."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    arch: str = "Unet"
    encoder: str = "resnet18"
    encoder_weights: str | None = None
    # Your own model instead of an smp one: "package.module:ClassName", imported (never
    # evaluated) and built with in_channels=, classes= and the other keys of this section;
    # in a spec built in memory, the class (or a function returning the model) itself.
    custom: str | None = Field(None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    # Start from earlier weights: an MLflow run id (its model.pt) or a checkpoint path.
    init_from: str | None = None

    @field_validator("custom", mode="before")
    @classmethod
    def _object_to_path(cls, value: Any) -> Any:
        return objects.register(value) if callable(value) else value

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
    # A named mix (searchable as one categorical): ce is bce on binary tasks; combined is
    # cross-entropy + dice, half each. It gives the weight of each of its terms that nothing
    # writes (ablate.spec.precedence); empty weights and no preset: the cross-entropy term alone.
    preset: Literal["ce", "focal", "dice", "combined"] | None = None
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
    # CutMix on training batches: a box of another image (and its mask) pasted in.
    cutmix: bool = False
    cutmix_p: float = Field(0.5, ge=0, le=1)
    # A named set of toggles: each one the spec (or a design, or a search) does not write is
    # switched on when a run's configuration is resolved (ablate.spec.precedence).
    preset: Literal["none", "light", "strong"] = "none"


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
    # A training loss above this x the first step's loss (at least 1) fails the trial as
    # diverged, like a non-finite loss; null turns the check off.
    divergence_factor: float | None = Field(1e6, gt=1)
    amp: bool = True
    channels_last: bool = True
    early_stopping_patience: PositiveInt | None = None
    early_stopping_min_delta: NonNegativeFloat = 0.0
    # The encoder learns at lr x this (parameter groups); 1 = one group.
    encoder_lr_mult: PositiveFloat = 1.0
    # Encoder frozen for the first epochs, then unfrozen in stages (deepest first), one
    # more stage every unfreeze_every epochs.
    freeze_encoder_epochs: NonNegativeInt = 0
    unfreeze_stages: PositiveInt = 1
    unfreeze_every: PositiveInt = 1
    # Exponential moving average of the weights; evaluated instead of the raw weights.
    ema: bool = False
    ema_decay: float = Field(0.99, gt=0, lt=1)


class EvalSpec(_Strict):
    threshold: float = Field(0.5, gt=0, lt=1)
    # binary: confusion counts are also tracked at these thresholds (the report's scan)
    thresholds: list[float] = Field(default_factory=lambda: [0.25, 0.5, 0.75])
    gallery: NonNegativeInt = 4
    tta_flip: bool = False  # average the logits of the image and its horizontal flip
    # Final per-split metrics at each image's original size: the predicted label map is
    # resized back with nearest neighbour (as `ablate predict` writes it) and compared with
    # the original mask. Off: at the model's input size (data.size), like the epoch curves.
    full_resolution: bool = True
    # The evaluated weights as model.pt: ``best`` keeps those of the run representing each
    # configuration (what predict and init_from need), ``all`` every run's, ``none`` none.
    save_weights: Literal["best", "all", "none"] = "best"
    latency_repeats: NonNegativeInt = 10  # timed batch-1 forward passes; 0 skips the figure

    @field_validator("save_weights", mode="before")
    @classmethod
    def _weights_flag(cls, value: Any) -> Any:
        # specs and config.yaml files written when this was a flag: true = all, false = none
        if value is True:
            return "all"
        return "none" if value is False or value is None else value

    @field_validator("thresholds")
    @classmethod
    def _in_unit_interval(cls, values: list[float]) -> list[float]:
        if any(not 0 < v < 1 for v in values):
            raise ValueError("thresholds must lie strictly between 0 and 1")
        return sorted(set(values))


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
        if not value.startswith("val_") and value not in MODEL_OBJECTIVES:
            raise ValueError(
                f"'{value}' is not a val_ metric; the objective is read on the validation split "
                "(test data never drives selection), e.g. val_iou or val_miou"
            )
        return value


def metric_names(data: DataSpec) -> list[str]:
    """Metric names (without split prefix) that a run of this data set reports."""
    if data.task == "binary":
        return list(BINARY_METRICS)
    per_class = [f"iou_{slug(n)}" for n in data.names] + [f"f1_{slug(n)}" for n in data.names]
    return list(MULTICLASS_METRICS) + per_class
