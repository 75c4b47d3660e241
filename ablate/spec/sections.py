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

    model_config = ConfigDict(extra="allow", validate_assignment=True,
                              use_attribute_docstrings=True)

    arch: str = "Unet"
    """The segmentation_models_pytorch architecture: Unet, UnetPlusPlus, FPN, DeepLabV3Plus,
    Segformer, ... (any other key of this section is passed to it: `decoder_channels`, ...)."""
    encoder: str = "resnet18"
    """The smp encoder (`tu-*` for timm encoders)."""
    encoder_weights: str | None = None
    """Pretrained encoder weights: null, or a local weights file (`.pth`, `.pt`, `.bin`,
    `.safetensors`; nothing is downloaded); extra input channels start from the mean of the
    first filters."""
    custom: str | None = Field(None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    """Your own model instead of an smp one: `package.module:ClassName`, imported (never
    evaluated) and built with `in_channels=`, `classes=` and the other keys of this section;
    in a spec built in memory, the class (or a function returning the model) itself."""
    init_from: str | None = None
    """Start from earlier weights: an MLflow run id (its `model.pt`) or a checkpoint path."""

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
    """Weight of the positive-class pixels in the binary cross-entropy."""
    neg_weight: PositiveFloat = 1.0
    """Weight of the negative-class pixels in the binary cross-entropy."""


class CESpec(_Strict):
    class_weights: list[NonNegativeFloat] | Literal["inverse", "inverse_sqrt"] | None = None
    """Per-class weights of the cross-entropy: one per class, or `inverse` / `inverse_sqrt`
    of the train split's pixel frequencies (normalised to sum to the class count); null:
    unweighted."""


class FocalSpec(_Strict):
    alpha: float | None = Field(None, ge=0, le=1)
    """Weight of the positive class in the focal loss (null: none)."""
    gamma: NonNegativeFloat = 2.0
    """Focusing exponent: how much easy pixels are down-weighted."""


class JaccardSpec(_Strict):
    pos_weight: NonNegativeFloat = 1.0
    """Binary: weight of the positive class's Jaccard term."""
    neg_weight: NonNegativeFloat = 0.0
    """Binary: weight of the negative (background) class's Jaccard term."""


class TverskySpec(_Strict):
    alpha: NonNegativeFloat = 0.5
    """Weight of the false positives."""
    beta: NonNegativeFloat = 0.5
    """Weight of the false negatives."""
    gamma: PositiveFloat = 1.0
    """Focal exponent of the Tversky loss (1: plain Tversky)."""


class LossSpec(_Strict):
    weights: dict[LossTerm, NonNegativeFloat] = Field(default_factory=dict)
    """The loss: `{term: weight}`, a weighted sum of `bce` (binary), `ce` (multiclass),
    `dice`, `jaccard`, `focal`, `lovasz`, `tversky`; nothing written and no preset: the
    cross-entropy term alone."""
    preset: Literal["ce", "focal", "dice", "combined"] | None = None
    """A named mix, searchable as one categorical; it gives the weight of each of its terms
    that nothing writes (`ce` is bce on binary tasks; `combined`: cross-entropy + dice, half
    each)."""
    bce: BCESpec = Field(default_factory=BCESpec)
    """Options of the `bce` term."""
    ce: CESpec = Field(default_factory=CESpec)
    """Options of the `ce` term."""
    focal: FocalSpec = Field(default_factory=FocalSpec)
    """Options of the `focal` term."""
    jaccard: JaccardSpec = Field(default_factory=JaccardSpec)
    """Options of the `jaccard` term."""
    tversky: TverskySpec = Field(default_factory=TverskySpec)
    """Options of the `tversky` term."""


# -------------------------------------------------------------------------------- augmentation


class AugmentSpec(_Strict):
    """Train-split augmentations, each a toggle; ``p`` is the probability of each one."""

    hflip: bool = False
    """Horizontal flip."""
    vflip: bool = False
    """Vertical flip."""
    rot90: bool = False
    """Rotation by a random multiple of 90 degrees."""
    shift_scale_rotate: bool = False
    """Small random shift, scale and rotation (an affine transform)."""
    color_jitter: bool = False
    """Random brightness, contrast, saturation and hue (brightness and contrast alone unless
    the images are RGB; images only)."""
    blur: bool = False
    """Gaussian blur (images only)."""
    gauss_noise: bool = False
    """Additive Gaussian noise (images only)."""
    random_resized_crop: bool = False
    """A random crop resized back to the input size."""
    p: float = Field(0.5, ge=0, le=1)
    """The probability with which each switched-on augmentation is applied."""
    cutmix: bool = False
    """CutMix on training batches: a box of another image (and its mask) pasted in."""
    cutmix_p: float = Field(0.5, ge=0, le=1)
    """The probability of CutMix per batch."""
    preset: Literal["none", "light", "strong"] = "none"
    """A named set of toggles (light: the flips; strong: also rot90, shift_scale_rotate,
    color_jitter, blur): each one that the spec, a design or a search does not write is
    switched on."""


# -------------------------------------------------------------------------------- optimisation


class OptimSpec(_Strict):
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    """The torch optimizer."""
    lr: PositiveFloat = 1e-3
    """The learning rate."""
    weight_decay: NonNegativeFloat = 0.0
    """Weight decay (L2 penalty; decoupled with adamw)."""
    momentum: float = Field(0.9, ge=0, lt=1)
    """SGD's momentum."""
    epochs: PositiveInt = 10
    """Epochs to train (fewer with early stopping or pruning)."""
    scheduler: Literal["none", "cosine", "step", "plateau", "cosine_restarts"] = "none"
    """The learning-rate schedule after the warm-up: cosine annealing to 0, a step decay,
    a reduction when the objective plateaus, or cosine annealing with warm restarts."""
    warmup_epochs: NonNegativeInt = 0
    """Epochs of linear warm-up of the learning rate before the schedule."""
    step_size: PositiveInt = 10
    """`step`: epochs between two decays."""
    gamma: PositiveFloat = 0.1
    """`step`: the factor of each decay."""
    plateau_patience: NonNegativeInt = 3
    """`plateau`: epochs without improvement of the objective before a reduction."""
    plateau_factor: float = Field(0.5, gt=0, lt=1)
    """`plateau`: the factor of each reduction."""
    restart_epochs: PositiveInt = 10
    """`cosine_restarts`: epochs of the first cycle."""
    restart_mult: PositiveInt = 1
    """`cosine_restarts`: each cycle is this many times longer than the one before."""
    grad_accum: PositiveInt = 1
    """Batches whose gradients are summed before each optimizer step."""
    grad_clip: PositiveFloat | None = None
    """Clip the gradients' global norm to this (null: no clipping)."""
    divergence_factor: float | None = Field(1e6, gt=1)
    """A training loss above this x the first step's loss (at least 1) fails the trial as
    diverged, like a non-finite loss; null turns the check off."""
    amp: bool = True
    """Mixed precision on CUDA (elsewhere the run logs it as false)."""
    channels_last: bool = True
    """The channels-last memory format on CUDA (elsewhere the run logs it as false)."""
    early_stopping_patience: PositiveInt | None = None
    """Stop after this many epochs without an improvement of the objective (null: never)."""
    early_stopping_min_delta: NonNegativeFloat = 0.0
    """The least change of the objective that counts as an improvement."""
    encoder_lr_mult: PositiveFloat = 1.0
    """The encoder learns at lr x this (parameter groups); 1 = one group."""
    freeze_encoder_epochs: NonNegativeInt = 0
    """Epochs the encoder stays frozen before it is unfrozen in stages, deepest first."""
    unfreeze_stages: PositiveInt = 1
    """The stages the encoder is unfrozen in."""
    unfreeze_every: PositiveInt = 1
    """Epochs between two unfrozen stages."""
    ema: bool = False
    """Keep an exponential moving average of the weights and evaluate it instead of the raw
    weights."""
    ema_decay: float = Field(0.99, gt=0, lt=1)
    """The moving average's decay per step."""


class EvalSpec(_Strict):
    threshold: float = Field(0.5, gt=0, lt=1)
    """Binary: the probability above which a pixel is predicted positive."""
    thresholds: list[float] = Field(default_factory=lambda: [0.25, 0.5, 0.75])
    """Binary: confusion counts are also tracked at these thresholds (the report's scan)."""
    gallery: NonNegativeInt = 4
    """Validation images in each run's gallery PNG (image, ground truth, prediction)."""
    tta_flip: bool = False
    """Average the logits of each image and of its horizontal flip."""
    full_resolution: bool = True
    """Final per-split metrics at each image's original size (the predicted label map resized
    back with nearest neighbour, as `ablate predict` writes it); false: at the model's input
    size (`data.size`), like the epoch curves."""
    save_weights: Literal["best", "all", "none"] = "best"
    """The evaluated weights as `model.pt`: `best` keeps those of the run representing each
    configuration (what predict and init_from need), `all` every run's, `none` none."""
    latency_repeats: NonNegativeInt = 10
    """Timed batch-1 forward passes of the latency figure; 0 skips it."""

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
    """What the study optimises, read on the validation split: a `val_` metric (`val_iou`,
    `val_miou`, `val_f1`, `val_loss`, `val_iou_<class>`, ...); a further objective of a
    multi-objective study may be a model figure (gflops, params, latency_ms, model_size_mb)."""
    direction: Literal["maximize", "minimize"] = "maximize"
    """Whether higher (`maximize`, or `max`) or lower (`minimize`, `min`) is better."""

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
