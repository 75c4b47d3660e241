"""The configuration sections of a spec: data, model, loss, augment, optim, eval, objective."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    field_validator,
    model_validator,
)

from ablate.naming import SPLITS, slug

# Seeds must suit every generator they feed (numpy's legacy seeding takes 0..2**32-1).
MAX_SEED = 2**32 - 1
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
Split = Literal["train", "val", "test"]

BINARY_METRICS = ("iou", "f1", "precision", "recall", "specificity", "accuracy", "loss")
MULTICLASS_METRICS = ("miou", "mf1", "accuracy", "loss")
# Model figures a multi-objective study may trade the val metric against.
MODEL_OBJECTIVES = ("gflops", "params", "latency_ms", "model_size_mb")


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
    seed: Seed = 0


class DerivedChannels(_Strict):
    """Input channels computed from the RGB bands, each min-max normalised to [0, 1]."""

    exg: bool = False  # excess green, 2G - R - B
    exr: bool = False  # excess red, 1.4R - G
    sobel: bool = False  # Sobel gradient magnitude of the grey image

    @property
    def names(self) -> list[str]:
        return [name for name in ("exg", "exr", "sobel") if getattr(self, name)]


class DataSpec(_Strict):
    task: Literal["binary", "multiclass"] = "binary"
    num_classes: int = Field(2, ge=2)  # binary: 2; required for multiclass
    class_names: list[str] | None = None
    # Folder data: ``root`` is relative to the spec file; everything else relative to ``root``.
    root: str | None = None
    # The train source (see README "Splits"): images + masks, split_dirs.train or synthetic.
    images: str | None = None
    masks: str | None = None
    split_dirs: dict[Split, SplitDir] | None = None
    split_lists: dict[Split, str] | None = None
    # Fractions of the train source carved into splits that have no folder or list; train
    # keeps the rest unless it has its own share. Unset: a default for the sources given
    # (``carve_ratios``; a run's resolved config holds it explicitly).
    split_ratios: dict[Split, NonNegativeFloat] | None = None
    split_seed: Seed = 0
    group_pattern: str | None = None
    synthetic: SyntheticSpec | None = None
    mask_map: dict[int, int] = Field(default_factory=dict)
    # Binary: stored mask values >= mask_threshold are class 1, the others 0 (soft masks).
    mask_threshold: PositiveFloat | None = None
    # The channel of a multi-channel mask that holds the labels (0-based, alpha counted);
    # None: all colour channels must agree (alpha ignored).
    mask_channel: NonNegativeInt | None = None
    ignore_index: int | None = None
    # Image bands given to the model (alpha included when kept); None: follow the data.
    # Grey <-> RGB are converted (repetition / ITU-R 601-2 luma), alpha is dropped unless kept.
    channels: int | None = Field(None, ge=1, le=16)
    keep_alpha: bool = False
    # Image interpolation of every resize; masks always use nearest neighbour.
    # auto: area (anti-aliased) when a side shrinks, cubic when enlarging.
    resize: Literal["auto", "area", "cubic", "linear", "nearest"] = "auto"
    size: tuple[PositiveInt, PositiveInt] | None = None
    crop: tuple[PositiveInt, PositiveInt] | None = None
    normalize: Literal["train", "none"] = "train"
    derived: DerivedChannels = Field(default_factory=DerivedChannels)
    # RGB colour per class for the colourised predictions of `ablate predict`.
    palette: list[tuple[int, int, int]] | None = None
    # A pixel whose bands all equal ``nodata`` is ignored by the loss and the metrics.
    nodata: float | None = None
    drop_empty: bool = False  # drop images whose mask is all background, from every split
    # Input scale factor (data.resize for images, nearest for masks), applied at load time
    # before data.size and data.crop: with data.size set the model input is still data.size,
    # so it matters when size is unset, or for crops.
    upscale: float = Field(1.0, gt=0, le=8)
    # At most this many images per split, e.g. {train: 12, val: 6} for a smoke run (the first
    # ones of each split, after the split is made).
    max_images: dict[Split, PositiveInt] | None = None
    batch_size: PositiveInt = 4
    eval_batch_size: PositiveInt | None = None
    # Drop the last partial train batch of each epoch (a batch of one breaks batch norm in
    # some architectures); val and test always keep every sample.
    drop_last: bool = True
    # Loader worker processes; auto: none on the CPU, on CUDA the process's cores less one
    # (at most 8; ablate.data.dataset.loader_workers).
    num_workers: NonNegativeInt | Literal["auto"] = "auto"

    @model_validator(mode="before")
    @classmethod
    def _class_count(cls, data: Any) -> Any:
        # A binary task has 2 classes whether or not it says so; multiclass must say how many.
        if isinstance(data, dict) and data.get("num_classes") is None:
            if data.get("task") == "multiclass":
                raise ValueError("num_classes is required for task: multiclass")
            data = {k: v for k, v in data.items() if k != "num_classes"}
        return data

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
            if self.num_classes != 2:
                raise ValueError("a binary task has 2 classes; use task: multiclass for more")
            if self.ignore_index in (0, 1):
                raise ValueError("ignore_index 0 or 1 is a class of a binary task; use e.g. 255")
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise ValueError(
                f"class_names has {len(self.class_names)} names for {self.num_classes} classes"
            )
        by_key: dict[str, str] = {}
        for name in self.class_names or []:
            other = by_key.setdefault(slug(name), name)
            if other != name or (self.class_names or []).count(name) > 1:
                raise ValueError(
                    f"class_names '{other}' and '{name}' give the same metric key "
                    f"iou_{slug(name)}; give every class a distinct name"
                )
        if self.synthetic is None and self.root is None:
            raise ValueError("give either data.root (a folder data set) or data.synthetic")
        self._resolve_splits()
        self._check_masks()
        self._check_channels()
        if self.nodata is not None and self.ignore_index is None:
            raise ValueError("nodata pixels are ignored: set data.ignore_index too (e.g. 255)")
        return self

    def _check_masks(self) -> None:
        for split, mapped in self.mask_map.items():
            if mapped != self.ignore_index and not 0 <= mapped < self.num_classes:
                raise ValueError(
                    f"mask_map sends {split} to {mapped}, which is neither a class "
                    f"(0..{self.num_classes - 1}) nor ignore_index"
                )
        if self.mask_threshold is not None:
            if self.task != "binary":
                raise ValueError(
                    "mask_threshold makes binary masks (values >= T are class 1); for a "
                    "multiclass task map stored values to classes with mask_map"
                )
            if self.mask_map:
                raise ValueError(
                    "mask_threshold and mask_map both map mask values; keep one (mask_threshold "
                    "for soft 0..255 masks, mask_map for a few label values)"
                )

    def _check_channels(self) -> None:
        if self.keep_alpha and self.channels == 1:
            raise ValueError(
                "channels counts the kept alpha band: with keep_alpha: true give 2 (grey + "
                "alpha) or 4 (RGB + alpha)"
            )
        colour = None if self.channels is None else self.channels - int(self.keep_alpha)
        if self.derived.names and colour is not None and colour < 3:
            raise ValueError(
                f"derived: {', '.join(self.derived.names)} need the R, G, B bands but channels "
                f"is {self.channels}{' with keep_alpha' if self.keep_alpha else ''}; set "
                f"channels: {3 + int(self.keep_alpha)} or turn them off"
            )

    # -------------------------------------------------------------------------------- splits

    def _resolve_splits(self) -> None:
        """Check that every split has one source and that the ratios carve what is left."""
        dirs, lists = self.split_dirs or {}, self.split_lists or {}
        self._check_train_source(dirs)
        own = self.own_splits
        for split in own:
            if split in dirs and split in lists:
                raise ValueError(
                    f"the {split} split is given twice, by split_dirs.{split} and "
                    f"split_lists.{split}; keep one"
                )
        ratios = self.carve_ratios
        carved = [s for s in SPLITS if s != "train" and ratios.get(s, 0) > 0]
        for split in carved:
            if split in own:
                given = "split_dirs" if split in dirs else "split_lists"
                raise ValueError(
                    f"the {split} split is given twice, by {given}.{split} and "
                    f"split_ratios.{split}; remove {split} from one of them"
                )
        _check_ratios(ratios, carved)
        if self.group_pattern is not None and not carved:
            raise ValueError(
                "group_pattern only applies to splits carved by split_ratios, and none is; "
                "remove it"
            )
        if "val" not in own and "val" not in carved:
            raise ValueError(
                "no val split (the objective is read on val): carve it from the train source "
                "with split_ratios (e.g. {val: 0.2}), or give split_dirs.val or split_lists.val"
            )

    @property
    def own_splits(self) -> list[str]:
        """The splits other than train that have a folder or a list of their own."""
        dirs, lists = self.split_dirs or {}, self.split_lists or {}
        return [s for s in SPLITS if s != "train" and (s in dirs or s in lists)]

    @property
    def carve_ratios(self) -> dict[str, float]:
        """``split_ratios`` as they apply: when unset, the default for the sources given
        (``_default_ratios``); the field itself keeps what the spec wrote."""
        own = self.own_splits
        given = self.split_ratios
        written = None if given is None else {str(k): v for k, v in given.items()}
        if written == DEFAULT_RATIOS and "val" in own:
            # Specs and run configs saved before ratios could be combined with folders and
            # lists carry this default, which never applied to them: read it as unset.
            written = None
        if written is None:
            written = _default_ratios(own, bool(self.split_lists))
        return dict(written or {})

    def _check_train_source(self, dirs: Mapping[Split, SplitDir]) -> None:
        if self.synthetic is not None:
            given = [k for k in ("images", "masks", "split_dirs", "split_lists")
                     if getattr(self, k) is not None]
            if given:
                raise ValueError(
                    f"synthetic makes its own samples (split by split_ratios); remove "
                    f"{', '.join(given)} or synthetic"
                )
            return
        if (self.images is None) != (self.masks is None):
            raise ValueError("give both images and masks (the folders of the train source)")
        if self.images is not None and "train" in dirs:
            raise ValueError(
                "the train source is given twice, by images/masks and split_dirs.train; "
                "keep one"
            )
        if self.images is None and "train" not in dirs:
            raise ValueError(
                "a folder data set needs a train source: images and masks, or split_dirs.train"
            )

    def split_sources(self) -> dict[str, str]:
        """Where each split comes from, as the spec key that gives it (README "Splits"):
        e.g. ``{"train": "split_dirs.train", "val": "split_ratios.val", "test":
        "split_dirs.test"}``. Train's source is the one the carved splits come out of."""
        dirs, lists = self.split_dirs or {}, self.split_lists or {}
        ratios = self.carve_ratios
        if "train" in lists:
            train = "split_lists.train"
        elif self.synthetic is not None:
            train = "synthetic"
        else:
            train = "split_dirs.train" if "train" in dirs else "images"
        out = {"train": train}
        for split in SPLITS[1:]:
            for key, given in (("split_dirs", dirs), ("split_lists", lists)):
                if split in given:
                    out[split] = f"{key}.{split}"
            if ratios.get(split, 0) > 0:
                out[split] = f"split_ratios.{split}"
        return out

    @property
    def names(self) -> list[str]:
        """Class names, defaulting to background/foreground or class_<i>."""
        if self.class_names:
            return list(self.class_names)
        if self.task == "binary":
            return ["background", "foreground"]
        return [f"class_{i}" for i in range(self.num_classes)]

    @property
    def out_channels(self) -> int:
        """Model output channels: one logit for a binary task, one per class otherwise."""
        return 1 if self.task == "binary" else self.num_classes


# Carved when split_ratios is unset: all three when the train source is the only source,
# else val alone when it has no folder or list of its own.
DEFAULT_RATIOS = {"train": 0.7, "val": 0.15, "test": 0.15}
DEFAULT_VAL_RATIO = 0.15


def _default_ratios(own: Sequence[str], any_list: bool) -> dict[str, float] | None:
    if not own and not any_list:
        return dict(DEFAULT_RATIOS)
    if "val" not in own:
        return {"val": DEFAULT_VAL_RATIO}
    return None


def _check_ratios(ratios: dict[str, float], carved: list[str]) -> None:
    if "train" in ratios and ratios["train"] <= 0:
        raise ValueError(
            "split_ratios.train is 0, which leaves nothing to train on; give it a share above "
            "0, or leave it out (train then keeps the rest)"
        )
    total = sum(ratios.values())
    if total > 1.0 + 1e-6:
        raise ValueError("split_ratios add up to more than 1")
    if "train" not in ratios and total >= 1.0 - 1e-9:
        raise ValueError(
            f"split_ratios give {' + '.join(carved)} all of the train source and leave "
            "nothing for train; keep their sum below 1"
        )
    if ratios and not carved:
        raise ValueError(
            "split_ratios carves no split (every split other than train has its own folder or "
            "list, or a ratio of 0); remove it (train then takes its whole source)"
        )


# --------------------------------------------------------------------------------------- model


class ModelSpec(BaseModel):
    """An smp architecture + encoder; any other key is passed to the architecture."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    arch: str = "Unet"
    encoder: str = "resnet18"
    encoder_weights: str | None = None
    # Your own model instead of an smp one: "package.module:ClassName", imported (never
    # evaluated) and built with in_channels=, classes= and the other keys of this section.
    custom: str | None = Field(None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    # Start from earlier weights: an MLflow run id (its model.pt) or a checkpoint path.
    init_from: str | None = None

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
