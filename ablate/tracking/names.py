"""The tracking contract: every MLflow name that the writer and the readers share.

One experiment per study; one parent run per study (role ``parent``); one child run per trial
(role ``trial``) or per ``ablate train`` (role ``train``). What a run holds:

- **tags** ``ablate.*`` (below) and MLflow's own (``mlflow.parentRunId``, ``mlflow.note.content``);
- **params**: the flattened resolved configuration (:func:`flatten`), ``optim.lr`` etc.;
- **metrics**: per-epoch curves under ``epoch/`` (:func:`epoch_key`), final per-split numbers
  (:func:`split_key`), model and run figures (:data:`FIGURES`), and for binary tasks the
  confusion counts at each scanned threshold (:func:`threshold_key`);
- **artifacts**: the files named ``*_ARTIFACT`` below.

Readers (the report, ``predict``, recovery) use these names and nothing else.
"""

from __future__ import annotations

import json
from typing import Any

# ------------------------------------------------------------------------------------- tags
TAG_STUDY = "ablate.study"
TAG_ROLE = "ablate.role"  # parent | trial | train
TAG_TRIAL = "ablate.trial"
TAG_STATE = "ablate.state"  # RUNNING | COMPLETE | PRUNED | FAIL
TAG_REASON = "ablate.reason"
TAG_TASK = "ablate.task"
TAG_OBJECTIVE = "ablate.objective"
TAG_DIRECTION = "ablate.direction"
TAG_SEARCH = "ablate.search"  # parent: JSON {dotted path: distribution type}
TAG_CLASSES = "ablate.classes"  # parent: JSON list of class names
TAG_DESIGN = "ablate.design"  # parent: search | one_at_a_time | cumulative | factorial
TAG_CONFIG = "ablate.config"  # configuration label: "baseline", "+hflip", "trial-7"
TAG_REPEAT = "ablate.repeat"  # 0..repeats-1 (runs of one TAG_CONFIG are its repeats)
TAG_SEED = "ablate.seed"
TAG_BASELINE = "ablate.baseline"  # parent: label of the baseline configuration
TAG_COMPONENTS = "ablate.components"  # parent: JSON list of names; run: JSON {name: bool}
TAG_OBJECTIVES = "ablate.objectives"  # parent: JSON [{"metric", "direction"}, ...]
TAG_THRESHOLDS = "ablate.thresholds"  # parent: JSON list of scanned binary thresholds
TAG_OOM_BATCH = "ablate.oom_retry_batch_size"
TAG_OOM_ACCUM = "ablate.oom_retry_grad_accum"
SEARCHED_PREFIX = "ablate.searched."  # run: one tag per sampled value, JSON
TAG_PARENT = "mlflow.parentRunId"
TAG_NOTE = "mlflow.note.content"  # MLflow's description of a run or an experiment

ROLE_PARENT, ROLE_TRIAL, ROLE_TRAIN = "parent", "trial", "train"
STATES = ("RUNNING", "COMPLETE", "PRUNED", "FAIL")

# ---------------------------------------------------------------------------------- metrics
EPOCH_PREFIX = "epoch/"
# Model and run figures, logged once per run under these names.
FIGURES = ("params", "gflops", "efficiency", "train_seconds", "images_per_second",
           "best_epoch", "epochs_run", "model_size_mb", "latency_ms", "peak_memory_mb")
COUNTS = ("tp", "fp", "fn", "tn")
DEFAULT_THRESHOLDS = (0.25, 0.5, 0.75)
FLOP_CONVENTION = "fvcore FLOPs: one multiply-add counts as one FLOP"


def epoch_key(name: str) -> str:
    """Metric name of a per-epoch curve, e.g. ``epoch/val_loss``."""
    return EPOCH_PREFIX + name


def split_key(split: str, metric: str) -> str:
    """Metric name of a final per-split number, e.g. ``val_iou``."""
    return f"{split}_{metric}"


def metric_key(name: str) -> str:
    """The MLflow key of a final number given by its name in a spec (``val_iou``)."""
    return name


def metric_name(key: str) -> str:
    """The name in a spec of a final number's MLflow key (inverse of :func:`metric_key`)."""
    return key


def threshold_key(split: str, threshold: float, count: str) -> str:
    """Metric name of a confusion count at a scanned threshold, e.g. ``val_thr0.25_tp``."""
    return f"{split}_thr{threshold:g}_{count}"


# -------------------------------------------------------------------------------- artifacts
SPEC_ARTIFACT = "spec.yaml"  # parent: the study spec
CONFIG_ARTIFACT = "config.yaml"  # run: the resolved configuration that trained it
MODEL_ARTIFACT = "model.pt"  # run: the evaluated weights (eval.save_weights)
MATRICES_ARTIFACT = "confusion_matrices.json"  # run: full confusion matrix per split
NORMALISATION_ARTIFACT = "normalisation.json"  # run: per-channel mean/std of the train split
TRACEBACK_ARTIFACT = "traceback.txt"  # failed run

# ----------------------------------------------------------------------------------- params
PARAM_VALUE_LIMIT = 6000  # MLflow's longest param value


def flatten(data: Any, prefix: str = "") -> dict[str, str]:
    """Nested config -> ``{"optim.lr": "0.001", ...}``; lists become JSON."""
    out: dict[str, str] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
    else:
        out[prefix.rstrip(".")] = json.dumps(data) if isinstance(data, list | tuple) else str(data)
    return out
