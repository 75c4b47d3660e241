"""Whether the runs in the report's tables saw the same data (their per-split digests)."""

from __future__ import annotations

import pandas as pd

from ablate.reporting.runs import DATA, StudyRuns


def data_lines(study: StudyRuns, other: StudyRuns | None = None) -> list[str]:
    """Which data the complete runs (of ``study``, and ``other`` when the report compares two
    studies) saw: one line with each split's digest when they all agree, else one warning per
    split with more than one digest; nothing when no run recorded one."""
    runs = [study.complete()] + ([other.complete()] if other is not None else [])
    frame = pd.concat(runs, ignore_index=True)
    lines, agreed = [], []
    for column in sorted((c for c in frame.columns if c.startswith(DATA)), key=_split_order):
        digests = frame[column].dropna().astype(str)
        counts = digests.value_counts()
        if len(counts) == 1 and not frame[column].isna().any():
            agreed.append(f"{column.removeprefix(DATA)} `{counts.index[0][:12]}`")
        if len(counts) < 2:
            continue
        split = column.removeprefix(DATA)
        seen = ", ".join(f"`{d[:12]}` in {n} run(s)" for d, n in counts.items())
        missing = int(frame[column].isna().sum())
        lines.append(
            f"**Warning: the runs in these tables did not all see the same {split} data** "
            f"({len(counts)} digests: {seen}" + (f"; {missing} run(s) recorded none" if missing
                                                 else "")
            + "). Differences between them may come from the data; compare two runs with "
            "`ablate diff RUN_A RUN_B`."
        )
    if agreed and not lines:
        lines.append(f"Data: every run saw the same files ({', '.join(agreed)}: digests of each "
                     "split's file list and contents).")
    return lines


def _split_order(column: str) -> int:
    split = column.removeprefix(DATA)
    return ("train", "val", "test").index(split) if split in ("train", "val", "test") else 3
