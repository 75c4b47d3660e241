"""The ``data`` section of a spec: where the data set is, how it is split and how its files
are read (every key with its default and meaning: docs/spec.md; the narrative: docs/data.md)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import (
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    field_validator,
    model_validator,
)

from ablate.naming import SPLITS, slug
from ablate.spec.base import Seed, Split, _Strict

Colour = tuple[int, int, int]


class SplitDir(_Strict):
    images: str
    """The split's image folder (relative to `root`)."""
    masks: str | None = None
    """The split's mask folder; required: a split is scored against its masks (null only to
    say so clearly)."""


class SyntheticSpec(_Strict):
    """Shapes on noise, generated deterministically from ``seed``."""

    num_images: int = Field(32, ge=3)
    """Images generated."""
    channels: PositiveInt = 3
    """Their bands."""
    size: int = Field(64, ge=16)
    """Their side, in pixels."""
    seed: Seed = 0
    """The seed they are drawn from."""


class DerivedChannels(_Strict):
    """Input channels computed from the RGB bands, each min-max normalised to [0, 1]."""

    exg: bool = False
    """Add excess green, 2G - R - B, as an input channel."""
    exr: bool = False
    """Add excess red, 1.4R - G."""
    sobel: bool = False
    """Add the Sobel gradient magnitude of the grey image."""

    @property
    def names(self) -> list[str]:
        return [name for name in ("exg", "exr", "sobel") if getattr(self, name)]


def parse_colour(value: Any) -> Colour:
    """``[R, G, B]`` (0..255 each), ``"R,G,B"`` or ``"#rrggbb"`` -> (R, G, B); ValueError
    otherwise."""
    if isinstance(value, list | tuple):
        parts = [str(v).strip() for v in value]
    else:
        text = str(value).strip()
        if re.fullmatch(r"#[0-9a-fA-F]{6}", text):
            return int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16)
        parts = [p.strip() for p in text.split(",")]
    if len(parts) == 3 and all(p.isdigit() and int(p) <= 255 for p in parts):
        return int(parts[0]), int(parts[1]), int(parts[2])
    raise ValueError(f"mask_colors: {value!r} is not a colour; write [R, G, B] (0..255 each, "
                     "e.g. [0, 255, 0]), \"0,255,0\" or \"#00ff00\"")


class DataSpec(_Strict):
    task: Literal["binary", "multiclass"] = "binary"
    """`binary` (one logit; class 1 is the positive class) or `multiclass`."""
    num_classes: int = Field(2, ge=2)
    """Classes; required for `multiclass` (2 for `binary`)."""
    class_names: list[str] | None = None
    """One name per class (metric keys use them: `iou_road`); unset: `background` /
    `foreground`, or `class_<i>`."""
    root: str | None = None
    """The data set's folder, relative to the spec file; every other path is relative to it."""
    images: str | None = None
    """The train source's image folder (with `masks`; or `split_dirs.train`)."""
    masks: str | None = None
    """The train source's mask folder."""
    image_suffix: str = ""
    """The ending of image file names after the sample name (`_image` for `001_image.png`):
    an image and a mask pair when their names, without extension and ending, are equal."""
    mask_suffix: str = ""
    """The ending of mask file names after the sample name (`_annotation` for
    `001_annotation.png`)."""
    split_dirs: dict[Split, SplitDir] | None = None
    """Splits with folders of their own: `{train|val|test: {images, masks}}`."""
    split_lists: dict[Split, str] | None = None
    """Splits named by a list file: `{train|val|test: file}`, a text file of sample names, or
    a YAML/JSON file mapping split -> names (numbers match zero-padded names: 2 names `002`)."""
    split_overlap: Literal["error", "drop", "train", "val", "test"] = "error"
    """A sample that two split lists both name: an error, or (with a warning) dropped from
    every split (`drop`), or kept in the split named here only."""
    split_ratios: dict[Split, NonNegativeFloat] | None = None
    """`{train|val|test: fraction}` carved out of the train source for the splits without a
    folder or list; train keeps the rest unless it has its own share. Unset: {train: 0.7,
    val: 0.15, test: 0.15} when the train source is the only source, else {val: 0.15} when val
    has no folder or list."""
    split_seed: Seed = 0
    """The seed of the random carving."""
    carve: Literal["random", "blocks"] = "random"
    """How `split_ratios` carve: `random` (a seeded shuffle, of groups with `group_pattern`)
    or `blocks` (contiguous blocks in name order, train then val then test: ordered data such
    as stacks and videos)."""
    carve_gap: NonNegativeInt = 0
    """`blocks`: samples (groups) left out between two blocks, so that no carved sample has a
    train neighbour."""
    group_pattern: str | None = None
    """A regular expression; samples whose names give the same match (its first group) are
    carved into the same split."""
    synthetic: SyntheticSpec | None = None
    """Shapes on noise instead of a folder (split by `split_ratios`)."""
    mask_map: dict[int, int] = Field(default_factory=dict)
    """`{stored value: class}` (or `ignore_index`) for label-map masks: `{255: 1}`,
    `{0: 1, 255: 0}`."""
    mask_colors: dict[int, list[Colour]] | None = None
    """Colour-coded masks: `{class: [R, G, B]}` (or a list of colours per class; several
    colours may mean one class; `ignore_index` as a class)."""
    mask_threshold: PositiveFloat | None = None
    """Binary: stored mask values >= it are class 1, the others 0 (soft masks)."""
    mask_channel: NonNegativeInt | None = None
    """The channel of a multi-channel mask that holds the labels (0-based, alpha counted);
    unset: all colour channels must agree (alpha ignored)."""
    mask_fit: Literal["error", "crop", "resize"] = "error"
    """A mask of another size than its image: an error, or (with a warning naming the file)
    cut at the bottom/right to the image's size, missing pixels `ignore_index` (`crop`), or
    resized to it by nearest neighbour (`resize`)."""
    ignore_index: int | None = None
    """The label of pixels that no loss or metric counts (void, no-data, padding)."""
    channels: int | None = Field(None, ge=1, le=16)
    """Image bands given to the model (alpha counted when kept); unset: follow the data. Grey
    and RGB are converted into each other (repetition / ITU-R 601-2 luma)."""
    keep_alpha: bool = False
    """Keep an alpha band as the last input channel (else it is dropped)."""
    resize: Literal["auto", "area", "cubic", "linear", "nearest"] = "auto"
    """Image interpolation of every resize: `auto` (area, anti-aliased, when a side shrinks;
    cubic when it grows), `area`, `cubic`, `linear`, `nearest`; masks always nearest."""
    size: tuple[PositiveInt, PositiveInt] | None = None
    """`[H, W]` every image is resized to (the model's input size)."""
    crop: tuple[PositiveInt, PositiveInt] | None = None
    """`[h, w]`: a random crop of the train images."""
    normalize: Literal["train", "none"] = "train"
    """`train`: per-channel mean/std of the train split (no-data excluded); or `none`."""
    derived: DerivedChannels = Field(default_factory=DerivedChannels)
    """Extra input channels computed from the RGB bands."""
    palette: list[tuple[int, int, int]] | None = None
    """`[[R, G, B], ...]` per class, for the colourised predictions of `ablate predict`."""
    nodata: float | None = None
    """Pixels whose bands all equal it are ignored by the loss and the metrics (needs
    `ignore_index`)."""
    drop_empty: bool = False
    """Drop the samples whose mask is all background, from every split (after the split)."""
    upscale: float = Field(1.0, gt=0, le=8)
    """Scale factor at load time (images by `resize`, masks nearest), before `size` and
    `crop`: with `size` set the model input is still `size`, so it matters when size is
    unset, or for crops."""
    max_images: dict[Split, PositiveInt] | None = None
    """`{split: n}`: only the first n samples of each split, after the split is made (smoke
    runs)."""
    batch_size: PositiveInt = 4
    """The train batch size."""
    eval_batch_size: PositiveInt | None = None
    """The val/test batch size (unset: `batch_size`)."""
    drop_last: bool = True
    """Drop each epoch's last partial train batch (a batch of one breaks batch norm in some
    architectures); val and test always keep every sample."""
    num_workers: NonNegativeInt | Literal["auto"] = "auto"
    """Data loader worker processes; `auto`: none on the CPU, on CUDA the cores of this
    worker less one (at most 8)."""

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

    @field_validator("mask_colors", mode="before")
    @classmethod
    def _colours(cls, value: Any) -> Any:
        # Every class gets a list of (R, G, B); a colour may belong to one class only.
        if not isinstance(value, Mapping):
            return value
        out: dict[Any, list[Colour]] = {}
        seen: dict[Colour, Any] = {}
        for target, given in value.items():
            single = not isinstance(given, list | tuple) or (
                len(given) == 3 and all(isinstance(v, int) for v in given))
            colours = [parse_colour(c) for c in ([given] if single else given)]
            for colour in colours:
                if colour in seen:
                    raise ValueError(f"mask_colors: the colour {list(colour)} is given for "
                                     f"{seen[colour]} and {target}; a colour is one class")
                seen[colour] = target
            out[target] = colours
        return out

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
        if self.mask_colors is not None:
            self._check_colours(self.mask_colors)

    def _check_colours(self, colours: dict[int, list[Colour]]) -> None:
        if not colours:
            raise ValueError("mask_colors is empty; give each class its mask colour, e.g. "
                             "{0: [0, 0, 0], 1: [0, 255, 0]}")
        others = [k for k in ("mask_map", "mask_threshold", "mask_channel") if getattr(self, k)
                  not in (None, {})]
        if others:
            raise ValueError(f"mask_colors reads colour-coded masks, {', '.join(others)} read "
                             "label values; keep one way of reading the masks")
        for target in colours:
            if target != self.ignore_index and not 0 <= target < self.num_classes:
                raise ValueError(
                    f"mask_colors gives colours to {target}, which is neither a class "
                    f"(0..{self.num_classes - 1}) nor ignore_index"
                )

    @property
    def colour_classes(self) -> dict[Colour, int]:
        """``mask_colors`` as {(R, G, B): class id} (empty: masks are label maps)."""
        return {colour: target for target, colours in (self.mask_colors or {}).items()
                for colour in colours}

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
        for name, folder in dirs.items():
            if folder.masks is None:
                raise ValueError(
                    f"split_dirs.{name} has images ({folder.images}) but no masks: every split "
                    "is scored against its masks, so images without masks cannot be a split. "
                    f"Leave them out (e.g. carve {name} from the train source with "
                    f"split_ratios: {{{name}: 0.15}}) or give split_dirs.{name}.masks"
                )
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
        for key, changed in (("group_pattern", self.group_pattern is not None),
                             ("carve: blocks", self.carve != "random"),
                             ("carve_gap", self.carve_gap > 0)):
            if changed and not carved:
                raise ValueError(
                    f"{key} only applies to splits carved by split_ratios, and none is; "
                    "remove it"
                )
        if self.carve_gap and self.carve != "blocks":
            raise ValueError("carve_gap leaves samples out between contiguous blocks; it needs "
                             "carve: blocks")
        if self.split_overlap in SPLITS and self.split_overlap not in lists:
            raise ValueError(
                f"split_overlap: {self.split_overlap} keeps a sample two lists name in the "
                f"{self.split_overlap} split, which has no list (split_lists.{self.split_overlap})"
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
        """Where each split comes from, as the spec key that gives it (docs/data.md "Splits"):
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
