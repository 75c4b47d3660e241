"""Finding image files and pairing each with its mask by sample name.

A file's sample name is its name without extension and without the folder's suffix
(``data.image_suffix`` / ``data.mask_suffix``): ``001_image.png`` with image suffix ``_image``
and ``001_annotation.png`` with mask suffix ``_annotation`` are both sample ``001``. Only the
last extension is cut, so ``Amazon_1110.tiff_25.tiff`` is sample ``Amazon_1110.tiff_25``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ablate.data.io import IMAGE_EXTENSIONS
from ablate.data.problems import Problems
from ablate.errors import DataError

EXTENSIONS = "/".join(e.lstrip(".") for e in IMAGE_EXTENSIONS)


@dataclass(frozen=True)
class Pair:
    """An image file and its mask file, named by their sample name."""

    name: str
    image: Path
    mask: Path


@dataclass(frozen=True)
class Folder:
    """A folder of images or masks: where it is, the spec key that names it, and the suffix
    its file names carry after the sample name."""

    path: Path
    key: str
    suffix: str = ""
    suffix_key: str = ""


def natural_key(text: str) -> list[object]:
    """Sort key that orders ``2`` before ``10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def find_dir(root: Path, rel: str, key: str) -> Path:
    """``root / rel``, or a DataError naming the spec key if it is not a directory."""
    path = root / rel
    if not path.is_dir():
        raise DataError(f"{key}: directory {path} not found; check {key} (relative to data.root)")
    return path


def image_files(folder: Folder, problems: Problems) -> dict[str, Path]:
    """Image files directly in ``folder``, by sample name; a dangling link, a name without the
    folder's suffix or two files of one name are problems (and left out)."""
    found: dict[str, Path] = {}
    try:
        listed = sorted(folder.path.iterdir(), key=lambda p: natural_key(p.name))
    except OSError as err:
        problems.add(f"{folder.key}: folder {folder.path} cannot be read "
                     f"({err.strerror or err}); check its permissions", "unreadable folders",
                     str(folder.path))
        return found
    for path in listed:
        if path.name.startswith(".") or path.suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        if path.is_symlink() and not path.exists():
            problems.add(f"{folder.key}: {path} is a symbolic link to {os.readlink(path)}, which "
                         "does not exist; fix or remove the link", "dangling links", str(path))
            continue
        if not path.is_file():
            continue
        name = path.stem
        if folder.suffix:
            if not name.endswith(folder.suffix) or name == folder.suffix:
                problems.add(f"{path}: the name does not end with {folder.suffix_key} "
                             f"'{folder.suffix}' (after it comes the extension), so it names no "
                             "sample; rename or remove the file",
                             f"files without {folder.suffix_key}", path.name)
                continue
            name = name[: -len(folder.suffix)]
        if name in found:
            problems.add(f"{folder.key}: {found[name].name} and {path.name} in {folder.path} are "
                         f"both sample '{name}'; images and masks are paired by name, so keep "
                         "only one", "files sharing a sample name", path.name)
            continue
        found[name] = path
    return found


def pair_files(images: Folder, masks: Folder, problems: Problems) -> list[Pair]:
    """Every image of ``images`` with the mask of the same sample name in ``masks``, sorted
    by name. An image without a mask and a mask without an image are problems; a folder
    without images, or no pair at all, raises DataError."""
    if images.path.resolve() == masks.path.resolve() and images.suffix == masks.suffix:
        raise DataError(
            f"{images.key}/{masks.key}: images and masks are both read from {images.path}, so "
            "every image would be its own mask; point the masks key at the masks folder (or "
            "tell the two apart by data.image_suffix / data.mask_suffix)"
        )
    found_images = image_files(images, problems)
    found_masks = image_files(masks, problems)
    if not found_images:
        raise DataError(f"{images.key}: no image files ({EXTENSIONS}) in {images.path}")
    if not found_masks:
        raise DataError(f"{masks.key}: no mask files ({EXTENSIONS}) in {masks.path}")
    missing = [s for s in found_images if s not in found_masks]
    if len(missing) == len(found_images):
        raise DataError(_no_pairs(images, masks, found_images, found_masks))
    for name in missing:
        problems.add(f"{found_images[name]} has no mask: no {_file(name, masks)} in "
                     f"{masks.path}; add the mask or remove the image", "images without a mask",
                     found_images[name].name)
    # Usually a renamed or missing image: skipping its mask would silently drop a sample.
    for name in (s for s in found_masks if s not in found_images):
        problems.add(f"{found_masks[name]} has no image: no {_file(name, images)} in "
                     f"{images.path}; add the image or remove the mask", "masks without an image",
                     found_masks[name].name)
    return [Pair(s, found_images[s], found_masks[s])
            for s in sorted(found_images, key=natural_key) if s in found_masks]


def _file(name: str, folder: Folder) -> str:
    return f"{name}{folder.suffix}.<{EXTENSIONS}>"


def _no_pairs(images: Folder, masks: Folder, found_images: dict[str, Path],
              found_masks: dict[str, Path]) -> str:
    image = found_images[min(found_images, key=natural_key)]
    mask = found_masks[min(found_masks, key=natural_key)]
    head = (f"{images.key}/{masks.key}: no image/mask pairs: none of the {len(found_images)} "
            f"images in {images.path} has a mask of the same sample name in {masks.path} (e.g. "
            f"image {image.name}, mask {mask.name}); ")
    suffixes = _suffixes(image.stem, mask.stem)
    if suffixes is not None and not (images.suffix or masks.suffix):
        return head + (f"if the names differ by their ending, set data.image_suffix: "
                       f"'{suffixes[0]}' and data.mask_suffix: '{suffixes[1]}'")
    return head + (f"images and masks are paired by file name without extension and suffix: "
                   f"rename the masks to their image's name, or point {masks.key} at the "
                   "right folder")


def _suffixes(image: str, mask: str) -> tuple[str, str] | None:
    """The endings after a shared start (``001_image``, ``001_annotation`` -> ``_image``,
    ``_annotation``), cut before a separator; None when the names share no start."""
    shared = os.path.commonprefix([image, mask])
    cut = max(shared.rfind(c) for c in "_-. ") if shared else -1
    if cut <= 0:
        return None
    return image[cut:], mask[cut:]
