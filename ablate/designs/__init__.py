"""Design kinds: how a study chooses its configurations (an Optuna search, or a fixed
ablation design), and what that means for the spec, the study and the report.

:data:`~ablate.designs.registry.DESIGNS` holds every kind by the name ``design.kind`` gives
it (:mod:`ablate.designs.kinds`: search, one_at_a_time, cumulative, factorial); adding one is
a :func:`register`-ed function and its test. Nothing here imports the spec's models, so the
spec's validation can ask the registry which kinds exist.
"""

from ablate.designs import kinds as _kinds  # noqa: F401  (registers the built-in kinds)
from ablate.designs.registry import (
    BASELINE,
    DESIGNS,
    SECTIONS,
    Configuration,
    Design,
    Section,
    baseline_label,
    comparisons,
    configurations,
    design_kind,
    kind_names,
    reference_pairs,
    register,
)

__all__ = [
    "BASELINE", "DESIGNS", "SECTIONS", "Configuration", "Design", "Section", "baseline_label",
    "comparisons", "configurations", "design_kind", "kind_names", "reference_pairs", "register",
]
