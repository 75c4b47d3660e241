"""Fixed ablation designs: the list of configurations a design trains."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the report reads designs without loading the spec's models (pydantic)
    from ablate.spec import Component, DesignSpec

BASELINE = "baseline"


@dataclass(frozen=True)
class Configuration:
    """One configuration of a design: a label, the values it sets, its components as Y/N."""

    label: str
    values: dict[str, Any] = field(default_factory=dict)
    components: dict[str, bool] = field(default_factory=dict)


DesignFn = Callable[["DesignSpec"], list[Configuration]]


def _make(design: DesignSpec, active: list[Component], label: str) -> Configuration:
    values = dict(design.baseline)
    for component in active:
        values.update(component.set)
    on = {c.name for c in active}
    return Configuration(label, values, {c.name: c.name in on for c in design.components})


@dataclass(frozen=True)
class Design:
    """A registered design kind: its configurations, the label of its reference, and whether
    each configuration is also compared with the one listed before it."""

    configurations: DesignFn
    baseline: Callable[[DesignSpec], str]
    chained: bool = False


# Every fixed design kind by the name ``design.kind`` gives it (``search`` runs none).
# Adding one: a :func:`register`-ed function here, its name in the spec's ``design.kind``
# vocabulary and its test.
DESIGNS: dict[str, Design] = {}


def _baseline(design: DesignSpec) -> str:
    return BASELINE


def register(
    kind: str, baseline: Callable[[DesignSpec], str] = _baseline, chained: bool = False
) -> Callable[[DesignFn], DesignFn]:
    """Decorator: register a function ``DesignSpec -> configurations`` as design ``kind``."""

    def add(build: DesignFn) -> DesignFn:
        DESIGNS[kind] = Design(build, baseline, chained)
        return build

    return add


@register("one_at_a_time")
def _one_at_a_time(design: DesignSpec) -> list[Configuration]:
    """The baseline, then each component alone."""
    return [_make(design, [], BASELINE)] + [_make(design, [c], c.name)
                                            for c in design.components]


@register("cumulative", chained=True)
def _cumulative(design: DesignSpec) -> list[Configuration]:
    """The baseline, then the components added in the listed order."""
    comps = design.components
    return [_make(design, [], BASELINE)] + [
        _make(design, comps[: i + 1], "+" + "+".join(c.name for c in comps[: i + 1]))
        for i in range(len(comps))
    ]


def _all_off(design: DesignSpec) -> str:
    return ",".join(f"{c.name}=N" for c in design.components)


@register("factorial", baseline=_all_off)
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


def configurations(design: DesignSpec) -> list[Configuration]:
    """The configurations of a fixed design (:data:`DESIGNS`), baseline first; empty for a
    search design."""
    kind = DESIGNS.get(design.kind)
    return [] if kind is None else kind.configurations(design)


def baseline_label(design: DesignSpec) -> str | None:
    """Label of the configuration the others are compared with (None for a search)."""
    kind = DESIGNS.get(design.kind)
    return None if kind is None else kind.baseline(design)


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
    if kind in DESIGNS and DESIGNS[kind].chained:
        pairs += [(label, before) for before, label in itertools.pairwise(labels)
                  if before != baseline]
    return pairs


def comparisons(design: DesignSpec) -> list[tuple[str, str]]:
    """The (configuration, reference) comparisons of a fixed design (:func:`reference_pairs`);
    empty for a search."""
    labels = [c.label for c in configurations(design)]
    return reference_pairs(design.kind, labels, baseline_label(design))
