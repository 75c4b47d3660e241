"""Fixed ablation designs: the list of configurations a design trains."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ablate.spec import Component, DesignSpec

BASELINE = "baseline"


@dataclass(frozen=True)
class Configuration:
    """One configuration of a design: a label, the values it sets, its components as Y/N."""

    label: str
    values: dict[str, Any] = field(default_factory=dict)
    components: dict[str, bool] = field(default_factory=dict)


def _make(design: DesignSpec, active: list[Component], label: str) -> Configuration:
    values = dict(design.baseline)
    for component in active:
        values.update(component.set)
    on = {c.name for c in active}
    return Configuration(label, values, {c.name: c.name in on for c in design.components})


def configurations(design: DesignSpec) -> list[Configuration]:
    """The configurations of a fixed design, baseline first; empty for a search design.

    - one_at_a_time: the baseline, then each component alone;
    - cumulative: the baseline, then components added in the listed order;
    - factorial: every subset of the components (2^k cells).
    """
    comps = design.components
    if design.kind == "one_at_a_time":
        return [_make(design, [], BASELINE)] + [_make(design, [c], c.name) for c in comps]
    if design.kind == "cumulative":
        return [_make(design, [], BASELINE)] + [
            _make(design, comps[: i + 1], "+" + "+".join(c.name for c in comps[: i + 1]))
            for i in range(len(comps))
        ]
    if design.kind == "factorial":
        cells = []
        for mask in itertools.product((False, True), repeat=len(comps)):
            active = [c for c, on in zip(comps, mask, strict=True) if on]
            label = ",".join(f"{c.name}={'Y' if on else 'N'}" for c, on in zip(comps, mask,
                                                                              strict=True))
            cells.append(_make(design, active, label))
        return cells
    return []


def baseline_label(design: DesignSpec) -> str | None:
    """Label of the configuration the others are compared with."""
    if design.kind in ("one_at_a_time", "cumulative"):
        return BASELINE
    if design.kind == "factorial":
        return ",".join(f"{c.name}=N" for c in design.components)
    return None


def reference_pairs(
    kind: str, labels: Sequence[str], baseline: str | None
) -> list[tuple[str, str]]:
    """The (configuration, reference) comparisons of a design whose configurations are
    ``labels`` (in design order): each configuration with the baseline, and in a cumulative
    design each step with the configuration before it too (the first step's predecessor is
    the baseline: listed once)."""
    if baseline is None:
        return []
    pairs = [(label, baseline) for label in labels if label != baseline]
    if kind == "cumulative":
        pairs += [(label, before) for before, label in itertools.pairwise(labels)
                  if before != baseline]
    return pairs


def comparisons(design: DesignSpec) -> list[tuple[str, str]]:
    """The (configuration, reference) comparisons of a fixed design (:func:`reference_pairs`);
    empty for a search."""
    labels = [c.label for c in configurations(design)]
    return reference_pairs(design.kind, labels, baseline_label(design))
