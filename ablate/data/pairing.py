"""Finding image files and pairing each with its mask by file stem."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ablate.data.io import IMAGE_EXTENSIONS
from ablate.errors import DataError


@dataclass(frozen=True)
class Pair:
    """An image file and its mask file, named by the shared stem."""

    name: str
    image: Path
    mask: Path


def natural_key(text: str) -> list[object]:
    """Sort key that orders ``2`` before ``10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def find_dir(root: Path, rel: str, key: str) -> Path:
    """``root / rel``, or a DataError naming the spec key if it is not a directory."""
    path = root / rel
    if not path.is_dir():
        raise DataError(f"{key}: directory {path} not found; check {key} (relative to data.root)")
    return path


def image_files(folder: Path, key: str) -> dict[str, Path]:
    """Image files directly in ``folder`` by stem; DataError on two files with one stem."""
    found: dict[str, Path] = {}
    for path in folder.iterdir():
        if path.name.startswith(".") or path.suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        if path.is_symlink() and not path.exists():
            raise DataError(
                f"{key}: {path} is a symbolic link to {os.readlink(path)}, which does not "
                "exist; fix or remove the link"
            )
        if not path.is_file():
            continue
        if path.stem in found:
            raise DataError(
                f"{key}: {found[path.stem].name} and {path.name} in {folder} share the name "
                f"'{path.stem}'; images and masks are paired by name, so keep only one"
            )
        found[path.stem] = path
    return found


def pair_files(images_dir: Path, masks_dir: Path, images_key: str, masks_key: str) -> list[Pair]:
    """Every image in ``images_dir`` with its same-stem mask in ``masks_dir``, sorted by name."""
    images = image_files(images_dir, images_key)
    masks = image_files(masks_dir, masks_key)
    exts = "/".join(e.lstrip(".") for e in IMAGE_EXTENSIONS)
    if not images:
        raise DataError(f"{images_key}: no image files ({exts}) in {images_dir}")
    if not masks:
        raise DataError(f"{masks_key}: no mask files ({exts}) in {masks_dir}")
    missing = sorted((s for s in images if s not in masks), key=natural_key)
    if len(missing) == len(images):
        first_mask = masks[min(masks, key=natural_key)]
        raise DataError(
            f"{images_key}/{masks_key}: no image/mask pairs: none of the {len(images)} images in "
            f"{images_dir} has a mask of the same name in {masks_dir} (e.g. image "
            f"{images[missing[0]].name}, mask {first_mask.name}); images and masks are paired by "
            f"file name without extension: rename the masks to their image's name, or point "
            f"{masks_key} at the right folder"
        )
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise DataError(
            f"{images[missing[0]]} has no mask: no {missing[0]}.<{exts}> in {masks_dir}{more}; "
            f"add the mask or remove the image"
        )
    orphans = sorted((s for s in masks if s not in images), key=natural_key)
    if orphans:
        # Usually a renamed or missing image: skipping its mask would silently drop a sample.
        more = f" (and {len(orphans) - 1} more)" if len(orphans) > 1 else ""
        raise DataError(
            f"{masks[orphans[0]]} has no image: no {orphans[0]}.<{exts}> in {images_dir}{more}; "
            f"add the image or remove the mask"
        )
    return [Pair(s, images[s], masks[s]) for s in sorted(images, key=natural_key)]
