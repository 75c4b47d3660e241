"""The albumentations pipeline: resize, train-time crop and the AugmentSpec toggles."""

from __future__ import annotations

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
    Every split gets data.size; only train gets data.crop and the augmentations. Every
    resize interpolates images as data.resize says and masks by nearest neighbour.
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
    if aug.hflip:
        steps.append(A.HorizontalFlip(p=p))
    if aug.vflip:
        steps.append(A.VerticalFlip(p=p))
    if aug.rot90:
        out = data.crop or data.size or image_size
        if out is not None and out[0] == out[1]:
            steps.append(A.RandomRotate90(p=p))
        else:
            # A quarter turn would change the shape of a non-square sample and break batching.
            steps.append(A.Compose([A.HorizontalFlip(p=1), A.VerticalFlip(p=1)], p=p))
    if aug.shift_scale_rotate:
        steps.append(A.Affine(**AFFINE, interpolation=cv2.INTER_LINEAR, **border, p=p))
    if aug.color_jitter:
        if in_channels == 3:
            steps.append(A.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.05, p=p))
        else:  # saturation and hue only exist for RGB
            steps.append(A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=p))
    if aug.blur:
        steps.append(A.GaussianBlur(blur_limit=(3, 5), p=p))
    if aug.gauss_noise:
        steps.append(A.GaussNoise(std_range=NOISE_STD, p=p))
    return A.Compose(steps)
