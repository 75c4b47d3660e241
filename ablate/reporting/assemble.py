"""Assemble the report: which sections a study gets, its figures, its footer; write it out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ablate.reporting import export
from ablate.reporting.ablation import ablation_section, family, steps_section
from ablate.reporting.compare import compare_section
from ablate.reporting.configs import (
    aggregate,
    baseline_label,
    best_label,
    ordered,
    representative,
    run_title,
)
from ablate.reporting.detail import (
    Chosen,
    chosen_runs,
    class_section,
    split_sections,
    threshold_section,
)
from ablate.reporting.drawing import Drawer
from ablate.reporting.factorial import factorial_sections
from ablate.reporting.images import image_sections
from ablate.reporting.importance import Rebuilt, history_frame, importance_section, rebuild
from ablate.reporting.provenance import data_lines
from ablate.reporting.runs import StudyRuns, load_runs
from ablate.reporting.sections import Section
from ablate.reporting.settings import Settings
from ablate.reporting.tables import (
    efficiency_section,
    pareto_axes,
    pareto_mask,
    pareto_section,
    same_cost,
    same_cost_section,
)
from ablate.reporting.trivial import add_trivial
from ablate.stores import Stores

NO_FIGURES = ("Figures (PNG) are written only with `--out FILE`, as `<stem>_<figure>.png` next "
              "to it, and linked from the report.")
_STATE_WORDS = {"FAIL": "failed", "PRUNED": "pruned", "RUNNING": "still running or lost"}


@dataclass
class Report:
    """A built report: title, lines under it, the sections, the footer, and the settings its
    decisions were made with."""

    study: StudyRuns
    header: list[str]
    sections: list[Section]
    footer: list[str] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    settings: Settings = field(default_factory=Settings)
    # a search's fANOVA importances with the digest of their inputs (TAG_IMPORTANCE)
    importance: dict[str, Any] | None = None
    # the trivial predictors' scores beside the best configuration's (reporting.trivial)
    trivial: dict[str, Any] | None = None

    @property
    def title(self) -> str:
        return f"Ablation report: {self.study.name}"


def excluded_summary(study: StudyRuns) -> list[str]:
    """Footer lines: the attempts left out of the tables, by state with their reasons, and how
    many of them were later retried successfully."""
    rest = study.not_complete()
    parts = []
    for state in ("FAIL", "PRUNED", "RUNNING"):
        runs = rest[rest["state"] == state]
        if runs.empty:
            continue
        retried = int(runs["retried"].sum())
        reasons = runs["reason"].fillna("").value_counts()
        detail = "; ".join(f"{r} (x{n})" if n > 1 else str(r) for r, n in reasons.items() if r)
        later = f" ({retried} later retried successfully)" if retried else ""
        parts.append(f"{len(runs)} {_STATE_WORDS.get(state, state.lower())}{later}"
                     + (f": {detail}" if detail else ""))
    lines = ["Not in the tables: " + "; ".join(parts) + "."] if parts else []
    complete = study.runs[study.runs["state"] == "COMPLETE"]
    superseded = len(complete) - len(study.complete())
    if superseded:
        lines.append(f"{superseded} earlier complete run(s) superseded by a later run of the "
                     "same configuration and repeat.")
    return lines


def _header(study: StudyRuns, configs_count: int, runs_count: int) -> list[str]:
    goals = ", ".join(f"`{o['metric']}` ({o.get('direction', 'maximize')})"
                      for o in study.objectives) if len(study.objectives) > 1 else ""
    return [
        f"Objective: `{study.objective}` ({study.direction}), read on the validation split; test "
        f"figures are reported, never used for selection. Design: {study.design}. "
        f"{configs_count} configuration(s) from {runs_count} complete run(s); generated "
        f"{dt.datetime.now().strftime('%Y-%m-%d %H:%M')}."
        + (f" Objectives of the multi-objective study: {goals}." if goals else "")
    ]


def build(
    study: StudyRuns,
    other: StudyRuns | None = None,
    trials: list[int] | None = None,
    figures: Path | None = None,
    settings: Settings | None = None,
    drawer: Drawer | None = None,
) -> Report:
    """All sections for ``study``; with ``figures`` (a path prefix ``folder/stem``) the PNGs
    are written as ``<stem>_pareto.png`` etc. and linked, by ``drawer`` (default: drawn here;
    a helper's figures exist once its ``close()`` returns). ``settings``: how to decide
    (default: what the study recorded)."""
    settings = settings or study.settings
    extra = study.kind.sections  # the design kind's own sections
    configs = ordered(study, aggregate(study))
    rebuilt = None
    if {"importance", "history"} & set(extra) and study.search and not configs.empty:
        rebuilt = rebuild(study, configs)
    # a ranking by cost would only repeat the ablation table
    front = None if same_cost(study, configs) else pareto_mask(study, configs)
    drawn = _figures(study, configs, front, rebuilt, figures, drawer or Drawer())
    best, baseline = best_label(study, configs), baseline_label(study, configs)
    report = Report(study, _header(study, len(configs), len(study.complete())), [],
                    settings=settings)
    for line in data_lines(study, other):  # own paragraphs
        report.header += ["", line]
    rows = family(study, configs, baseline, settings)
    ablation = ablation_section(study, configs, baseline, rows, settings)
    trivial = add_trivial(ablation, study, configs)
    report.trivial = trivial.as_dict() if trivial is not None else None
    report.sections.append(ablation)
    if "steps" in extra and baseline is not None:
        report.sections.append(steps_section(study, configs, rows, settings))
    if other is not None:
        report.sections.append(compare_section(study, other))
    if "effects" in extra:
        report.sections += factorial_sections(study, settings)
    if front is None:
        report.sections.append(same_cost_section(study, configs))
    else:
        report.sections += _cost_sections(study, configs, front, drawn)
    chosen, notes = chosen_runs(study, configs, best, baseline, trials)
    report.sections += split_sections(study, chosen, notes)
    if chosen:
        report.sections += image_sections(study, chosen)
    if study.task == "binary" and best is not None:
        run = representative(study, best)
        item = Chosen("best", run, run_title(run, int(configs.loc[best, "n"])))
        report.sections.append(threshold_section(study, item))
    if study.task == "multiclass" and chosen:
        report.sections.append(class_section(study, chosen))
    if "importance" in extra:
        importance, report.importance = importance_section(study, rebuilt)
        report.sections.append(importance)
    if "history" in extra:
        report.sections.append(_history_section(study, drawn))
    report.footer = excluded_summary(study)
    report.figures = [p for s in report.sections for _, p in s.figures]
    return report


def _figures(study: StudyRuns, configs: pd.DataFrame, front: pd.Series | None,
             rebuilt: Rebuilt | None, prefix: Path | None, drawer: Drawer) -> dict[str, Path]:
    """Hand every figure to ``drawer`` before any table is built (a helper draws them
    meanwhile); returns each figure's path by name (pareto, history, parallel)."""
    drawn: dict[str, Path] = {}
    if prefix is None or configs.empty:
        return drawn
    if "history" in study.kind.sections:  # the slowest figure first
        trials = rebuilt.get_trials(deepcopy=False) if rebuilt is not None else []
        if len(trials) >= 2 and trials[0].params:
            drawn["parallel"] = drawer.draw("parallel_plot", rebuilt, study.objective,
                                            _png(prefix, "parallel"))
        frame = history_frame(study, configs)
        if not frame.empty:
            drawn["history"] = drawer.draw("history_plot", frame, study.objective,
                                           _png(prefix, "history"))
    if front is not None and front.any():
        drawn["pareto"] = drawer.draw("pareto_plot", configs, front, pareto_axes(study),
                                      _png(prefix, "pareto"))
    return drawn


def _cost_sections(study: StudyRuns, configs: pd.DataFrame, front: pd.Series,
                   drawn: dict[str, Path]) -> list[Section]:
    """The efficiency ranking and the Pareto front (with its plot)."""
    pareto = pareto_section(study, configs, front)
    if "pareto" in drawn:
        pareto.figures.append((pareto.title, drawn["pareto"]))
    return [efficiency_section(study, configs, front), pareto]


def _png(prefix: Path, name: str) -> Path:
    prefix.parent.mkdir(parents=True, exist_ok=True)
    return prefix.with_name(f"{prefix.name}_{name}.png")


def _history_section(study: StudyRuns, drawn: dict[str, Path]) -> Section:
    """The optimisation history, with its plots."""
    history = Section("Optimisation history", [
        f"Final `{study.objective}` of each configuration in trial order, with the best so far; "
        "and the searched values of every configuration against the objective (parallel "
        "coordinates)."
    ])
    for name, title in (("history", "Optimisation history"),
                        ("parallel", "Parallel coordinates")):
        if name in drawn:
            history.figures.append((title, drawn[name]))
    return history


def render(report: Report, fmt: str = "md", base: Path | None = None) -> str:
    """The report as text in ``fmt`` (md, csv, latex, json, or html: figures embedded, so they
    must still exist)."""
    if fmt == "html":
        return export.html(report.title, report.header, report.sections, report.footer)
    if fmt == "csv":
        return export.csv_text(report.sections)
    if fmt == "json":
        return export.json_text(_summary(report), report.sections, report.footer)
    if fmt == "latex":
        return export.latex(report.study.name, report.sections, base)
    return export.markdown(report.title, report.header, report.sections, report.footer, base)


def _summary(report: Report) -> dict[str, object]:
    study = report.study
    return {
        "study": study.name, "title": report.title, "objective": study.objective,
        "direction": study.direction, "design": study.design, "task": study.task,
        "settings": report.settings.as_dict(), "header": report.header,
        "trivial": report.trivial,
    }


def write_report(
    stores: Stores,
    name: str,
    out: Path | None = None,
    fmt: str = "md",
    compare: str | None = None,
    trials: list[int] | None = None,
    reader: str = "auto",
    overrides: Mapping[str, object] | None = None,
    drawer: Drawer | None = None,
) -> tuple[str, list[Path]]:
    """Read ``name`` (and ``compare``) from MLflow and render the report. With ``out`` the text
    is written there (CSV: plus one ``<stem>_<table>.csv`` per table; md/LaTeX: plus the PNG
    figures; HTML: one file, its figures embedded); returns the text and every file written.
    ``reader``: see :func:`ablate.tracking.fetch`; ``overrides``: report settings replacing the
    study's (``alpha``, ``correction``, ``equivalence_margin``, ``target_effect``); ``drawer``:
    who draws the figures (default: this process)."""
    drawer = drawer or Drawer()
    study = load_runs(stores, name, reader)
    other = load_runs(stores, compare, reader) if compare else None
    settings = study.settings.override(**(overrides or {}))
    if fmt == "html":
        text, _ = html_report(study, other, trials, settings, drawer)
    else:
        figures = out.with_suffix("") if out is not None and fmt not in ("csv", "json") else None
        report = build(study, other, trials, figures, settings, drawer)
        if out is None and fmt in ("md", "latex"):
            report.footer.append(NO_FIGURES)
        text = render(report, fmt, out.parent if out is not None else None)
        drawer.close()  # the text links the figures: they exist before it is written
    if out is None:
        return text, []
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(out)
    if fmt == "html":
        return text, [out]
    written = [out, *report.figures]
    if fmt == "csv":
        written += export.csv_files(report.sections, out)
    return text, written


def html_report(study: StudyRuns, other: StudyRuns | None = None,
                trials: list[int] | None = None, settings: Settings | None = None,
                drawer: Drawer | None = None) -> tuple[str, Report]:
    """The whole report as one self-contained HTML document (figures drawn in a temporary
    folder and embedded), and the report it renders (its figures gone)."""
    import tempfile

    drawer = drawer or Drawer()
    with tempfile.TemporaryDirectory(prefix="ablate-report-") as tmp:
        report = build(study, other, trials, Path(tmp) / "report", settings, drawer)
        drawer.close()
        return render(report, "html"), report


def build_report(stores: Stores, name: str) -> str:
    """The markdown report of ``name`` (no figures)."""
    return write_report(stores, name)[0]
