"""The albumentations pipeline: resize, train-time crop and the AugmentSpec toggles."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import albumentations as A
import cv2

from ablate.spec import RunConfig

# Augmentation strengths: moderate, fixed values; the toggles and ``p`` are what a study searches.
AFFINE = dict(scale=(0.9, 1.1), translate_percent=(-0.0625, 0.0625), rotate=(-15, 15))
RESIZED_CROP_SCALE = (0.3, 1.0)
NOISE_STD = (0.02, 0.08)  # fraction of the value range; images enter the pipeline in [0, 1]

# Image interpolation per data.resize ("auto": area when a side shrinks, else cubic).
INTERPOLATION = {
    "area": cv2.INTER_AREA,  # the mean over each output pixel's footprint: anti-aliased
    "cubic": cv2.INTER_CUBIC,
    "linear": cv2.INTER_LINEAR,
    "nearest": cv2.INTER_NEAREST_EXACT,
}
# Masks: nearest neighbour at pixel centres, so labels stay labels and line up with the image.
MASK_INTERPOLATION = cv2.INTER_NEAREST_EXACT


def resize_args(mode: str) -> dict[str, object]:
    """``interpolation``, ``mask_interpolation`` and ``area_for_downscale`` for
    albumentations' resizing transforms under ``data.resize`` = ``mode``."""
    if mode == "auto":  # albumentations switches to INTER_AREA when either side shrinks
        return dict(interpolation=cv2.INTER_CUBIC, mask_interpolation=MASK_INTERPOLATION,
                    area_for_downscale="image")
    return dict(interpolation=INTERPOLATION[mode], mask_interpolation=MASK_INTERPOLATION)


def image_interpolation(mode: str, source: tuple[int, int], target: tuple[int, int]) -> int:
    """The cv2 flag ``data.resize`` = ``mode`` uses to resize an image from ``source`` to
    ``target`` (H, W)."""
    if mode == "auto":
        shrinks = target[0] < source[0] or target[1] < source[1]
        return cv2.INTER_AREA if shrinks else cv2.INTER_CUBIC
    return INTERPOLATION[mode]


@dataclass(frozen=True)
class AugmentContext:
    """What an augmentation may depend on: the run's probability ``p``, the border fill of
    geometric transforms, the (H, W) a train sample leaves the pipeline with (None: the images
    keep their own sizes) and the image channels."""

    p: float
    border: dict[str, int]
    out_size: tuple[int, int] | None
    in_channels: int


# Every train-time augmentation by its ``augment.<name>`` toggle, in pipeline order (the order
# of registration). Adding one: a :func:`register`-ed builder here, the toggle in the spec's
# ``AugmentSpec`` and its test. random_resized_crop (it replaces the resize) and cutmix (on
# batches) are applied where they act, not here.
AugmentBuilder = Callable[[AugmentContext], A.BasicTransform]
AUGMENTATIONS: dict[str, AugmentBuilder] = {}


def register(name: str) -> Callable[[AugmentBuilder], AugmentBuilder]:
    """Decorator: register ``build`` as the augmentation toggled by ``augment.<name>``."""

    def add(build: AugmentBuilder) -> AugmentBuilder:
        AUGMENTATIONS[name] = build
        return build

    return add


@register("hflip")
def _hflip(c: AugmentContext) -> A.BasicTransform:
    return A.HorizontalFlip(p=c.p)


@register("vflip")
def _vflip(c: AugmentContext) -> A.BasicTransform:
    return A.VerticalFlip(p=c.p)


@register("rot90")
def _rot90(c: AugmentContext) -> A.BasicTransform:
    if c.out_size is not None and c.out_size[0] == c.out_size[1]:
        return A.RandomRotate90(p=c.p)
    # A quarter turn would change the shape of a non-square sample and break batching.
    return A.Compose([A.HorizontalFlip(p=1), A.VerticalFlip(p=1)], p=c.p)


@register("shift_scale_rotate")
def _shift_scale_rotate(c: AugmentContext) -> A.BasicTransform:
    return A.Affine(**AFFINE, interpolation=cv2.INTER_LINEAR, **c.border, p=c.p)


@register("color_jitter")
def _color_jitter(c: AugmentContext) -> A.BasicTransform:
    if c.in_channels == 3:
        return A.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.05, p=c.p)
    # saturation and hue only exist for RGB
    return A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=c.p)


@register("blur")
def _blur(c: AugmentContext) -> A.BasicTransform:
    return A.GaussianBlur(blur_limit=(3, 5), p=c.p)


@register("gauss_noise")
def _gauss_noise(c: AugmentContext) -> A.BasicTransform:
    return A.GaussNoise(std_range=NOISE_STD, p=c.p)


def build_transforms(
    config: RunConfig,
    train: bool,
    in_channels: int = 3,
    image_size: tuple[int, int] | None = None,
) -> A.Compose:
    """The pipeline for float32 [0, 1] (H, W, C) images and (H, W) integer masks.

    ``image_size`` is the common (H, W) of the images if they share one: random_resized_crop
    crops to data.size, else to it, else to data.crop; rot90 needs to know whether the output is
    square.
    Every split gets data.size; only train gets data.crop and the augmentations switched on
    (:data:`AUGMENTATIONS`, in their order). Every resize interpolates images as data.resize
    says and masks by nearest neighbour.
    """
    data, aug, p = config.data, config.augment, config.augment.p
    fill_mask = data.ignore_index if data.ignore_index is not None else 0
    border = dict(border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=fill_mask)
    steps: list[A.BasicTransform] = []
    target = data.size or image_size or data.crop
    resize = resize_args(data.resize)
    if train and aug.random_resized_crop and target:
        height, width = target
        steps.append(
            A.RandomResizedCrop(size=(height, width), scale=RESIZED_CROP_SCALE, **resize, p=p)
        )
        if data.size:  # the crop fires with probability p; the other times just resize
            steps.insert(0, A.Resize(height, width, **resize))
    elif data.size:
        steps.append(A.Resize(data.size[0], data.size[1], **resize))
    if not train:
        return A.Compose(steps)
    if data.crop:
        height, width = data.crop
        steps.append(A.PadIfNeeded(min_height=height, min_width=width, **border))
        steps.append(A.RandomCrop(height=height, width=width))
    context = AugmentContext(p, border, data.crop or data.size or image_size, in_channels)
    steps += [build(context) for name, build in AUGMENTATIONS.items() if getattr(aug, name)]
    return A.Compose(steps)
