"""Read a study's tracked runs back from MLflow, in bulk (one paged search, not one call per run).

Every trial run becomes one row: ``run_id``, ``start_time``, the derived columns ``trial``,
``state``, ``reason``, ``config``, ``repeat``, ``seed``, ``reproducible`` (bit for bit where
it trained: ``ablate.applied.reproducible``), one bool column per component
(``comp.<name>``), one column per searched non-bool value (``value.<path>``), the digest of
each split's data (``data.<split>``), and its final metrics as ``metrics.<name>`` (per-epoch
``epoch/...`` curves are dropped).

Each (configuration, repeat) counts once: its latest COMPLETE run (a retried attempt replaces a
dead one). Search-design runs without a configuration label are their own configuration,
``trial-<number>``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ablate.designs import Design, design_kind
from ablate.errors import AblateError
from ablate.reporting.settings import Settings, from_tags
from ablate.stores import Stores
from ablate.tracking import ArtifactReader, fetch
from ablate.tracking import names as keys

COMP = "comp."
VALUE = "value."
DATA = "data."  # data.<split>: the digest of the data the run saw
_STATUS_STATE = {"FINISHED": "COMPLETE", "FAILED": "FAIL", "KILLED": "FAIL"}


@dataclass
class StudyRuns:
    """The trial runs of one study as a table, and what the parent run says about the study."""

    name: str
    task: str
    objective: str
    direction: str
    runs: pd.DataFrame
    search: dict[str, str] = field(default_factory=dict)  # dotted path -> distribution type
    classes: list[str] = field(default_factory=list)
    design: str = "search"
    baseline: str | None = None
    components: list[str] = field(default_factory=list)  # the Y/N columns, in design order
    objectives: list[dict[str, str]] = field(default_factory=list)
    thresholds: list[float] = field(default_factory=lambda: list(keys.DEFAULT_THRESHOLDS))
    log_scale: dict[str, bool] = field(default_factory=dict)  # float paths the spec samples in log
    # The recorded search space, {path: {type, low, high, log, step, choices}} (empty for
    # stores written before it was recorded whole)
    space: dict[str, dict[str, Any]] = field(default_factory=dict)
    settings: Settings = field(default_factory=Settings)  # how the report decides
    # fANOVA importances the study stored with the digest of their inputs (TAG_IMPORTANCE)
    stored_importance: dict[str, Any] = field(default_factory=dict)
    artifacts: ArtifactReader | None = field(default=None, repr=False, compare=False)
    _complete: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"

    @property
    def kind(self) -> Design:
        """The design kind the study ran (:mod:`ablate.designs`)."""
        return design_kind(self.design)

    @property
    def values(self) -> list[str]:
        """Searched non-bool paths (numeric and categorical), shown next to the toggles."""
        return [p for p, kind in self.search.items() if kind != "bool"]

    def complete(self) -> pd.DataFrame:
        """One run per (configuration, repeat): the latest COMPLETE one (computed once)."""
        if self._complete is None:
            done = self.runs[self.runs["state"] == "COMPLETE"].sort_values("start_time",
                                                                           kind="stable")
            self._complete = done.drop_duplicates(subset=["config", "repeat"], keep="last")
        return self._complete

    def not_complete(self) -> pd.DataFrame:
        """Failed, pruned and unfinished attempts, with ``retried``: their (configuration,
        repeat) has a COMPLETE run."""
        done = self.complete()
        finished = set(zip(done["config"], done["repeat"], strict=True))
        rest = self.runs[self.runs["state"] != "COMPLETE"].copy()
        rest["retried"] = [
            (c, r) in finished for c, r in zip(rest["config"], rest["repeat"], strict=True)
        ]
        return rest

    def metric(self, name: str) -> str:
        """The column of a final metric."""
        return f"metrics.{name}"


def _json(raw: Any, default: Any) -> Any:
    if not isinstance(raw, str) or not raw:
        return default
    try:
        return json.loads(raw)
    except ValueError:
        return default


def _truthy(value: Any) -> bool | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "y")
    return bool(value)


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame[name] if name in frame else pd.Series(None, index=frame.index, dtype=object)


def _trials(frame: pd.DataFrame, search: dict[str, str], components: list[str]) -> pd.DataFrame:
    """Derived columns of the trial runs (see the module docstring)."""
    def tag(name: str) -> pd.Series:
        return _column(frame, f"tags.{name}")

    out = frame[["run_id", "start_time", "status"]].copy()
    out["artifact_uri"] = _column(frame, "artifact_uri")
    out["trial"] = pd.to_numeric(tag(keys.TAG_TRIAL), errors="coerce").astype("Int64")
    # the tag says; MLflow's status where the tag is missing or a closed run still says RUNNING
    status = frame["status"].map(_STATUS_STATE).fillna("RUNNING")
    state = tag(keys.TAG_STATE)
    stale = state.eq("RUNNING") & status.eq("FAIL")
    out["state"] = state.where(state.notna() & ~stale, status)
    out["reason"] = tag(keys.TAG_REASON).fillna("")
    fallback = [keys.trial_label(int(t)) if t is not pd.NA else "run-" + r[:8]
                for t, r in zip(out["trial"], out["run_id"], strict=True)]
    config = tag(keys.TAG_CONFIG)
    out["config"] = config.where(config.notna(), pd.Series(fallback, index=frame.index))
    out["repeat"] = tag(keys.TAG_REPEAT).fillna("0").astype(str)
    out["seed"] = tag(keys.TAG_SEED)
    # bit-reproducible where it trained (runs logged before the tag existed count as such)
    out["reproducible"] = ~tag(keys.TAG_REPRODUCIBLE).fillna("").astype(str).str.startswith("no")
    parsed = [_json(raw, {}) for raw in tag(keys.TAG_COMPONENTS)]
    extra: dict[str, list[Any]] = {}
    for name in components:
        if name in search:  # a searched bool toggle
            values = [_truthy(_json(v, v)) for v in tag(keys.SEARCHED_PREFIX + name)]
        else:
            values = [_truthy(p.get(name)) if isinstance(p, dict) else None for p in parsed]
        extra[COMP + name] = values
    for path, kind in search.items():
        if kind != "bool":
            searched, param = tag(keys.SEARCHED_PREFIX + path), _column(frame, f"params.{path}")
            extra[VALUE + path] = [_json(s, p) if isinstance(s, str) else p
                                   for s, p in zip(searched, param, strict=True)]
    for column in frame.columns:  # the digest of each split's data (ablate.data.<split>)
        if column.startswith("tags." + keys.DATA_PREFIX):
            extra[DATA + column.removeprefix("tags." + keys.DATA_PREFIX)] = list(frame[column])
    metrics = [c for c in frame.columns if c.startswith("metrics.")]
    return pd.concat([out, pd.DataFrame(extra, index=frame.index), frame[metrics]], axis=1)


def parse(frame: pd.DataFrame, study: str, where: str = "the tracking store") -> StudyRuns:
    """A :class:`StudyRuns` from the rows of :func:`fetch`."""
    role = f"tags.{keys.TAG_ROLE}"
    if frame.empty or role not in frame:
        raise AblateError(f"study '{study}' has no tracked runs in {where} yet")
    parents = frame[frame[role] == "parent"].sort_values("start_time")
    if parents.empty:
        raise AblateError(f"study '{study}' has no parent run in {where}")
    parent = parents.iloc[0]

    def tag(name: str) -> Any:
        value = parent.get(f"tags.{name}")
        return None if value is None or value != value else value

    raw_search = _json(tag(keys.TAG_SEARCH), {})
    # {path: "float"} (or {path: {"type": "float", "log": true, ...}}: the log flag is used)
    search = {p: str(v.get("type", "")) if isinstance(v, dict) else str(v)
              for p, v in raw_search.items()}
    log_scale = {p: bool(v["log"]) for p, v in raw_search.items()
                 if isinstance(v, dict) and "log" in v}
    design = tag(keys.TAG_DESIGN) or "search"
    components = _json(tag(keys.TAG_COMPONENTS), [])
    trials = frame[frame[role] == "trial"].reset_index(drop=True)
    if design_kind(design).sampled:  # its toggles are the searched bools
        components = [p for p, kind in search.items() if kind == "bool"]
    elif not components:  # no list on the parent: the names the runs carry, first seen first
        seen = (_json(raw, {}) for raw in _column(trials, f"tags.{keys.TAG_COMPONENTS}"))
        components = list(dict.fromkeys(k for p in seen if isinstance(p, dict) for k in p))
    objective = tag(keys.TAG_OBJECTIVE) or "val_iou"
    direction = tag(keys.TAG_DIRECTION) or "maximize"
    objectives = _json(tag(keys.TAG_OBJECTIVES), [])
    thresholds = [float(t) for t in
                  _json(tag(keys.TAG_THRESHOLDS), None) or keys.DEFAULT_THRESHOLDS]
    return StudyRuns(
        name=study,
        task=tag(keys.TAG_TASK) or "binary",
        objective=objective,
        direction=direction,
        runs=_trials(trials, search, list(components)),
        search=search,
        classes=_json(tag(keys.TAG_CLASSES), []),
        design=design,
        baseline=tag(keys.TAG_BASELINE),
        components=list(components),
        objectives=[o for o in objectives if isinstance(o, dict) and "metric" in o],
        thresholds=thresholds,
        log_scale=log_scale,
        space={p: v for p, v in raw_search.items()
               if isinstance(v, dict) and ("low" in v or "choices" in v)},
        settings=from_tags(tag(keys.TAG_REPORT), tag(keys.TAG_REPEATS)),
        stored_importance=_json(tag(keys.TAG_IMPORTANCE), {}),
    )


def load_runs(stores: Stores, study: str, reader: str = "auto") -> StudyRuns:
    """All trial runs of ``study`` from the tracking store, and the parent's description."""
    runs = parse(fetch(stores, study, reader), study, stores.tracking_uri)
    runs.artifacts = ArtifactReader(stores)
    return runs
