"""What the MLflow UI's descriptions say (``mlflow.note.content``, markdown): one line per run
on what it is and how it ended, and the study's summary written by
:mod:`ablate.reporting.publish`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ablate.tracking import names

if TYPE_CHECKING:
    from ablate.spec import RunConfig, StudySpec

RUN_TAG_LIMIT = 8000  # MLflow's longest run tag value
SPEC_PARAMS_LINE = (
    f"This is the study run: its parameters `{names.SPEC_PARAM_PREFIX}*` are the study's base "
    "spec as written (`spec.yaml` artifact); each trial run holds the values it trained with."
)


@dataclass
class Summary:
    """A study's summary for the UI: the description (markdown), the parent run's tags and
    metrics (logged at ``step``), tags to set on trial runs (run id -> tags: their decision
    tags) and the full report as HTML (None: not refreshed)."""

    description: str
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    step: int = 0
    run_tags: dict[str, dict[str, str]] = field(default_factory=dict)
    html: str | None = None


def short(value: Any) -> str:
    """A value as a description shows it: Y/N for toggles, 4 significant digits."""
    if isinstance(value, bool):
        return "Y" if value else "N"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def run_head(name: str, config: RunConfig, values: dict[str, Any],
             components: dict[str, bool], label: str | None = None) -> str:
    """What a run is: its configuration label (or name), components or sampled values, seed."""
    if components:
        what = ", ".join(f"{k} {short(v)}" for k, v in components.items())
    else:
        what = ", ".join(f"{k}={short(v)}" for k, v in values.items())
    parts = [f"`{label}`" if label and label != name else name, what, f"seed {config.seed}"]
    return " · ".join(p for p in parts if p)


def run_note(head: str, config: RunConfig, state: str, reason: str | None = None,
             final: dict[str, float] | None = None) -> str:
    """A run's description: the head and its objective (or how it ended), then a line on what
    the final and the per-epoch objective measure."""
    objective = config.objective.metric
    value = (final or {}).get(objective, math.nan)
    if state == "RUNNING":
        ending = f"{objective}: running"
    elif state == "COMPLETE" and math.isfinite(value):
        ending = f"{objective} {value:.4f}"
    else:
        ending = state.lower() + (f": {reason}" if reason else "")
    best = (final or {}).get("best_epoch")
    return f"{head} · {ending}\n\n{measured(config, None if best is None else int(best))}"


def measured(config: RunConfig, best_epoch: int | None = None) -> str:
    """One line naming the two readings of a ``val_`` objective apart."""
    objective = config.objective.metric
    if not objective.startswith("val_"):
        return f"`{names.metric_key(objective)}`: the final `{objective}` of the run."
    final, curve = names.metric_key(objective), names.epoch_key(objective)
    epoch = f" (epoch {best_epoch})" if best_epoch is not None else ""
    size = config.data.size
    at_input = "at the model's input size" + (f" {size[0]}x{size[1]}" if size else "")
    where = ("at full resolution (each image's original size)"
             if config.eval.full_resolution else at_input)
    return (f"`{final}` is measured {where} with the best epoch's weights{epoch}; "
            f"the `{curve}` curve {at_input}, after each epoch.")


def study_pending(spec: StudySpec) -> str:
    """A study's description before its first trial finished."""
    head = (f"**{spec.name}**: {spec.design.kind} study, objective `{spec.objective.metric}` "
            f"({spec.objective.direction}); no trial finished yet.")
    return head + (f"\n\n{spec.description}" if spec.description else "")
