"""A running study's summary in the MLflow UI, refreshed after finished trials.

Above both the study runner and the report: it reads the study back with the report code and
writes, through the tracking writer, the experiment's and the study run's descriptions (the
ablation table in markdown, one line on where the full report is), the study run's summary
metrics and best-run tags, every trial run's decision tags (its configuration's comparison with
the baseline, as the ablation table has it: ``ablate.decision``, ``ablate.delta``,
``ablate.ci``, ``ablate.p_adj``), and the full report as its ``report.html`` artifact. The CLI
hands :class:`Publisher` to the runner as its ``after_trial`` callback and calls
:meth:`Publisher.publish` once more at the end of ``study run``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ablate.reporting import assemble
from ablate.reporting.ablation import ablation_section, family
from ablate.reporting.configs import aggregate, baseline_label, best_label, ordered, representative
from ablate.reporting.export import markdown_table
from ablate.reporting.runs import StudyRuns, parse
from ablate.reporting.sections import NA, Section, interval, mean_std, num, signed
from ablate.reporting.trivial import trivial, trivial_line
from ablate.stores import Stores
from ablate.tracking import ArtifactReader, Tracker, fetch, names, notes

# Publishing may take at most this share of a worker's time: after a refresh that took t s,
# the next one waits until (1 / SHARE - 1) * t s have passed (every trial for small studies);
# the descriptions and the HTML report are paced apart (see Publisher).
SHARE = 0.05
TABLE_ROWS = 25  # at most this many configurations in the descriptions' table
_TABLE_BUDGET = notes.RUN_TAG_LIMIT - 2000  # characters left for the table in a run tag
# The ablation table's columns a description keeps (beside the configuration, its components
# and its objective's mean ± std): MLflow's renderer fits a table to the page's width, so the
# rest (gain, bootstrap interval, P(better), MDE, seeds needed) is left to the full report.
DESCRIPTION_COLUMNS = ("n", "seeds compared", "95% CI", "repeated CI", "p_adj", "decision")


def best_run(study: StudyRuns, configs: pd.DataFrame) -> tuple[str, pd.Series] | None:
    """The best configuration's label and the run that represents it: the one place that
    picks "best" for the UI."""
    label = best_label(study, configs)
    if label is None:
        return None
    run = representative(study, label)
    return None if run is None else (label, run)


def description_columns(table: pd.DataFrame, components: list[str]) -> pd.DataFrame:
    """The ablation table's columns a description shows: the configuration, its components,
    the objective's mean ± std (the first such column), the difference with the baseline and
    :data:`DESCRIPTION_COLUMNS`."""
    keep = ["config", *[c for c in components if c in table]]
    keep += [c for c in table.columns if c.endswith("(mean ± std)")][:1]
    keep += [c for c in table.columns if c.startswith("diff")]
    keep += [c for c in DESCRIPTION_COLUMNS if c in table]
    return table[list(dict.fromkeys(keep))]


def compact_table(section: Section, components: list[str] | None = None,
                  budget: int = _TABLE_BUDGET) -> tuple[str, int]:
    """The ablation table in markdown for MLflow's renderer (the description's columns, cells
    padded) with as many rows as fit (at most TABLE_ROWS), and how many rows it shows."""
    table = section.table.shown if section.table is not None else pd.DataFrame()
    if table.empty:
        return section.empty, 0
    table = description_columns(table, list(components or []))
    rows = min(len(table), TABLE_ROWS)
    while True:
        text = markdown_table(table.head(rows), padded=True)
        if len(text) <= budget or rows <= 1:
            return text, rows
        rows = max(1, rows * 2 // 3)


def decision_tags(section: Section, baseline: str | None) -> dict[str, dict[str, str]]:
    """The decision tags of each configuration of the ablation table (label -> tags): its
    comparison with the baseline as the table decides it (the baseline: ``baseline``, delta 0;
    a configuration not compared yet: ``pending``). Empty without a baseline (a search)."""
    data = section.table.data if section.table is not None else pd.DataFrame()
    if baseline is None or "decision" not in data:
        return {}
    out: dict[str, dict[str, str]] = {}
    for row in data.to_dict("records"):
        label = str(row["config"])
        if label == baseline:
            out[label] = {names.TAG_DECISION: names.DECISION_BASELINE, names.TAG_DELTA: "0"}
        elif not isinstance(row["decision"], str):
            out[label] = {names.TAG_DECISION: names.DECISION_PENDING, names.TAG_DELTA: NA}
        else:
            p_adj = float(row["p_adj"])
            out[label] = {
                names.TAG_DECISION: row["decision"],
                names.TAG_DELTA: signed(float(row["delta"])),
                names.TAG_CI: interval(float(row["ci_low"]), float(row["ci_high"])),
                names.TAG_P_ADJ: NA if math.isnan(p_adj) else num(p_adj, 3),
            }
    return out


def run_tags(study: StudyRuns, by_config: dict[str, dict[str, str]],
             current: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """The decision tags to write (run id -> tags): every trial run of a configuration in
    ``by_config`` whose tags in ``current`` (run id -> its tags now) differ."""
    out = {}
    for run_id, label in zip(study.runs["run_id"], study.runs["config"], strict=True):
        wanted = by_config.get(str(label))
        now = current.get(str(run_id), {})
        if wanted and any(now.get(k) != v for k, v in wanted.items()):
            out[str(run_id)] = wanted
    return out


def current_tags(frame: pd.DataFrame) -> dict[str, dict[str, str]]:
    """The decision tags each run of :func:`ablate.tracking.fetch`'s ``frame`` holds now."""
    columns = [f"tags.{k}" for k in names.DECISION_TAGS if f"tags.{k}" in frame]
    if frame.empty or not columns:
        return {}
    return {str(run_id): {c.removeprefix("tags."): v for c, v in zip(columns, values,
                                                                     strict=True)
                          if isinstance(v, str)}
            for run_id, *values in frame[["run_id", *columns]].itertuples(index=False)}


def _counts(study: StudyRuns) -> dict[str, int]:
    states = study.runs["state"].value_counts() if not study.runs.empty else {}
    return {"complete": len(study.complete()), "pruned": int(states.get("PRUNED", 0)),
            "failed": int(states.get("FAIL", 0)), "running": int(states.get("RUNNING", 0))}


def describe(study: StudyRuns, configs: pd.DataFrame, section: Section, parent: Any,
             best: tuple[str, pd.Series] | None) -> str:
    """The study's description (markdown): a summary line, the spec's description, the
    compact ablation table, where the full report is, what ``val_`` figures measure.
    ``parent``: the study run (the MLflow ``Run`` of :meth:`Tracker.find_parent`); ``best``:
    see :func:`best_run`."""
    counts = _counts(study)
    head = (f"**{study.name}** · {study.design}, objective `{study.objective}` "
            f"({study.direction}) · {counts['complete']} complete, {counts['pruned']} pruned, "
            f"{counts['failed']} failed" + (f", {counts['running']} running"
                                           if counts["running"] else ""))
    experiment = parent.info.experiment_id
    if best is not None:
        label, run = best
        value = mean_std(configs.loc[label, "mean." + study.objective],
                         configs.loc[label, "std." + study.objective])
        link = names.run_page(experiment, run["run_id"])
        head += f" · best [`{label}`]({link}): {study.objective} {value}"
    table, shown = compact_table(section, study.components)
    lines = [head]
    if parent.data.tags.get(names.TAG_SPEC_DESCRIPTION):
        lines.append(parent.data.tags[names.TAG_SPEC_DESCRIPTION])
    lines.append(table)
    baselines = trivial(study, configs)  # one artifact read: the best run's counts
    if baselines is not None:
        lines.append(trivial_line(baselines))
    if shown < len(configs):
        lines.append(f"The first {shown} of {len(configs)} configurations; all of them are in "
                     "the full report.")
    report = names.run_page(experiment, parent.info.run_id, names.REPORT_ARTIFACT)
    lines.append(f"Full report (every table and plot): [`{names.REPORT_ARTIFACT}`]({report}) in "
                 f"the study run's artifacts, or `ablate report {study.name} --format html "
                 f"--out {study.name}.html`.")
    if study.objective.startswith("val_"):
        full = parent.data.params.get(names.SPEC_PARAM_PREFIX + "eval.full_resolution")
        where = "at the model's input size" if full == "False" else "at full resolution"
        lines.append(f"`{study.objective}` (`{names.metric_key(study.objective)}`) is measured "
                     f"{where} with the best epoch's weights; the "
                     f"`{names.epoch_key(study.objective)}` curves at the model's input size, "
                     "after each epoch.")
    return "\n\n".join(lines)


def summarize(study: StudyRuns, parent: Any, html: bool = True,
              current: dict[str, dict[str, str]] | None = None) -> notes.Summary:
    """The study's summary for the UI (``parent``: the study run; ``html``: with the full
    report; ``current``: the decision tags the runs hold now, see :func:`current_tags`)."""
    configs = ordered(study, aggregate(study))
    baseline = baseline_label(study, configs)
    rows = family(study, configs, baseline, study.settings)
    section = ablation_section(study, configs, baseline, rows, study.settings)
    counts = _counts(study)
    metrics = {names.study_key(f"trials_{state}"): float(n) for state, n in counts.items()
               if state != "running"}
    tags: dict[str, str] = {}
    best = best_run(study, configs)
    if best is not None:
        label, run = best
        metrics[names.study_key("best_" + study.objective)] = float(
            configs.loc[label, "mean." + study.objective])
        tags = {names.TAG_BEST_RUN: str(run["run_id"]), names.TAG_BEST_CONFIG: label}
    summary = notes.Summary(description=describe(study, configs, section, parent, best),
                            tags=tags, metrics=metrics, step=counts["complete"],
                            run_tags=run_tags(study, decision_tags(section, baseline),
                                              current or {}))
    if html:
        add_report(summary, study)
    return summary


def add_report(summary: notes.Summary, study: StudyRuns) -> None:
    """Put the full HTML report in ``summary``, and the importances it computed in its tags
    (a later ``ablate report`` on the same trials reuses them instead of importing
    scikit-learn and fitting the forest again)."""
    summary.html, report = assemble.html_report(study)
    if report.importance is not None and report.importance != study.stored_importance:
        value = json.dumps(report.importance)
        if len(value) <= notes.RUN_TAG_LIMIT:
            summary.tags[names.TAG_IMPORTANCE] = value


@dataclass
class Pace:
    """When a refresh of one part is due again: it may take at most SHARE of the time."""

    cost: float = 0.0  # seconds its last refresh took (0: the first, which paid the imports)
    last: float | None = None  # when that refresh ended (monotonic)

    def due(self, now: float) -> bool:
        return self.last is None or now - self.last >= self.cost * (1 / SHARE - 1)

    def record(self, seconds: float) -> None:
        self.cost = seconds if self.last is not None else 0.0
        self.last = time.monotonic()


class Publisher:
    """Refreshes a study's summary in MLflow; usable as the runner's ``after_trial`` callback.

    The descriptions and study metrics (cheap) and the HTML report (the whole report) are
    paced apart, each to at most SHARE of the worker's time, so the table stays current on
    large studies. It never fails a trial: an error while publishing is one warning line.
    """

    def __init__(self, stores: Stores, study: str | None = None,
                 echo: Callable[[str], None] = print):
        self.stores = stores
        self.study = study  # None: taken from the first finished trial's Optuna study
        self.echo = echo
        self.summary_pace = Pace()
        self.report_pace = Pace()
        self._tracker: Tracker | None = None

    def __call__(self, study: Any, trial: Any = None) -> None:
        """After a finished trial of the Optuna ``study``: refresh what is due."""
        self.study = study.study_name
        now = time.monotonic()
        html = self.report_pace.due(now)
        if html or self.summary_pace.due(now):
            self.publish(html)

    def publish(self, html: bool = True) -> float | None:
        """Refresh now (``html``: the report too); returns the seconds it took (None: it
        failed, with a warning)."""
        started = time.monotonic()
        try:
            spent = self._publish(html)
        except Exception as err:  # noqa: BLE001 - publishing must never fail a trial or a study
            first = str(err).splitlines()[0][:200] if str(err) else ""
            self.echo(f"warning: the study summary in MLflow was not refreshed "
                      f"({type(err).__name__}: {first})")
            return None
        total = time.monotonic() - started
        self.summary_pace.record(total - spent)
        if html:
            self.report_pace.record(spent)
        return total

    def _publish(self, html: bool) -> float:
        """Publish; returns the seconds the HTML report took."""
        if self.study is None:
            return 0.0
        if self._tracker is None:
            self._tracker = Tracker(self.stores)
        parent = self._tracker.find_parent(self.study)
        if parent is None:
            return 0.0
        frame = fetch(self.stores, self.study)
        study = parse(frame, self.study, self.stores.tracking_uri)
        study.artifacts = ArtifactReader(self.stores)
        if study.runs.empty:
            return 0.0
        summary = summarize(study, parent, html=False, current=current_tags(frame))
        started = time.monotonic()
        if html:
            add_report(summary, study)
        spent = time.monotonic() - started
        self._tracker.publish(parent, summary)
        return spent
