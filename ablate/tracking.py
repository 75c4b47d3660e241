"""MLflow tracking: the one place that names MLflow runs, tags, params and metrics.

One experiment per study; one parent run per study; one nested child run per trial.
Per-epoch curves are ``epoch/<name>``; final numbers are ``{split}_{metric}`` plus the model
figures (``params``, ``gflops``, ``efficiency``, ...). The report reads these names back.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ablate.errors import AblateError
from ablate.spec import RunConfig, StudySpec
from ablate.stores import Stores, ensure_local_dirs, opening

# Tags
TAG_STUDY = "ablate.study"
TAG_ROLE = "ablate.role"  # parent | trial | train
TAG_TRIAL = "ablate.trial"
TAG_STATE = "ablate.state"  # RUNNING | COMPLETE | PRUNED | FAIL
TAG_REASON = "ablate.reason"
TAG_TASK = "ablate.task"
TAG_OBJECTIVE = "ablate.objective"
TAG_DIRECTION = "ablate.direction"
TAG_SEARCH = "ablate.search"  # JSON {dotted path: distribution type}, on the parent
TAG_CLASSES = "ablate.classes"  # JSON list of class names, on the parent
# Designs and repeats (runs with the same TAG_CONFIG are repeats of one configuration)
TAG_DESIGN = "ablate.design"  # search | one_at_a_time | cumulative | factorial, on the parent
TAG_CONFIG = "ablate.config"  # configuration label, e.g. "baseline", "+hflip", "trial-7"
TAG_REPEAT = "ablate.repeat"  # 0..repeats-1
TAG_SEED = "ablate.seed"
TAG_BASELINE = "ablate.baseline"  # label of the baseline configuration, on the parent
TAG_COMPONENTS = "ablate.components"  # parent: JSON list of names; run: JSON {name: bool}
TAG_OBJECTIVES = "ablate.objectives"  # parent: JSON [{"metric", "direction"}, ...]
TAG_THRESHOLDS = "ablate.thresholds"  # parent: JSON list of scanned binary thresholds
TAG_PARENT = "mlflow.parentRunId"

EPOCH_PREFIX = "epoch/"


def threshold_key(split: str, threshold: float, count: str) -> str:
    """Metric name of a confusion count at a scanned threshold, e.g. ``val_thr0.25_tp``."""
    return f"{split}_thr{threshold:g}_{count}"


FLOP_CONVENTION = "fvcore FLOPs: one multiply-add counts as one FLOP"

_BATCH = 100  # MLflow accepts at most 100 params or tags per log_batch call


def _quiet_mlflow() -> None:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    # over HTTP MLflow prints two "View run/experiment at" lines per ended run; trial lines say it
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    import mlflow  # noqa: F401 - configures its loggers on import; quieten them after

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def flatten(data: Any, prefix: str = "") -> dict[str, str]:
    """Nested config -> ``{"optim.lr": "0.001", ...}``; lists become JSON."""
    out: dict[str, str] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
    else:
        out[prefix.rstrip(".")] = json.dumps(data) if isinstance(data, list | tuple) else str(data)
    return out


def probe_tracking_server(uri: str, timeout: float = 3.0) -> None:
    """Fail fast, in one line, when an MLflow tracking server does not answer."""
    if not uri.startswith(("http://", "https://")):
        return
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout):
            pass
    except urllib.error.HTTPError:
        return  # it answered; an older server may lack /health
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise AblateError(
            f"MLflow tracking server {uri} cannot be reached: {reason}; start the server or fix "
            "--tracking-uri / MLFLOW_TRACKING_URI"
        ) from None


class Tracker:
    """A client of one MLflow tracking store."""

    def __init__(self, stores: Stores, write: bool = True):
        _quiet_mlflow()
        from mlflow.tracking import MlflowClient

        self.stores = stores
        probe_tracking_server(stores.tracking_uri)
        if write:
            ensure_local_dirs(stores)
        # MLflow creates its tables when the client opens the store.
        with opening(stores.tracking_uri, write):
            self.client = MlflowClient(tracking_uri=stores.tracking_uri)
            self._probe_store()

    def _probe_store(self) -> None:
        """One cheap query; an unreachable or unusable store is a one-line error."""
        try:
            self.client.search_experiments(max_results=1)
        except Exception as err:  # noqa: BLE001 - any failure here is an unreachable server
            raise AblateError(
                f"MLflow tracking store {self.stores.tracking_uri} cannot be reached: "
                f"{str(err).splitlines()[0][:200]}"
            ) from None

    def experiment_id(self, study: str, create: bool = True) -> str | None:
        """The experiment of ``study`` (created when ``create``)."""
        experiment = self.client.get_experiment_by_name(study)
        if experiment is not None:
            if experiment.lifecycle_stage == "deleted":
                self.client.restore_experiment(experiment.experiment_id)
            return experiment.experiment_id
        if not create:
            return None
        location = None
        if self.stores.artifact_root is not None:
            location = (self.stores.artifact_root / study).absolute().as_uri()
        return self.client.create_experiment(study, artifact_location=location)

    def retire_experiment(self, study: str) -> None:
        """Rename a replaced study's experiment so that a new one starts clean (nothing lost)."""
        experiment = self.client.get_experiment_by_name(study)
        if experiment is not None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            self.client.rename_experiment(experiment.experiment_id, f"{study}.replaced-{stamp}")

    def parent_run(self, spec: StudySpec) -> str:
        """The study's parent run (created on first use); marked RUNNING."""
        from ablate.design import baseline_label

        experiment = self.experiment_id(spec.name)
        found = self.client.search_runs(
            [experiment],
            filter_string=f"tags.`{TAG_ROLE}` = 'parent'",
            max_results=1,
            order_by=["attributes.start_time ASC"],
        )
        if found:
            run_id = found[0].info.run_id
            self.client.update_run(run_id, status="RUNNING")
            return run_id
        run = self.client.create_run(
            experiment,
            run_name=spec.name,
            tags={
                TAG_STUDY: spec.name,
                TAG_ROLE: "parent",
                TAG_TASK: spec.data.task,
                TAG_OBJECTIVE: spec.objective.metric,
                TAG_DIRECTION: spec.objective.direction,
                TAG_SEARCH: json.dumps({k: v.type for k, v in spec.search.items()}),
                TAG_CLASSES: json.dumps(spec.data.names),
                TAG_DESIGN: spec.design.kind,
                TAG_BASELINE: baseline_label(spec.design) or "",
                TAG_COMPONENTS: json.dumps([c.name for c in spec.design.components]),
                TAG_OBJECTIVES: json.dumps([o.model_dump() for o in spec.objectives]
                                           or [spec.objective.model_dump()]),
                TAG_THRESHOLDS: json.dumps(spec.eval.thresholds if spec.data.task == "binary"
                                           else []),
                "mlflow.note.content": spec.description or f"ablate study {spec.name}",
            },
        )
        log = RunLog(self.client, run.info.run_id)
        log.log_params(flatten(spec.run_dict()))
        log.log_text(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False), "spec.yaml")
        return run.info.run_id

    def checkpoint(self, run_id: str) -> Path:
        """The ``model.pt`` logged by run ``run_id``, downloaded once into a local cache."""
        import tempfile

        dest = Path(tempfile.gettempdir()) / "ablate-checkpoints" / run_id
        if not (dest / "model.pt").is_file():
            dest.mkdir(parents=True, exist_ok=True)
            try:
                self.client.download_artifacts(run_id, "model.pt", str(dest))
            except Exception as err:  # noqa: BLE001 - unknown run or no such artifact
                raise AblateError(
                    f"run {run_id} has no model.pt in {self.stores.tracking_uri} "
                    f"({str(err).splitlines()[0][:120]}); train it with eval.save_weights: true"
                ) from None
        return dest / "model.pt"

    def localize(self, config: RunConfig) -> RunConfig:
        """``config`` with a run id in ``model.init_from`` replaced by its checkpoint's path."""
        source = config.model.init_from
        if not source or Path(source).is_file():
            return config
        data = config.model_dump(mode="json")
        try:
            data["model"]["init_from"] = str(self.checkpoint(source))
        except AblateError as err:
            raise AblateError(f"model.init_from: {err}, or give a checkpoint path") from None
        return RunConfig.model_validate(data)

    def end_parent(self, run_id: str) -> None:
        """Mark the study's parent run finished (another worker may reopen it)."""
        self.client.set_terminated(run_id, status="FINISHED")

    def start_run(
        self,
        study: str,
        config: RunConfig,
        role: str,
        name: str,
        parent_id: str | None = None,
        trial: int | None = None,
        values: dict[str, Any] | None = None,
        extra_tags: dict[str, str] | None = None,
    ) -> RunLog:
        """A run for one training: params are the flattened resolved config."""
        experiment = self.experiment_id(study)
        tags = {
            TAG_STUDY: study,
            TAG_ROLE: role,
            TAG_STATE: "RUNNING",
            TAG_TASK: config.data.task,
            TAG_OBJECTIVE: config.objective.metric,
            TAG_DIRECTION: config.objective.direction,
        }
        if parent_id:
            tags[TAG_PARENT] = parent_id
        if trial is not None:
            tags[TAG_TRIAL] = str(trial)
        tags.update(extra_tags or {})
        tags[TAG_SEED] = str(config.seed)
        run = self.client.create_run(experiment, run_name=name, tags=tags)
        log = RunLog(self.client, run.info.run_id)
        log.log_params(flatten(config.model_dump(mode="json")))
        if values:
            log.set_tags({f"ablate.searched.{k}": json.dumps(v) for k, v in values.items()})
        log.log_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), "config.yaml")
        return log


@dataclass
class RunLog:
    """Logging into one MLflow run."""

    client: Any
    run_id: str

    def log_params(self, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v[:6000]) for k, v in params.items()]
        for i in range(0, len(items), _BATCH):
            self.client.log_batch(self.run_id, params=items[i : i + _BATCH])

    def set_tags(self, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(k, v) for k, v in tags.items()]
        for i in range(0, len(items), _BATCH):
            self.client.log_batch(self.run_id, tags=items[i : i + _BATCH])

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        for i in range(0, len(items), 1000):
            self.client.log_batch(self.run_id, metrics=items[i : i + 1000])

    def log_epoch(self, epoch: int, record: dict[str, float]) -> None:
        """Per-epoch curves, logged as soon as the epoch ends (a crash keeps them)."""
        self.log_metrics({EPOCH_PREFIX + k: v for k, v in record.items()}, step=epoch)

    def log_result(self, result: Any) -> None:
        """Final numbers of a :class:`~ablate.train.TrainResult`, and its confusion matrices."""
        self.log_metrics(result.flat_metrics())
        matrices = {split: m.tolist() for split, m in result.matrices.items()}
        self.log_text(json.dumps(matrices), "confusion_matrices.json")
        self.log_text(json.dumps(result.normalisation), "normalisation.json")

    def log_text(self, text: str, name: str) -> None:
        self.client.log_text(self.run_id, text, name)

    def log_artifacts(self, folder: Path) -> None:
        if folder.exists() and any(folder.iterdir()):
            self.client.log_artifacts(self.run_id, str(folder))

    def end(self, state: str, reason: str | None = None, killed: bool = False) -> None:
        """Close the run: COMPLETE and PRUNED end FINISHED, FAIL ends FAILED (KILLED if
        ``killed``: its worker died or was interrupted)."""
        tags = {TAG_STATE: state}
        if reason:
            tags[TAG_REASON] = reason[:500]
        self.set_tags(tags)
        status = "FINISHED" if state != "FAIL" else ("KILLED" if killed else "FAILED")
        self.client.set_terminated(self.run_id, status=status)
