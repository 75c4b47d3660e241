"""Split list files (``data.split_lists``): which samples of the train folder each split has.

A list file is either text, one sample per line (its name, file name or path; ``#`` starts a
comment; a line's first field is tried when the whole line names nothing), or a YAML/JSON
file mapping split names to lists of samples, as data sets often ship their split
(``train: [2, 5, 6]``, ``test: [1, 3]``): each split reads its own key, so one file can serve
several splits. A number names the sample whose name is that number, zero-padded or not
(``2`` names ``002``). A sample two splits both name is resolved by ``data.split_overlap``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from ablate.data.io import IMAGE_EXTENSIONS
from ablate.data.pairing import Pair
from ablate.data.problems import Problems
from ablate.errors import DataError
from ablate.naming import SPLITS

MAPPING_SUFFIXES = (".yaml", ".yml", ".json")


def by_lists(
    root: Path, pairs: Sequence[Pair], split_lists: dict[str, str], problems: Problems,
    source: str = "data.images", overlap: str = "error",
) -> dict[str, list[Pair]]:
    """The samples of ``pairs`` that each split's list file names; unknown entries and
    samples listed for two splits (unless ``overlap`` resolves them) are problems."""
    by_name = {p.name: p for p in pairs}
    index = _Index(by_name)
    chosen: dict[str, list[Pair]] = {}
    where_listed: dict[str, dict[str, str]] = {}  # sample -> {split: where}
    for split in SPLITS:
        if split not in split_lists:
            continue
        key = f"data.split_lists.{split}"
        path = root / split_lists[split]
        try:
            entries = _entries(path, split, key)
        except DataError as err:
            problems.add_error(err)
            continue
        picked: list[Pair] = []
        for where, entry in entries:
            pair = _entry(entry, index, root, where, source, problems)
            if pair is None or split in where_listed.get(pair.name, {}):
                continue  # unknown (a problem), or listed twice in one split: once is enough
            where_listed.setdefault(pair.name, {})[split] = where
            picked.append(pair)
        if not picked and entries:
            continue  # every entry was a problem
        if not picked:
            problems.add(f"{key}: list file {path} names no samples; the {split} split is empty")
            continue
        chosen[split] = picked
    twice = {name: splits for name, splits in where_listed.items() if len(splits) > 1}
    return _resolve_overlap(chosen, twice, overlap, problems)


def _resolve_overlap(chosen: dict[str, list[Pair]], twice: dict[str, dict[str, str]],
                     overlap: str, problems: Problems) -> dict[str, list[Pair]]:
    """Each split's samples with every sample listed for several splits resolved."""
    if not twice:
        return chosen
    for name, splits in twice.items():
        listed = " and ".join(splits)
        places = "; ".join(f"{split}: {where}" for split, where in splits.items())
        if overlap == "error":
            problems.add(f"'{name}' is listed for both {listed} ({places}); a sample may be in "
                         "one split only: remove it from one list, or set data.split_overlap: "
                         "drop (left out of every split) or data.split_overlap: <split> (kept "
                         "there only)", "samples listed for two splits", name)
        elif overlap == "drop":
            problems.warn(f"data.split_overlap: drop: sample '{name}' is listed for {listed}; "
                          "left out of every split")
        elif overlap in splits:
            problems.warn(f"data.split_overlap: {overlap}: sample '{name}' is listed for "
                          f"{listed}; kept in {overlap} only")
        else:
            problems.warn(f"data.split_overlap: {overlap}: sample '{name}' is listed for "
                          f"{listed}, not {overlap}; left out of every split")
    return {split: [p for p in pairs
                    if p.name not in twice or (overlap == split and split in twice[p.name])]
            for split, pairs in chosen.items()}


def _entries(path: Path, split: str, key: str) -> list[tuple[str, str]]:
    """(where, entry) of each sample a list file names for ``split``."""
    if not path.is_file():
        raise DataError(f"{key}: list file {path} not found (paths are relative to data.root)")
    # utf-8-sig: a byte-order mark from a Windows editor is not part of the first name.
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() in MAPPING_SUFFIXES:
        return [(f"{path} ({split})", entry) for entry in _mapping_entries(path, text, split,
                                                                          key)]
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        entry = line.split("#", 1)[0].strip()
        if entry:
            out.append((f"{path}:{number}", entry))
    return out


def _mapping_entries(path: Path, text: str, split: str, key: str) -> list[str]:
    try:
        loaded: Any = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"{key}: {path} cannot be read ({first}); fix the file") from None
    if not isinstance(loaded, dict):
        raise DataError(f"{key}: {path} holds no mapping of split names to sample lists (e.g. "
                        "train: [1, 2], test: [3]); use a text file with one sample per line")
    if split not in loaded:
        keys = ", ".join(str(k) for k in loaded) or "none"
        raise DataError(f"{key}: {path} has no '{split}' list (its keys: {keys}); give the "
                        "split's list there, or another file")
    entries = loaded[split]
    if not isinstance(entries, list) or not all(isinstance(e, str | int) and not
                                                isinstance(e, bool) for e in entries):
        raise DataError(f"{key}: '{split}' in {path} is not a list of sample names or numbers")
    return [str(e) for e in entries]


class _Index:
    """The samples a list entry may name: by name, by number, by image or mask file name."""

    def __init__(self, by_name: dict[str, Pair]):
        self.by_name = by_name
        self.numbered: dict[int, list[str]] = {}
        self.files: dict[str, str] = {}
        for name, pair in by_name.items():
            if name.isdigit():
                self.numbered.setdefault(int(name), []).append(name)
            self.files.setdefault(pair.image.name, name)
            self.files.setdefault(pair.mask.name, name)

    def name(self, entry: str) -> str | None:
        if entry in self.by_name:
            return entry
        if entry.isdigit() and len(self.numbered.get(int(entry), [])) == 1:
            return self.numbered[int(entry)][0]
        path = Path(entry.replace("\\", "/"))  # Windows separators in a list written elsewhere
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            if path.name in self.files:
                return self.files[path.name]
            if path.stem in self.by_name:
                return path.stem
        return path.name if path.name in self.by_name else None


def _entry(entry: str, index: _Index, root: Path, where: str, source: str,
           problems: Problems) -> Pair | None:
    """The pair a list entry names: its name, number, file name or path; else its first
    field. None (and a problem) when it names none."""
    fields = entry.split()
    for candidate in dict.fromkeys([entry, fields[0]]):
        name = index.name(candidate)
        if name is not None:
            pair = index.by_name[name]
            try:
                _check_path(candidate, pair, root, where)
            except DataError as err:
                problems.add_error(err, "list entries naming other files", where)
                return None
            return pair
    problems.add(f"{where}: '{entry}' names no image/mask pair of {source}; an entry is a "
                 "sample's name (or number), file name or path (docs/data.md \"List files\"); "
                 "fix it or add the files", "list entries naming no sample", where)
    return None


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
