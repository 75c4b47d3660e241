"""The built-in design kinds: a search, and the fixed designs one_at_a_time, cumulative and
factorial."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from ablate.designs.registry import BASELINE, Configuration, register

if TYPE_CHECKING:
    from ablate.spec import Component, DesignSpec


def _make(design: DesignSpec, active: list[Component], label: str) -> Configuration:
    values = dict(design.baseline)
    for component in active:
        values.update(component.set)
    on = {c.name for c in active}
    return Configuration(label, values, {c.name: c.name in on for c in design.components})


@register("search", baseline=lambda design: None, sampled=True,
          sections=("importance", "history"))
def _search(design: DesignSpec) -> list[Configuration]:
    """None listed: the study's sampler draws each trial's values from ``search``."""
    return []


@register("one_at_a_time", adaptive=True)
def _one_at_a_time(design: DesignSpec) -> list[Configuration]:
    """The baseline, then each component alone."""
    return [_make(design, [], BASELINE)] + [_make(design, [c], c.name)
                                            for c in design.components]


@register("cumulative", chained=True, ordered=True, adaptive=True, sections=("steps",))
def _cumulative(design: DesignSpec) -> list[Configuration]:
    """The baseline, then the components added in the listed order."""
    comps = design.components
    return [_make(design, [], BASELINE)] + [
        _make(design, comps[: i + 1], "+" + "+".join(c.name for c in comps[: i + 1]))
        for i in range(len(comps))
    ]


def _all_off(design: DesignSpec) -> str:
    return ",".join(f"{c.name}=N" for c in design.components)


# 2^k cells: 8 components already train 256 configurations per repeat
@register("factorial", baseline=_all_off, max_components=8, sections=("effects",))
def _factorial(design: DesignSpec) -> list[Configuration]:
    """Every subset of the components (2^k cells)."""
    comps = design.components
    cells = []
    for mask in itertools.product((False, True), repeat=len(comps)):
        active = [c for c, on in zip(comps, mask, strict=True) if on]
        label = ",".join(f"{c.name}={'Y' if on else 'N'}"
                         for c, on in zip(comps, mask, strict=True))
        cells.append(_make(design, active, label))
    return cells
