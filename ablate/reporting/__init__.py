"""Reports of a study, built only from what MLflow holds.

Modules: :mod:`runs` (the study's runs as a table, read through :mod:`ablate.tracking`),
:mod:`settings` (alpha, correction, margin, target effect, adaptive repeats),
:mod:`configs` (repeats grouped by configuration, baseline, order), :mod:`comparisons`
(paired per-seed comparisons with a decision each), :mod:`ablation` (the ablation and
cumulative-steps tables), :mod:`stats` (mean ± std, Welch intervals, Pareto front),
:mod:`tables` (efficiency, Pareto), :mod:`factorial` (effects over seeds), :mod:`images`
(test-set sampling uncertainty from per-image counts), :mod:`detail` (per-run counts,
threshold scan, per-class IoU),
:mod:`importance` (fANOVA on a rebuilt Optuna study), :mod:`compare`, :mod:`plots`,
:mod:`drawing` (who draws the figures: this process or a forked helper),
:mod:`export` (markdown, CSV, LaTeX, JSON) and :mod:`assemble` (which sections a study gets;
writing files).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ablate._lazy import lazy

# Exports load on first use: the CLI starts the figure helper (drawing) before pandas loads.
_EXPORTS = {
    "Report": "assemble", "build": "assemble", "build_report": "assemble",
    "render": "assemble", "write_report": "assemble", "FORMATS": "export",
    "StudyRuns": "runs", "load_runs": "runs",
}

if TYPE_CHECKING:
    from ablate.reporting.assemble import Report, build, build_report, render, write_report
    from ablate.reporting.export import FORMATS
    from ablate.reporting.runs import StudyRuns, load_runs


__getattr__, __dir__ = lazy(__name__, _EXPORTS)


__all__ = [
    "FORMATS", "Report", "StudyRuns", "build", "build_report", "load_runs", "render",
    "write_report",
]
