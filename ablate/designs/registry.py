"""The design kinds by the name ``design.kind`` gives them, and what each one means.

A :class:`Design` is the one place that knows a kind: whether its configurations are sampled
(a search) or listed, which it lists and which of them is the baseline, whether each one is
also compared with the one before it, whether the report keeps their order, whether adaptive
repeats may add seeds, how many components it takes and which extra report sections it gets.
The spec, the study and the report ask the registry; none of them names a kind.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # the report reads designs without loading the spec's models (pydantic)
    from ablate.spec import DesignSpec

BASELINE = "baseline"

# Report sections a kind may ask for, beyond the ablation table every study gets: each
# configuration against its predecessor (steps), factorial main effects and interactions
# (effects), the searched parameters' importance (importance) and the optimisation history
# with its plots (history).
Section = Literal["steps", "effects", "importance", "history"]
SECTIONS: tuple[Section, ...] = ("steps", "effects", "importance", "history")


@dataclass(frozen=True)
class Configuration:
    """One configuration of a design: a label, the values it sets, its components as Y/N."""

    label: str
    values: dict[str, Any] = field(default_factory=dict)
    components: dict[str, bool] = field(default_factory=dict)


ConfigurationsFn = Callable[["DesignSpec"], list[Configuration]]
BaselineFn = Callable[["DesignSpec"], "str | None"]


def _named_baseline(design: DesignSpec) -> str | None:
    return BASELINE


@dataclass(frozen=True)
class Design:
    """A registered design kind (see the module docstring)."""

    name: str
    # The configurations a fixed kind trains, baseline first (a sampled kind lists none).
    configurations: ConfigurationsFn
    # The label of the configuration the others are compared with (None: no comparisons).
    baseline: BaselineFn = _named_baseline
    # The study's sampler draws the configurations (``search``); components are then not
    # allowed, and a spec's ``search`` section is (a fixed kind forbids it).
    sampled: bool = False
    # Each configuration is also compared with the one listed before it (its predecessor).
    chained: bool = False
    # The report lists the configurations in design order (else: best mean first).
    ordered: bool = False
    # ``repeats: {min, max}`` allowed: every configuration has a reference to be decided against.
    adaptive: bool = False
    # The most components a spec may give (None: no limit); a fixed kind needs at least one.
    max_components: int | None = None
    # Extra report sections (:data:`SECTIONS`), in the report's order.
    sections: tuple[Section, ...] = ()


# Every design kind by name. Adding one: a :func:`register`-ed function (here or in a module
# of its own that ``ablate.designs`` imports) and its test; the spec accepts it by name.
DESIGNS: dict[str, Design] = {}


def register(
    name: str,
    *,
    baseline: BaselineFn = _named_baseline,
    sampled: bool = False,
    chained: bool = False,
    ordered: bool = False,
    adaptive: bool = False,
    max_components: int | None = None,
    sections: Sequence[Section] = (),
) -> Callable[[ConfigurationsFn], ConfigurationsFn]:
    """Decorator: register a function ``DesignSpec -> configurations`` as design kind ``name``
    with the traits of :class:`Design`."""
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise ValueError(f"design kind {name}: unknown report section(s) {sorted(unknown)}; "
                         f"the report builds {', '.join(SECTIONS)}")

    def add(build: ConfigurationsFn) -> ConfigurationsFn:
        DESIGNS[name] = Design(name, build, baseline, sampled, chained, ordered, adaptive,
                               max_components, tuple(sections))
        return build

    return add


def design_kind(name: str) -> Design:
    """The registered kind ``name``; a name this version does not know (a store written by
    a newer one) reads as a fixed design without extra sections."""
    found = DESIGNS.get(name)
    return found if found is not None else Design(name, lambda design: [], lambda design: None)


def kind_names(*, sampled: bool | None = None, adaptive: bool | None = None) -> list[str]:
    """The registered kind names, in registration order, optionally only those whose
    ``sampled`` / ``adaptive`` trait is as given (for messages)."""
    return [d.name for d in DESIGNS.values()
            if (sampled is None or d.sampled == sampled)
            and (adaptive is None or d.adaptive == adaptive)]


def configurations(design: DesignSpec) -> list[Configuration]:
    """The configurations a design trains, baseline first; empty for a sampled kind."""
    return design_kind(design.kind).configurations(design)


def baseline_label(design: DesignSpec) -> str | None:
    """Label of the configuration the others are compared with (None for a search)."""
    return design_kind(design.kind).baseline(design)


def reference_pairs(
    kind: str, labels: Sequence[str], baseline: str | None
) -> list[tuple[str, str]]:
    """The (configuration, reference) comparisons of a design whose configurations are
    ``labels`` (in design order): each configuration with the baseline, and in a chained
    design each step with the configuration before it too (the first step's predecessor is
    the baseline: listed once)."""
    if baseline is None:
        return []
    pairs = [(label, baseline) for label in labels if label != baseline]
    if design_kind(kind).chained:
        pairs += [(label, before) for before, label in itertools.pairwise(labels)
                  if before != baseline]
    return pairs


def comparisons(design: DesignSpec) -> list[tuple[str, str]]:
    """The (configuration, reference) comparisons of a fixed design (:func:`reference_pairs`);
    empty for a search."""
    labels = [c.label for c in configurations(design)]
    return reference_pairs(design.kind, labels, baseline_label(design))
