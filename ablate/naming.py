"""Names the spec, the scores, the tracking and the report share: the splits, and how a class
name appears inside metric keys (``val_iou_<slug>``). Standard library only, so readers (the
report) use them without loading the spec's models."""

from __future__ import annotations

import re

SPLITS = ("train", "val", "test")


def slug(name: str) -> str:
    """A class name as it appears inside metric keys."""
    return re.sub(r"[^A-Za-z0-9]+", "_", name.strip()).strip("_").lower() or "class"
