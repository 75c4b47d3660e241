"""Assigning samples to train/val/test (docs/data.md "Splits").

Every split has one source. The *train source* is ``split_lists.train`` if given, else the
pairs of the train folder (``images``/``masks`` or ``split_dirs.train``) that no other list
names, or the synthetic samples. val and test come from their own folders (``split_dirs``),
their own list of names in the train folder (``split_lists``, :mod:`ablate.data.lists`), or are
carved out of the train source by ``split_ratios``: a seeded shuffle (whole groups with
``group_pattern``), or with ``carve: blocks`` contiguous blocks in name order (ordered data:
stacks, videos); train keeps what the ratios leave, or its own ``split_ratios.train`` share.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from ablate.data.lists import by_lists
from ablate.data.pairing import Folder, Pair, find_dir, natural_key, pair_files
from ablate.data.problems import Problems
from ablate.errors import DataError
from ablate.spec import SPLITS, DataSpec

T = TypeVar("T")
Groups = dict[tuple[int, str], list[T]]


def folder_splits(root: Path, spec: DataSpec, problems: Problems) -> dict[str, list[Pair]]:
    """Image/mask pairs per split of a folder data set; pairing and list problems are
    collected (a split whose folder cannot be read is left out, with its problem)."""
    dirs, lists = spec.split_dirs or {}, spec.split_lists or {}
    if "train" in dirs:
        source = "data.split_dirs.train"
        folder = dirs["train"]
        pool = _folder(root, spec, folder.images, folder.masks, source, problems)
    else:
        assert spec.images is not None and spec.masks is not None  # DataSpec ensures it
        source = "data.images"
        pool = _folder(root, spec, spec.images, spec.masks, "data", problems)
    out: dict[str, list[Pair]] = {}
    for split in SPLITS[1:]:
        if split in dirs:
            folder = dirs[split]
            try:
                out[split] = _folder(root, spec, folder.images, folder.masks,
                                     f"data.split_dirs.{split}", problems)
            except DataError as err:
                problems.add_error(err)
    listed = by_lists(root, pool, {str(k): v for k, v in lists.items()}, problems, source,
                      spec.split_overlap)
    out.update(listed)
    if "train" in lists:
        train_source = listed.get("train", [])
    else:
        named = {p.name for members in listed.values() for p in members}
        train_source = [p for p in pool if p.name not in named]
        if not train_source:
            raise DataError(
                f"data.split_lists name every sample of {source}, so none is left for train; "
                "give data.split_lists.train or shorten the other lists"
            )
    if train_source:
        # by image file name, as splits were always carved (the same seed, the same split)
        out.update(carve(train_source, lambda p: p.image.name, spec, problems))
    return {split: out[split] for split in SPLITS if split in out}


def _folder(root: Path, spec: DataSpec, images: str, masks: str | None, key: str,
            problems: Problems) -> list[Pair]:
    """The pairs of an images folder and a masks folder (``key``: the spec key that names
    them, ``data`` for ``data.images`` / ``data.masks``)."""
    assert masks is not None  # DataSpec ensures it
    image_key, mask_key = f"{key}.images", f"{key}.masks"
    return pair_files(
        Folder(find_dir(root, images, image_key), image_key, spec.image_suffix,
               "data.image_suffix"),
        Folder(find_dir(root, masks, mask_key), mask_key, spec.mask_suffix, "data.mask_suffix"),
        problems,
    )


def carve(items: Sequence[T], name_of: Callable[[T], str], spec: DataSpec,
          problems: Problems | None = None) -> dict[str, list[T]]:
    """The train source ``items`` split by ``spec.split_ratios`` (``spec.carve``): train keeps
    the rest unless it has a share of its own (then what no share covers is left unused)."""
    ratios = spec.carve_ratios
    if not any(r > 0 for split, r in ratios.items() if split != "train"):
        return {"train": list(items)}
    if "train" not in ratios:
        ratios["train"] = max(0.0, 1.0 - sum(ratios.values()))
    if spec.carve == "blocks":
        return by_blocks(items, name_of, ratios, spec.group_pattern, spec.carve_gap, problems)
    return by_ratios(items, name_of, ratios, spec.split_seed, spec.group_pattern)


# ----------------------------------------------------------------------------------- ratios


def _groups(items: Sequence[T], name_of: Callable[[T], str],
            pattern: str | None) -> Groups[T]:
    """Items by group (each item its own group without ``pattern``), in natural name order."""
    groups: Groups[T] = {}
    for item in sorted(items, key=lambda it: natural_key(name_of(it))):
        groups.setdefault(_group_key(name_of(item), pattern), []).append(item)
    return groups


def by_ratios(
    items: Sequence[T],
    name_of: Callable[[T], str],
    ratios: dict[str, float],
    seed: int,
    group_pattern: str | None,
) -> dict[str, list[T]]:
    """A seeded shuffle of groups (or single items), filled to the given ratios.

    Whole groups go to one split, so near-duplicates sharing a group cannot leak across splits.
    Each split with a ratio above 0 gets at least one group; the rest go where the split is
    furthest below its share. Ratios summing below 1 leave the remainder unused.
    """
    groups = _groups(items, name_of, group_pattern)
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
    _check_filled(filled, wanted, len(groups), total, group_pattern)
    return {s: sorted(filled[s], key=lambda it: natural_key(name_of(it))) for s in wanted}


def by_blocks(
    items: Sequence[T],
    name_of: Callable[[T], str],
    ratios: dict[str, float],
    group_pattern: str | None,
    gap: int = 0,
    problems: Problems | None = None,
) -> dict[str, list[T]]:
    """Contiguous blocks in natural name order (of whole groups with ``group_pattern``): train
    first, then val, then test, then what the ratios leave unused; ``gap`` groups between two
    blocks are left out, so that no carved sample sits next to a train one.

    Each block ends where its share of the items (counted from the start) is reached; a split
    with a ratio above 0 gets at least one group.
    """
    groups = _groups(items, name_of, group_pattern)
    keys = list(groups)
    wanted = [s for s in SPLITS if ratios.get(s, 0) > 0]
    usable = len(items) - gap * (len(wanted) - 1)
    ends, share = [], 0.0
    for split in wanted:
        share += ratios[split]
        ends.append((split, share * max(usable, 0)))
    filled: dict[str, list[T]] = {s: [] for s in wanted}
    index, placed, skipped = 0, 0, 0
    for position, (split, end) in enumerate(ends):
        if position > 0:
            for _ in range(gap):  # the gap between two blocks
                if index < len(keys):
                    skipped += len(groups[keys[index]])
                    index += 1
        reserved = (len(wanted) - position - 1) * (1 + gap)  # later blocks and their gaps
        while index < len(keys) - reserved and (not filled[split] or placed + 0.5 < end):
            filled[split].extend(groups[keys[index]])
            placed += len(groups[keys[index]])
            index += 1
    _check_filled(filled, wanted, len(groups), len(items), group_pattern, gap)
    if skipped and problems is not None:
        problems.warn(f"data.carve_gap: {skipped} sample(s) left out between the carved blocks")
    return filled


def _check_filled(filled: dict[str, list[T]], wanted: list[str], groups: int, total: int,
                  group_pattern: str | None, gap: int = 0) -> None:
    for split in wanted:
        if not filled[split]:
            how = (
                f"data.group_pattern '{group_pattern}' makes only {groups} groups"
                if group_pattern
                else f"there are only {total} samples"
            )
            gaps = f" (data.carve_gap {gap} leaves out {gap} between blocks)" if gap else ""
            raise DataError(
                f"data.split_ratios: the {split} split is empty: {how}{gaps}; change "
                f"data.split_ratios (e.g. set {split}: 0 where allowed) or data.group_pattern, "
                "or add data"
            )


def _group_key(name: str, pattern: str | None) -> tuple[int, str]:
    if pattern is None:
        return (1, name)
    match = re.search(pattern, name)
    if match is None:
        return (1, name)  # no match: its own group, kept apart from matched group names
    group = match.group(1) if match.re.groups and match.group(1) is not None else match.group(0)
    return (0, group)
