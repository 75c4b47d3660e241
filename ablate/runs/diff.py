"""What differs between two tracked runs: configuration, environment, data, final metrics.

Works on :class:`~ablate.tracking.TrackedRun` values (plain data); nothing here talks to MLflow
or torch.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from ablate.tracking import TrackedRun
from ablate.tracking import names as keys

Row = tuple[str, str | None, str | None]  # key, value in A, value in B


@dataclass
class RunDiff:
    """Two runs side by side; ``metrics`` holds every final number of either run."""

    a: TrackedRun
    b: TrackedRun
    config: list[Row] = field(default_factory=list)  # differing keys only
    environment: list[Row] = field(default_factory=list)  # differing entries only
    data: list[Row] = field(default_factory=list)  # every split of either run
    metrics: list[tuple[str, float, float]] = field(default_factory=list)  # name, a, b

    def first_divergence(self) -> tuple[int, str, float, float] | None:
        """(epoch number, curve, value in A, value in B) where the epoch curves first differ
        (NaN for an epoch one run lacks), or None when they are identical."""
        found = None
        for name in sorted(set(self.a.curves) | set(self.b.curves)):
            a, b = self.a.curves.get(name, []), self.b.curves.get(name, [])
            for epoch in range(max(len(a), len(b))):
                va = a[epoch] if epoch < len(a) else math.nan
                vb = b[epoch] if epoch < len(b) else math.nan
                if not _same(va, vb) or (epoch >= len(a)) != (epoch >= len(b)):
                    if found is None or epoch + 1 < found[0]:
                        found = (epoch + 1, name, va, vb)  # epochs are numbered from 1
                    break
        return found

    @property
    def data_differs(self) -> bool:
        return any(a != b for _, a, b in self.data)

    def differing_metrics(self, measured: bool = False) -> list[tuple[str, float, float]]:
        """Final numbers that are not equal (NaN equals NaN); ``measured``: include the figures
        measured on the machine (times, latency), which differ between identical runs."""
        return [(n, a, b) for n, a, b in self.metrics
                if not _same(a, b) and (measured or n not in keys.MEASURED)]

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``--json`` (NaN as null)."""
        def run(r: TrackedRun) -> dict[str, Any]:
            return {"run_id": r.run_id, "name": r.name, "study": r.study, "status": r.status,
                    "role": r.tags.get(keys.TAG_ROLE)}

        return {
            "a": run(self.a), "b": run(self.b),
            "config": _rows(self.config),
            "environment": _rows(self.environment),
            "data": [{"split": s, "a": a, "b": b, "same": a == b} for s, a, b in self.data],
            "curves": self._curves_dict(),
            "metrics": [{"name": n, "a": _num(a), "b": _num(b), "difference": _num(b - a),
                         "same": _same(a, b), "measured": n in keys.MEASURED}
                        for n, a, b in self.metrics],
        }

    def _curves_dict(self) -> dict[str, Any]:
        first = self.first_divergence()
        if first is None:
            return {"identical": True, "first_difference": None}
        epoch, name, a, b = first
        return {"identical": False, "first_difference": {"epoch": epoch, "curve": name,
                                                          "a": _num(a), "b": _num(b)}}

    def curves_line(self) -> str:
        """Where the epoch curves first differ, in one line."""
        if not self.a.curves and not self.b.curves:
            return "epoch curves: none recorded"
        first = self.first_divergence()
        if first is None:
            epochs = max((len(v) for v in self.a.curves.values()), default=0)
            return f"epoch curves: identical ({epochs} epochs)"
        epoch, name, a, b = first
        return f"epoch curves: first differ at epoch {epoch} ({name}: A {a!r}, B {b!r})"

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=1)

    def lines(self) -> list[str]:
        """The comparison for the terminal."""
        out = [f"A: {self.a.run_id}  {self.a.label}", f"B: {self.b.run_id}  {self.b.label}"]
        out += _section("configuration", ("key", "keys"), self.config,
                        "identical" if self.a.config is not None and self.b.config is not None
                        else "identical params (no config.yaml on a run)")
        out += _section("environment", ("entry", "entries"), self.environment,
                        f"identical ({len(self.a.environment)} entries)" if self.a.environment
                        else "not recorded on these runs")
        out.append("data: " + ("; ".join(
            f"{s} same ({_short(a)})" if a == b else f"{s} DIFFERS ({_short(a)} vs {_short(b)})"
            for s, a, b in self.data) or "no digests recorded on these runs"))
        out.append(self.curves_line())
        out.append("final metrics (* differs; measured: a time, expected to differ):")
        width = max((len(n) for n, _, _ in self.metrics), default=6)
        out.append(f"  {'':<{width}}  {'A':>14}  {'B':>14}  {'B - A':>14}")
        for name, a, b in self.metrics:
            mark = "" if _same(a, b) else ("  (measured)" if name in keys.MEASURED else "  *")
            out.append(f"  {name:<{width}}  {_fmt(a):>14}  {_fmt(b):>14}  {_fmt(b - a):>14}{mark}")
        return out


def compare(a: TrackedRun, b: TrackedRun) -> RunDiff:
    """The differences between runs ``a`` and ``b``."""
    config_a = keys.flatten(a.config) if a.config is not None else dict(a.params)
    config_b = keys.flatten(b.config) if b.config is not None else dict(b.params)
    splits = sorted(set(a.data) | set(b.data), key=_split_order)
    names = sorted(set(a.metrics) | set(b.metrics), key=_metric_order)
    return RunDiff(
        a, b,
        config=_differing(config_a, config_b),
        environment=_differing(a.environment, b.environment),
        data=[(s, a.data.get(s), b.data.get(s)) for s in splits],
        metrics=[(n, a.metrics.get(n, math.nan), b.metrics.get(n, math.nan)) for n in names],
    )


def _rows(items: list[Row]) -> list[dict[str, str | None]]:
    return [{"key": k, "a": a, "b": b} for k, a, b in items]


def _differing(a: dict[str, str], b: dict[str, str]) -> list[Row]:
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def _section(title: str, what: tuple[str, str], rows: list[Row], same: str) -> list[str]:
    if not rows:
        return [f"{title}: {same}"]
    width = max(len(k) for k, _, _ in rows)
    head = (f"{title}: {len(rows)} {what[1]} differ" if len(rows) > 1
            else f"{title}: 1 {what[0]} differs")
    return [head] + [f"  {k:<{width}}  A: {_text(a)}  B: {_text(b)}" for k, a, b in rows]


def _split_order(split: str) -> tuple[int, str]:
    return (("train", "val", "test").index(split) if split in ("train", "val", "test") else 3,
            split)


def _metric_order(name: str) -> tuple[int, str]:
    split = name.partition("_")[0]
    rank = {"val": 0, "test": 1, "train": 2}.get(split, 3)
    return rank, name


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def _num(value: float) -> float | None:
    return None if math.isnan(value) else value


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.6g}"


def _text(value: str | None) -> str:
    return "(none)" if value is None else value


def _short(digest: str | None) -> str:
    return "none" if digest is None else digest[:12]
