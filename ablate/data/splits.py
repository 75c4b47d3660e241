"""Assigning samples to train/val/test: by folder, by list files, or by seeded ratios."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from ablate.data.io import IMAGE_EXTENSIONS
from ablate.data.pairing import Pair, find_dir, natural_key, pair_files
from ablate.errors import DataError
from ablate.spec import SPLITS, SplitDir

T = TypeVar("T")
REQUIRED = ("train", "val")  # the objective is read on val, so a run cannot do without it


def by_dirs(root: Path, split_dirs: dict[str, SplitDir]) -> dict[str, list[Pair]]:
    """Mode (a): each split has its own image and mask folders."""
    _require(split_dirs, "data.split_dirs")
    out: dict[str, list[Pair]] = {}
    for split in SPLITS:
        if split in split_dirs:
            key = f"data.split_dirs.{split}"
            images = find_dir(root, split_dirs[split].images, f"{key}.images")
            masks = find_dir(root, split_dirs[split].masks, f"{key}.masks")
            out[split] = pair_files(images, masks, f"{key}.images", f"{key}.masks")
    return out


def by_lists(root: Path, pairs: list[Pair], split_lists: dict[str, str]) -> dict[str, list[Pair]]:
    """Mode (b): list files (one stem or file name per line) name each split's samples."""
    _require(split_lists, "data.split_lists")
    by_name = {p.name: p for p in pairs}
    out: dict[str, list[Pair]] = {}
    seen: dict[str, str] = {}
    for split in SPLITS:
        if split not in split_lists:
            continue
        key = f"data.split_lists.{split}"
        path = root / split_lists[split]
        if not path.is_file():
            raise DataError(f"{key}: list file {path} not found (paths are relative to data.root)")
        chosen: list[Pair] = []
        for number, line in enumerate(path.read_text().splitlines(), 1):
            entry = line.split("#", 1)[0].strip()
            if not entry:
                continue
            name = _stem(entry, by_name)
            if name is None:
                raise DataError(
                    f"{path}:{number}: '{entry}' names no image/mask pair in "
                    "data.images/data.masks; fix the line or add the files"
                )
            if name in seen:
                raise DataError(
                    f"{path}:{number}: '{name}' is already in the {seen[name]} split; a sample "
                    "may be in one split only"
                )
            seen[name] = split
            chosen.append(by_name[name])
        if not chosen:
            raise DataError(f"{key}: list file {path} names no samples; the {split} split is empty")
        out[split] = chosen
    return out


def _stem(entry: str, known: dict[str, Pair]) -> str | None:
    if entry in known:
        return entry
    path = Path(entry)
    if path.suffix.lower() in IMAGE_EXTENSIONS and path.stem in known:
        return path.stem
    return path.name if path.name in known else None


def by_ratios(
    items: Sequence[T],
    name_of: Callable[[T], str],
    ratios: dict[str, float],
    seed: int,
    group_pattern: str | None,
) -> dict[str, list[T]]:
    """Mode (c): a seeded shuffle of groups (or single items), filled to the given ratios.

    Whole groups go to one split, so near-duplicates sharing a group cannot leak across splits.
    Each split with a ratio above 0 gets at least one group; the rest go where the split is
    furthest below its share. Ratios summing below 1 leave the remainder unused.
    """
    groups: dict[tuple[int, str], list[T]] = {}
    for item in sorted(items, key=lambda it: natural_key(name_of(it))):
        groups.setdefault(_group_key(name_of(item), group_pattern), []).append(item)
    order = sorted(groups, key=lambda k: (k[0], natural_key(k[1])))
    random.Random(seed).shuffle(order)

    wanted = [s for s in SPLITS if ratios.get(s, 0) > 0]
    total = len(items)
    targets = {s: ratios[s] * total for s in wanted}
    unused = total - sum(targets.values())
    if unused > 1e-9:
        targets["_unused"] = unused
    filled: dict[str, list[T]] = {s: [] for s in targets}
    for key in order:
        # Empty wanted splits first (no split left empty if avoidable), then the biggest deficit.
        split = max(
            targets,
            key=lambda s: (s != "_unused" and not filled[s], targets[s] - len(filled[s])),
        )
        filled[split].extend(groups[key])
    for split in wanted:
        if not filled[split]:
            how = (
                f"data.group_pattern '{group_pattern}' makes only {len(groups)} groups"
                if group_pattern
                else f"there are only {total} samples"
            )
            raise DataError(
                f"data.split_ratios: the {split} split is empty: {how}; change "
                f"data.split_ratios (e.g. set {split}: 0 where allowed) or data.group_pattern, "
                "or add data"
            )
    return {s: sorted(filled[s], key=lambda it: natural_key(name_of(it))) for s in wanted}


def _group_key(name: str, pattern: str | None) -> tuple[int, str]:
    if pattern is None:
        return (1, name)
    match = re.search(pattern, name)
    if match is None:
        return (1, name)  # no match: its own group, kept apart from matched group names
    group = match.group(1) if match.re.groups and match.group(1) is not None else match.group(0)
    return (0, group)


def _require(mapping: dict[str, object], key: str) -> None:
    for split in REQUIRED:
        if split not in mapping:
            raise DataError(f"{key}: no '{split}' entry; give at least train and val")
