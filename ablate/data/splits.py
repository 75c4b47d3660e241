"""Assigning samples to train/val/test (README "Splits").

Every split has one source. The *train source* is ``split_lists.train`` if given, else the
pairs of the train folder (``images``/``masks`` or ``split_dirs.train``) that no other list
names, or the synthetic samples. val and test come from their own folders (``split_dirs``),
their own list of names in the train folder (``split_lists``), or are carved out of the train
source by ``split_ratios`` (a seeded shuffle; whole groups with ``group_pattern``); train keeps
what the ratios leave, or its own ``split_ratios.train`` share of its source.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from ablate.data.io import IMAGE_EXTENSIONS
from ablate.data.pairing import Pair, find_dir, natural_key, pair_files
from ablate.errors import DataError
from ablate.spec import SPLITS, DataSpec

T = TypeVar("T")


def folder_splits(root: Path, spec: DataSpec) -> dict[str, list[Pair]]:
    """Image/mask pairs per split of a folder data set."""
    dirs, lists = spec.split_dirs or {}, spec.split_lists or {}
    if "train" in dirs:
        source = "data.split_dirs.train"
        pool = _folder(root, dirs["train"].images, dirs["train"].masks, source)
    else:
        assert spec.images is not None and spec.masks is not None  # DataSpec ensures it
        source = "data.images"
        images = find_dir(root, spec.images, "data.images")
        masks = find_dir(root, spec.masks, "data.masks")
        pool = pair_files(images, masks, "data.images", "data.masks")
    out: dict[str, list[Pair]] = {}
    for split in SPLITS[1:]:
        if split in dirs:
            out[split] = _folder(root, dirs[split].images, dirs[split].masks,
                                 f"data.split_dirs.{split}")
    listed = by_lists(root, pool, {str(k): v for k, v in lists.items()}, source)
    out.update(listed)
    if "train" in listed:
        train_source = listed["train"]
    else:
        named = {p.name for members in listed.values() for p in members}
        train_source = [p for p in pool if p.name not in named]
        if not train_source:
            raise DataError(
                f"data.split_lists name every sample of {source}, so none is left for train; "
                "give data.split_lists.train or shorten the other lists"
            )
    out.update(carve(train_source, lambda p: p.image.name, spec))
    return {split: out[split] for split in SPLITS if split in out}


def _folder(root: Path, images: str, masks: str, key: str) -> list[Pair]:
    found_images = find_dir(root, images, f"{key}.images")
    found_masks = find_dir(root, masks, f"{key}.masks")
    return pair_files(found_images, found_masks, f"{key}.images", f"{key}.masks")


def carve(items: Sequence[T], name_of: Callable[[T], str], spec: DataSpec) -> dict[str, list[T]]:
    """The train source ``items`` split by ``spec.split_ratios``: train keeps the rest unless
    it has a share of its own (then what no share covers is left unused)."""
    ratios = spec.carve_ratios
    if not any(r > 0 for split, r in ratios.items() if split != "train"):
        return {"train": list(items)}
    if "train" not in ratios:
        ratios["train"] = max(0.0, 1.0 - sum(ratios.values()))
    return by_ratios(items, name_of, ratios, spec.split_seed, spec.group_pattern)


# ------------------------------------------------------------------------------- list files


def by_lists(
    root: Path, pairs: list[Pair], split_lists: dict[str, str], source: str = "data.images"
) -> dict[str, list[Pair]]:
    """The samples of ``pairs`` that each split's list file names (README "List files")."""
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
        # utf-8-sig: a byte-order mark from a Windows editor is not part of the first name.
        for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
            entry = line.split("#", 1)[0].strip()
            if not entry:
                continue
            where = f"{path}:{number}"
            pair = _entry(entry, by_name, root, where, source)
            if seen.get(pair.name) == split:
                continue  # listed twice in the same file: once is enough
            if pair.name in seen:
                raise DataError(
                    f"{where}: '{pair.name}' is already in the {seen[pair.name]} split; a "
                    "sample may be in one split only"
                )
            seen[pair.name] = split
            chosen.append(pair)
        if not chosen:
            raise DataError(f"{key}: list file {path} names no samples; the {split} split is empty")
        out[split] = chosen
    return out


def _entry(entry: str, known: dict[str, Pair], root: Path, where: str, source: str) -> Pair:
    """The pair a list line names: its stem, file name or path; else its first field."""
    fields = entry.split()
    for candidate in dict.fromkeys([entry, fields[0]]):
        name = _name(candidate, known)
        if name is not None:
            _check_path(candidate, known[name], root, where)
            return known[name]
    raise DataError(
        f"{where}: '{entry}' names no image/mask pair of {source}; a line holds a sample's "
        "file stem, file name or path (README \"List files\"); fix the line or add the files"
    )


def _name(entry: str, known: dict[str, Pair]) -> str | None:
    if entry in known:
        return entry
    path = Path(entry.replace("\\", "/"))  # Windows separators in a list written elsewhere
    if path.suffix.lower() in IMAGE_EXTENSIONS and path.stem in known:
        return path.stem
    return path.name if path.name in known else None


def _check_path(entry: str, pair: Pair, root: Path, where: str) -> None:
    """A path that exists here must be the sample's image or mask, not a namesake elsewhere."""
    path = Path(entry.replace("\\", "/"))
    if len(path.parts) < 2:
        return
    target = path if path.is_absolute() else root / path
    if target.is_file() and target.resolve() not in (pair.image.resolve(), pair.mask.resolve()):
        raise DataError(
            f"{where}: '{entry}' is {target}, but sample '{pair.name}' of the train folder is "
            f"{pair.image}; list files name samples of the train folder (data.images or "
            "data.split_dirs.train)"
        )


# ----------------------------------------------------------------------------------- ratios


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
