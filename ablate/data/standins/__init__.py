"""Synthetic stand-in data sets written as files, for trying a workflow without the real data.

Two kinds, each written as ``out_dir/images/*`` + ``out_dir/masks/*.png`` so that the folder
pipeline (decoding, pairing, mask_map, nodata, group split) is exercised end to end:

- ``plants``: RGB 8-bit field images, soil with crop rows and rare weeds; masks with *raw*
  label values (0 soil, 1 crop leaf, 2 crop stem, 3 weed leaf, 4 weed stem) that
  ``mask_map: {1: 1, 2: 1, 3: 2, 4: 2}`` turns into 3 classes (soil, crop, weed).
- ``satellite``: 16-bit 4-band (R, G, B, NIR) GeoTIFF-like tiles with no-data (0) edge
  strips, thin roads and rivers as the positive class (binary masks 0/1), and a site prefix
  in every file name (``siteA_000``) for a group-aware split.

Everything is drawn from ``numpy.random.default_rng([seed, ...])`` with one generator per
image, so the same arguments give byte-identical files. ``make_standin(kind, out_dir,
**kwargs)`` is the entry point; it returns (and writes to ``out_dir/standin.json``) a
description with the label values and a suggested ``data:`` section.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ablate.data.standins.plants import PLANT_CLASSES, PLANT_LABELS, PLANT_MASK_MAP, write_plants
from ablate.data.standins.satellite import write_satellite

KINDS = ("plants", "satellite")
WRITERS: dict[str, Callable[..., dict[str, Any]]] = {
    "plants": write_plants,
    "satellite": write_satellite,
}
__all__ = ["KINDS", "PLANT_CLASSES", "PLANT_LABELS", "PLANT_MASK_MAP", "make_standin",
           "write_plants", "write_satellite"]


def make_standin(kind: str, out_dir: Path | str, **kwargs: Any) -> dict[str, Any]:
    """Write the stand-in data set ``kind`` ("plants" or "satellite") into ``out_dir``.

    ``kwargs`` go to ``write_plants``/``write_satellite`` (``num_images``, ``size``, ``seed``,
    ``overwrite``; satellite also ``sites``). Returns the description dict (``data`` holds a
    suggested ``data:`` spec section with ``root`` set to ``out_dir``).
    Raises ValueError for an unknown kind or bad sizes, FileExistsError for a non-empty folder.
    """
    if kind not in WRITERS:
        raise ValueError(f"unknown stand-in '{kind}'; choose one of {', '.join(KINDS)}")
    return WRITERS[kind](out_dir, **kwargs)
