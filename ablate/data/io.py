"""Decoding image and mask files, with a per-process cache of the decoded arrays."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import tifffile
from PIL import Image

from ablate.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
TIFF_EXTENSIONS = (".tif", ".tiff")
MAX_CHANNELS = 16
# PIL modes whose last band is alpha (P/PA with transparency are converted to RGBA first).
ALPHA_MODES = ("LA", "La", "RGBA", "RGBa")


@dataclass(frozen=True)
class Decoded:
    """A decoded image: (H, W, C) pixels, and whether the last band is an alpha channel.

    Alpha is recognised in PNG/BMP/... files by their mode (LA, RGBA, palette with
    transparency); TIFF bands are all data bands (multi-band rasters often carry an
    ``ExtraSamples`` tag that calls a fourth band alpha when it is not).
    """

    pixels: np.ndarray
    alpha: bool = False

    @property
    def colour_bands(self) -> int:
        """Bands without the alpha channel."""
        return int(self.pixels.shape[2]) - int(self.alpha)


T = TypeVar("T", Decoded, np.ndarray)

# (kind, path, option) -> (mtime_ns, file size, decoded). Trials in one process share it, so
# files are decoded once per process, not once per trial or epoch.
_CACHE: dict[tuple[str, str, int | None], tuple[int, int, Decoded | np.ndarray]] = {}
# path -> (mtime_ns, file size, SHA-256 of the bytes): each file is hashed once per process,
# when it is decoded (the data fingerprint, ablate.data.fingerprint).
_DIGESTS: dict[str, tuple[int, int, str]] = {}


def clear_cache() -> None:
    """Forget every decoded file."""
    _CACHE.clear()
    _DIGESTS.clear()


def file_digest(path: Path) -> str:
    """SHA-256 (hex) of the file's bytes, computed at most once per process and file version."""
    stat = os.stat(path)
    hit = _DIGESTS.get(str(path))
    if hit is not None and hit[:2] == (stat.st_mtime_ns, stat.st_size):
        return hit[2]
    with open(path, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    _DIGESTS[str(path)] = (stat.st_mtime_ns, stat.st_size, digest)
    return digest


def read_image(path: Path) -> Decoded:
    """The image at ``path`` (read-only pixels), decoded at most once per process."""
    return _cached(("image", str(path), None), path, decode_image)


def read_mask(path: Path, channel: int | None = None) -> np.ndarray:
    """The mask at ``path`` as a read-only (H, W) array (``channel``: see :func:`decode_mask`),
    decoded at most once per process."""
    return _cached(("mask", str(path), channel), path, lambda p: decode_mask(p, channel))


def read_colour_mask(path: Path) -> np.ndarray:
    """The colour-coded mask at ``path`` as a read-only (H, W) uint32 array of colour codes
    (:func:`colour_code`), decoded at most once per process."""
    return _cached(("colours", str(path), None), path, decode_colour_mask)


def colour_code(red: int, green: int, blue: int) -> int:
    """One integer per RGB colour: R * 65536 + G * 256 + B."""
    return (red << 16) | (green << 8) | blue


def _cached(key: tuple[str, str, int | None], path: Path, decode: Callable[[Path], T]) -> T:
    try:
        stat = os.stat(path)
    except OSError as err:
        raise DataError(f"{path}: cannot read the file ({err.strerror})") from None
    hit = _CACHE.get(key)
    if hit is not None and hit[:2] == (stat.st_mtime_ns, stat.st_size):
        return hit[2]  # type: ignore[return-value]
    value = decode(path)
    # Samples share the cached array; read-only so that no caller can corrupt it for others.
    (value.pixels if isinstance(value, Decoded) else value).flags.writeable = False
    _CACHE[key] = (stat.st_mtime_ns, stat.st_size, value)
    file_digest(path)  # the bytes were just read: hashing them now costs one read from cache
    return value


def decode_image(path: Path) -> Decoded:
    """Decode an image file to (H, W, C) uint8, uint16 or float32 pixels."""
    array, alpha = _decode(path, "image")
    if array.ndim == 2:
        array = array[:, :, None]
    elif array.ndim == 3 and array.shape[0] <= MAX_CHANNELS and int(np.argmin(array.shape)) == 0:
        # tifffile returns planar (C, H, W) stacks as stored; bands are the small leading axis.
        array = np.moveaxis(array, 0, -1)
    if array.ndim != 3 or array.shape[2] > MAX_CHANNELS:
        raise DataError(
            f"{path}: image has shape {array.shape}, expected (H, W) or (H, W, C) with at most "
            f"{MAX_CHANNELS} channels; convert it or remove it"
        )
    if array.dtype.kind in "fc" and not np.all(np.isfinite(array)):
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        raise DataError(
            f"{path}: {bad} pixel value(s) are NaN or infinite; replace them (e.g. with a "
            "no-data value declared as data.nodata) or remove the image"
        )
    return Decoded(np.ascontiguousarray(_image_dtype(array)), alpha)


def decode_mask(path: Path, channel: int | None = None) -> np.ndarray:
    """Decode a mask file to a (H, W) array: integer labels (uint8/uint16 kept as stored), or
    float32 when the file holds non-integer values (soft masks, for ``data.mask_threshold``).

    A multi-channel mask is read from ``channel`` (0-based, alpha counted); with ``channel``
    None its colour channels must all be equal (alpha ignored) and any one of them is read.
    """
    array, _ = _decode(path, "mask")
    if array.ndim == 3:
        array = _mask_plane(path, array, channel)
    elif channel not in (None, 0):
        raise DataError(
            f"{path}: mask has a single channel, so data.mask_channel {channel} does not exist; "
            "set data.mask_channel: 0 or remove it"
        )
    if array.ndim != 2:
        raise DataError(
            f"{path}: mask has shape {array.shape}, expected a 2-D label map (H, W); convert it "
            "to one class id per pixel or remove it"
        )
    if array.dtype == bool:
        array = array.astype(np.uint8)
    elif array.dtype.kind == "f":
        if not np.all(np.isfinite(array)):
            raise DataError(f"{path}: mask has NaN or infinite values; masks must be label maps")
        if not np.all(array == np.round(array)):
            return np.ascontiguousarray(array, dtype=np.float32)  # soft: thresholded later
        array = array.astype(np.int64)
    if array.dtype.kind in "iu" and array.dtype.itemsize > 2 and array.size:
        lo, hi = int(array.min()), int(array.max())
        if 0 <= lo and hi <= np.iinfo(np.uint16).max:  # keep the cache compact
            array = array.astype(np.uint8 if hi <= 255 else np.uint16)
    return np.ascontiguousarray(array)


def decode_colour_mask(path: Path) -> np.ndarray:
    """Decode a colour-coded mask to (H, W) uint32 colour codes (:func:`colour_code`): RGB as
    stored, a palette mask by its palette's colours, grey as R = G = B; alpha is ignored."""
    array, _ = _decode(path, "colour mask")
    if array.ndim == 3 and array.shape[0] in (3, 4) and array.shape[2] not in (3, 4):
        array = np.moveaxis(array, 0, -1)  # planar TIFF
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] < 3 or array.dtype != np.uint8:
        raise DataError(
            f"{path}: a colour-coded mask (data.mask_colors) must be an 8-bit RGB, palette or "
            f"grey image, not shape {array.shape} {array.dtype}; convert it or use label maps"
        )
    rgb = array[:, :, :3].astype(np.uint32)
    return np.ascontiguousarray((rgb[:, :, 0] << 16) | (rgb[:, :, 1] << 8) | rgb[:, :, 2])


def _mask_plane(path: Path, array: np.ndarray, channel: int | None) -> np.ndarray:
    planes = array if array.shape[-1] <= array.shape[0] else np.moveaxis(array, 0, -1)
    count = planes.shape[-1]
    if channel is not None:
        if channel >= count:
            raise DataError(
                f"{path}: mask has {count} channels (0..{count - 1}), so data.mask_channel "
                f"{channel} does not exist; pick one of them"
            )
        return planes[..., channel]
    if count in (2, 4):  # gray+alpha or RGBA: the alpha plane is not a label
        planes = planes[..., : count - 1]
    if not all(np.array_equal(planes[..., 0], planes[..., i]) for i in range(planes.shape[-1])):
        raise DataError(
            f"{path}: mask is a colour image with {planes.shape[-1]} different channels; set "
            f"data.mask_channel (0..{count - 1}) to read the one that holds the labels, or "
            "convert colour-coded masks to label maps (one class id per pixel)"
        )
    return planes[..., 0]


def _decode(path: Path, kind: str) -> tuple[np.ndarray, bool]:
    """The file's pixels as stored, and whether the last band is alpha (see ``Decoded``)."""
    alpha = False
    try:
        if path.suffix.lower() in TIFF_EXTENSIONS:
            array = np.asarray(tifffile.imread(path)).squeeze()
        else:
            with Image.open(path) as img:
                img.load()
                array, alpha = _pil_array(img, kind)
    except DataError:
        raise
    except Exception as err:  # noqa: BLE001 - a corrupt file can fail in any decoder layer
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(
            f"{path}: cannot read this {kind} file ({reason}); replace or remove it"
        ) from None
    if array.size == 0:
        # tifffile reads some damaged files as an empty array instead of failing.
        raise DataError(f"{path}: cannot read this {kind} file (no pixels); replace or remove it")
    return array, alpha


def _pil_array(img: Image.Image, kind: str) -> tuple[np.ndarray, bool]:
    mode = img.mode
    if kind == "colour mask":
        return np.asarray(img.convert("RGB")), False
    if kind == "mask":
        # Palette masks are read as their indices: the palette is only how they are displayed.
        if mode in ("CMYK", "YCbCr", "LAB", "HSV"):
            img = img.convert("RGB")
        return np.asarray(img), False
    if mode in ("P", "PA"):
        rgba = mode == "PA" or "transparency" in img.info
        img = img.convert("RGBA" if rgba else "RGB")
    elif mode in ("L", "RGB") and "transparency" in img.info:  # a transparent colour key
        img = img.convert(mode + "A")
    elif mode == "1":
        img = img.convert("L")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        img = img.convert("RGB")
    return np.asarray(img), img.mode in ALPHA_MODES


def _image_dtype(array: np.ndarray) -> np.ndarray:
    """Keep uint8/uint16 (compact); other integer types as uint16 if they fit, else float32."""
    if array.dtype in (np.uint8, np.uint16, np.float32):
        return array
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    if array.dtype.kind in "iu" and array.size:
        if int(array.min()) >= 0 and int(array.max()) <= np.iinfo(np.uint16).max:
            return array.astype(np.uint16)
    return array.astype(np.float32)


def unit_scale(dtype: np.dtype) -> float:
    """The value that maps to 1.0 when an image of this dtype is scaled to [0, 1]."""
    if dtype == np.uint8:
        return 255.0
    if dtype == np.uint16:
        return 65535.0
    return 1.0


def to_unit_float(image: np.ndarray) -> np.ndarray:
    """A float32 copy of ``image`` scaled to [0, 1] (uint8 /255, uint16 /65535, float as is)."""
    out = image.astype(np.float32)
    scale = unit_scale(image.dtype)
    if scale != 1.0:
        out *= np.float32(1.0 / scale)
    return out
