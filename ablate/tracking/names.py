"""The tracking contract: every MLflow name that the writer and the readers share.

One experiment per study; one parent run per study (role ``parent``); one child run per trial
(role ``trial``) or per ``ablate train`` (role ``train``). What a run holds:

- **tags** ``ablate.*`` (below) and MLflow's own (``mlflow.parentRunId``, ``mlflow.note.content``);
- **params**: the flattened resolved configuration (:func:`flatten`), ``optim.lr`` etc.;
- **metrics**: per-epoch curves under ``epoch/`` (:func:`epoch_key`, step = the epoch's number,
  1-based), final per-split numbers under ``train/``, ``val/``, ``test/`` (per-class confusion
  counts under ``<split>_counts/``) and model and run figures under ``model/`` and ``run/``
  (:func:`metric_key`);
- **artifacts**: the files named ``*_ARTIFACT`` below.

Readers (the report, ``predict``, recovery) use these names and nothing else.
"""

from __future__ import annotations

import json
from typing import Any

from ablate.naming import SPLITS

# ------------------------------------------------------------------------------------- tags
TAG_STUDY = "ablate.study"
TAG_ROLE = "ablate.role"  # parent | trial | train | rerun
TAG_TRIAL = "ablate.trial"
TAG_STATE = "ablate.state"  # RUNNING | COMPLETE | PRUNED | FAIL
TAG_REASON = "ablate.reason"
TAG_TASK = "ablate.task"
TAG_OBJECTIVE = "ablate.objective"
TAG_DIRECTION = "ablate.direction"
# parent: JSON {dotted path: {type, low, high, log, step, choices}} (the whole search space;
# stores written before it was recorded whole hold {dotted path: type})
TAG_SEARCH = "ablate.search"
TAG_CLASSES = "ablate.classes"  # parent: JSON list of class names
TAG_DESIGN = "ablate.design"  # parent: search | one_at_a_time | cumulative | factorial
TAG_CONFIG = "ablate.config"  # configuration label: "baseline", "+hflip", "trial-007"
TAG_REPEAT = "ablate.repeat"  # 0..repeats-1 (runs of one TAG_CONFIG are its repeats)
TAG_SEED = "ablate.seed"
TAG_BASELINE = "ablate.baseline"  # parent: label of the baseline configuration
TAG_COMPONENTS = "ablate.components"  # parent: JSON list of names; run: JSON {name: bool}
TAG_OBJECTIVES = "ablate.objectives"  # parent: JSON [{"metric", "direction"}, ...]
TAG_THRESHOLDS = "ablate.thresholds"  # parent: JSON list of scanned binary thresholds
# parent: JSON of the spec's report section {"correction", "alpha", "equivalence_margin",
# "target_effect"}: how the report decides (the CLI may override it)
TAG_REPORT = "ablate.report"
# parent: JSON of design.repeats: an integer (fixed) or {"min", "max"} (adaptive repeats)
TAG_REPEATS = "ablate.repeats"
# run: the epochs an earlier attempt of its trial finished, which this run continued from
# (its curves hold those epochs too: see ablate.study.resume)
TAG_RESUMED_FROM = "ablate.resumed_from_epoch"
TAG_OOM_BATCH = "ablate.oom_retry_batch_size"
TAG_OOM_ACCUM = "ablate.oom_retry_grad_accum"
TAG_OOM_EVAL_BATCH = "ablate.oom_retry_eval_batch_size"  # when data.eval_batch_size is set
SEARCHED_PREFIX = "ablate.searched."  # run: one tag per sampled value, JSON
# run: the environment it trained in, one tag per entry (ablate.environment.collect):
# ablate.env.torch, ablate.env.device, ablate.env.git_commit, ablate.env.spec_path, ...
ENV_PREFIX = "ablate.env."
# run: the digest of each split's data, ablate.data.<split> (also an MLflow dataset input with
# its profile; ablate.data.fingerprint)
DATA_PREFIX = "ablate.data."
TAG_SPEC_PATH = "ablate.spec_path"  # parent: the spec file the study was created from
TAG_RERUN_OF = "ablate.rerun_of"  # rerun: the id of the run it trains again
# run: why its model.pt was deleted (eval.save_weights: best keeps the weights of the run
# representing each configuration only)
TAG_WEIGHTS = "ablate.weights"
# run: a setting that did not apply on its device, switched off in its params and config
# (ablate.ignored.optim.amp = "CPU: mixed precision is CUDA-only")
IGNORED_PREFIX = "ablate.ignored."
COMPONENT_PREFIX = "ablate.component."  # run: one tag per design component, Y or N
# run: the autocast dtype its GPU ran (bf16 | fp16 | none), set before training starts
TAG_AMP_DTYPE = "ablate.amp_dtype"
# run: how it trained where the configuration does not say (TrainResult.applied), one tag
# per entry: ablate.applied.loader_workers (the data.num_workers that applied),
# ablate.applied.reproducible ("same machine" | "same GPU model" | "no: why"),
# ablate.applied.latency (only when the figure was timed beside another worker's training,
# or not measured)
APPLIED_PREFIX = "ablate.applied."
TAG_REPRODUCIBLE = APPLIED_PREFIX + "reproducible"
TAG_BEST_RUN = "ablate.best_run"  # parent: run id of the best configuration's run
TAG_BEST_CONFIG = "ablate.best_config"  # parent: label of the best configuration
# parent: the search's fANOVA importances, {"key": digest of their inputs, "scores": {...}},
# stored when the study publishes its report; a report whose inputs match reuses them
TAG_IMPORTANCE = "ablate.importance"
TAG_SPEC_DESCRIPTION = "ablate.description"  # parent: the spec's description
# run: its configuration's comparison with the baseline, as the report decides it; written on
# every trial run of the configuration by the study's publisher (ablate.reporting.publish) and
# refreshed as trials finish. Text, as the runs table shows, sorts and filters them:
TAG_DECISION = "ablate.decision"  # better | worse | identical | equivalent | undecided | baseline
TAG_DELTA = "ablate.delta"  # mean per-seed difference, configuration minus baseline: "+0.0123"
TAG_CI = "ablate.ci"  # its confidence interval, "[-0.004, +0.029]" (the report's 95% CI column)
TAG_P_ADJ = "ablate.p_adj"  # the adjusted p-value ("n/a" for adaptive repeats' sequential tests)
DECISION_TAGS = (TAG_DECISION, TAG_DELTA, TAG_CI, TAG_P_ADJ)
DECISION_BASELINE = "baseline"  # TAG_DECISION of the baseline's own runs
DECISION_PENDING = "pending"  # TAG_DECISION before a configuration can be compared
TAG_PARENT = "mlflow.parentRunId"
# MLflow's description of a run or an experiment (markdown; the UI shows it on the run's
# overview and above the experiment's runs)
TAG_NOTE = "mlflow.note.content"
TAG_SOURCE_NAME = "mlflow.source.name"  # the spec file (or stored study) a run came from
TAG_SOURCE_TYPE = "mlflow.source.type"
SOURCE_TYPE = "LOCAL"
# experiment: what kind of work it holds (MLflow 3 tells model training from GenAI by it)
TAG_EXPERIMENT_KIND = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"

ROLE_PARENT, ROLE_TRIAL, ROLE_TRAIN, ROLE_RERUN = "parent", "trial", "train", "rerun"


def trial_label(number: int) -> str:
    """The name of Optuna trial ``number`` wherever ablate shows one: the run name of its
    first repeat and the configuration label of a search trial, ``trial-007``."""
    return f"trial-{number:03d}"


def trial_run_name(number: int, repeat: int | None = None) -> str:
    """A trial run's name: :func:`trial_label`, with ``-r<repeat>`` when one trial trains
    several repeats (a search with repeats)."""
    return trial_label(number) + ("" if repeat is None else f"-r{repeat}")

STATES = ("RUNNING", "COMPLETE", "PRUNED", "FAIL")
# Parent-run params are the study's base spec, each named ``spec.<dotted path>`` so that they
# are never read as values a trial ran with.
SPEC_PARAM_PREFIX = "spec."

# ---------------------------------------------------------------------------------- metrics
# A final number has a name in a spec and the report (``val_iou``, ``gflops``) and an MLflow key
# grouped by its prefix before "/" (``val/iou``, ``model/gflops``): the MLflow UI shows one
# chart section per group. Curves per epoch are ``epoch/<name>``. Stores written before the
# groups existed used the names themselves as keys; :func:`metric_name` reads both.
EPOCH_PREFIX = "epoch/"
# Model and run figures, logged once per run, and their keys.
FIGURE_KEYS = {
    "params": "model/params",
    "gflops": "model/gflops",
    "efficiency": "model/efficiency",
    "model_size_mb": "model/size_mb",
    "latency_ms": "model/latency_ms",  # median of the timed batch-1 passes
    "latency_iqr_ms": "model/latency_iqr_ms",  # their interquartile range (p75 - p25)
    "train_seconds": "run/train_seconds",
    "images_per_second": "run/images_per_second",
    "best_epoch": "run/best_epoch",
    "epochs_run": "run/epochs_run",
    "peak_memory_mb": "run/peak_memory_mb",
}
FIGURES = tuple(FIGURE_KEYS)
# Figures measured on the machine rather than computed from the data and weights: they differ
# between two runs that are otherwise bit-identical (ablate rerun --check leaves them out).
MEASURED = ("train_seconds", "images_per_second", "latency_ms", "latency_iqr_ms",
            "peak_memory_mb")
_FIGURE_NAMES = {key: name for name, key in FIGURE_KEYS.items()}
# Confusion counts over a whole split, metrics of every run: ``<split>/tp`` ... ``<split>/tn``
# (binary: of the positive class; multiclass: summed over the classes) beside the split's
# scores, and (multiclass) per class ``<split>_counts/tp_<class>``, ``fp_``, ``fn_`` in a chart
# section of their own per split, so that the split's section stays a screen of scores.
COUNTS = ("tp", "fp", "fn", "tn")
CLASS_COUNTS = ("tp", "fp", "fn")
CLASS_COUNTS_GROUP = "{split}_counts"
# A split's class balance (binary: positive_ratio; multiclass: frac_<class>): in
# BALANCE_ARTIFACT, not metrics (class fractions are also in the dataset inputs' profiles).
BALANCE = ("images", "pixels", "positive_ratio")
FRACTION_PREFIX = "frac_"
DEFAULT_THRESHOLDS = (0.25, 0.5, 0.75)
FLOP_CONVENTION = "fvcore FLOPs: one multiply-add counts as one FLOP"


# The study (parent) run's summary, refreshed after finished trials: ``study/best_<objective>``
# (the best configuration's mean, logged at step = complete runs, so the chart is the history)
# and ``study/trials_<state>`` (runs per state; retried attempts count).
STUDY_PREFIX = "study/"


def study_key(name: str) -> str:
    """Metric key of a study summary figure, e.g. ``study/trials_complete``."""
    return STUDY_PREFIX + name


def applied_tag(key: str) -> str:
    """Tag of one entry of a run's ``TrainResult.applied``, e.g. ``ablate.applied.latency``."""
    return APPLIED_PREFIX + key


def epoch_key(name: str) -> str:
    """Metric key of a per-epoch curve, e.g. ``epoch/val_loss`` (at the model's input size)."""
    return EPOCH_PREFIX + name


def split_key(split: str, metric: str) -> str:
    """Name of a final per-split number, e.g. ``val_iou`` (its key: :func:`metric_key`)."""
    return f"{split}_{metric}"


def is_class_count(metric: str) -> bool:
    """Whether a split's metric is a per-class count (``tp_<class>``, ``fp_``, ``fn_``)."""
    return metric.startswith(tuple(f"{c}_" for c in CLASS_COUNTS))


def metric_key(name: str) -> str:
    """The MLflow key of a final number given by its name: ``val_iou`` -> ``val/iou``,
    ``val_tp_road`` -> ``val_counts/tp_road``, ``gflops`` -> ``model/gflops``."""
    if name in FIGURE_KEYS:
        return FIGURE_KEYS[name]
    split, sep, metric = name.partition("_")
    if not sep or split not in SPLITS:
        return name
    group = CLASS_COUNTS_GROUP.format(split=split) if is_class_count(metric) else split
    return f"{group}/{metric}"


def metric_name(key: str) -> str:
    """The name of a final number's MLflow key (inverse of :func:`metric_key`; keys of
    stores written before the groups existed are names already)."""
    if key in _FIGURE_NAMES:
        return _FIGURE_NAMES[key]
    group, sep, metric = key.partition("/")
    if not sep:
        return key
    if group in SPLITS:
        return f"{group}_{metric}"
    split = group.removesuffix(CLASS_COUNTS_GROUP.format(split=""))
    if split in SPLITS and group == CLASS_COUNTS_GROUP.format(split=split):
        return f"{split}_{metric}"
    return key


def threshold_key(split: str, threshold: float, count: str) -> str:
    """Name of a confusion count at a scanned threshold, ``val_thr0.25_tp``: a metric in stores
    written before the counts moved to :data:`THRESHOLDS_ARTIFACT`."""
    return f"{split}_thr{threshold:g}_{count}"


# -------------------------------------------------------------------------------- artifacts
SPEC_ARTIFACT = "spec.yaml"  # parent: the study spec
CONFIG_ARTIFACT = "config.yaml"  # run: the resolved configuration that trained it
MODEL_ARTIFACT = "model.pt"  # run: the evaluated weights (eval.save_weights, TAG_WEIGHTS)
MATRICES_ARTIFACT = "confusion_matrices.json"  # run: full confusion matrix per split
NORMALISATION_ARTIFACT = "normalisation.json"  # run: per-channel mean/std of the train split
TRACEBACK_ARTIFACT = "traceback.txt"  # failed run
# run of a model.custom: the source of the class (or function) it names, to reproduce it
MODEL_SOURCE_ARTIFACT = "model_source.py"
# binary: {split: {threshold: {"tp", "fp", "fn", "tn"}}}, confusion counts at each scanned
# threshold (the report's threshold scan)
THRESHOLDS_ARTIFACT = "thresholds.json"
# run: TP/FP/FN/TN of every val and test image (ablate.result.ImageCounts.to_npz: arrays
# "classes", "scored", "<split>_counts" (N, K, 4) and "<split>_names")
IMAGE_COUNTS_ARTIFACT = "image_counts.npz"
GIT_DIFF_ARTIFACT = "git_diff.patch"  # run: uncommitted changes of the spec's work tree


def env_tag(key: str) -> str:
    """The tag of one environment entry, e.g. ``ablate.env.torch``."""
    return ENV_PREFIX + key


def ignored_tag(path: str) -> str:
    """The tag saying why a setting did not apply, e.g. ``ablate.ignored.optim.amp``."""
    return IGNORED_PREFIX + path


def data_tag(split: str) -> str:
    """The tag holding the digest of a split's data, e.g. ``ablate.data.train``."""
    return DATA_PREFIX + split
BALANCE_ARTIFACT = "class_balance.json"  # run: {split: {images, pixels, class fractions}}
REPORT_ARTIFACT = "report.html"  # parent: the full report, one self-contained HTML file

# ----------------------------------------------------------------------------------- params
PARAM_VALUE_LIMIT = 6000  # MLflow's longest param value
TAG_VALUE_LIMIT = 8000  # MLflow's longest tag value


def flatten(data: Any, prefix: str = "") -> dict[str, str]:
    """Nested config -> ``{"optim.lr": "0.001", ...}``; lists become JSON."""
    out: dict[str, str] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
    else:
        out[prefix.rstrip(".")] = json.dumps(data) if isinstance(data, list | tuple) else str(data)
    return out


# --------------------------------------------------------------------------- UI addresses
# MLflow 3's UI opens an experiment on its GenAI pages unless the address says otherwise; every
# address ablate prints carries this. A saved view of the runs (columns, sort, charts) is the
# experiment tag ``VIEW_TAG_PREFIX + VIEW_KEY``, opened by ``viewStateShareKey=VIEW_KEY``.
WORKFLOW_QUERY = "workflowType=machine_learning"
VIEW_TAG_PREFIX = "mlflow.sharedViewState."
VIEW_KEY = "ablate"
TAG_VIEW = VIEW_TAG_PREFIX + VIEW_KEY


def runs_page(experiment_id: str, view: bool = False) -> str:
    """The UI address (after the server) of an experiment's runs, in ablate's saved view."""
    query = f"viewStateShareKey={VIEW_KEY}&" if view else ""
    return f"#/experiments/{experiment_id}/runs?{query}{WORKFLOW_QUERY}"


def run_page(experiment_id: str, run_id: str, artifact: str | None = None) -> str:
    """The UI address of a run's overview, or of one of its artifacts."""
    tail = f"/artifacts/{artifact}" if artifact else ""
    return f"#/experiments/{experiment_id}/runs/{run_id}{tail}?{WORKFLOW_QUERY}"
