"""Writing runs: the study's experiment and parent run, one run per training, its numbers."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import yaml

from ablate.errors import StoreLost, TakenOver
from ablate.stores import Stores, check_store_files, ensure_local_dirs
from ablate.testing.faults import fault_point
from ablate.tracking import artifacts, names, notes, view
from ablate.tracking.client import open_client, probe_tracking_server
from ablate.training.result import TrainResult

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from ablate.data.fingerprint import SplitFingerprint
    from ablate.spec import RunConfig, StudySpec

class WriteFence(Protocol):
    """What a run's writes are checked against: :meth:`check` raises
    :class:`~ablate.errors.StoreLost` when a store is gone and, when ``owned``,
    :class:`~ablate.errors.TakenOver` when the run's trial is no longer this worker's."""

    def check(self, owned: bool = True) -> None: ...


_BATCH = 100  # MLflow accepts at most 100 params or tags per log_batch call
_METRIC_BATCH = 1000
# Kept out of the metrics (see logged_metrics): per-class F1 and the class balance.
_ARTIFACT_PREFIXES = ("f1_", names.FRACTION_PREFIX)
_ARTIFACT_NAMES = frozenset(names.BALANCE)


def _artifact_only(name: str) -> bool:
    return name in _ARTIFACT_NAMES or name.startswith(_ARTIFACT_PREFIXES)


class Tracker:
    """A client of one MLflow tracking store (``write``: runs are about to be written)."""

    def __init__(self, stores: Stores, write: bool = True):
        self.stores = stores
        probe_tracking_server(stores.tracking_uri)  # before anything local is created
        if write:
            check_store_files(stores)
            ensure_local_dirs(stores)
        self.client: MlflowClient = open_client(stores, write)
        self._sources: dict[str, str] = {}  # study -> the spec file its runs came from

    def experiment_id(self, study: str, create: bool = True) -> str | None:
        """The experiment of ``study`` (created when ``create``)."""
        experiment = self.client.get_experiment_by_name(study)
        if experiment is not None:
            if experiment.lifecycle_stage == "deleted":
                self.client.restore_experiment(experiment.experiment_id)
            return experiment.experiment_id
        if not create:
            return None
        location = artifacts.experiment_location(self.stores, study)
        return self.client.create_experiment(
            study, artifact_location=location,
            tags={names.TAG_EXPERIMENT_KIND: names.EXPERIMENT_KIND})

    def retire_experiment(self, study: str) -> None:
        """Rename a replaced study's experiment so that a new one starts clean (nothing lost)."""
        experiment = self.client.get_experiment_by_name(study)
        if experiment is not None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            self.client.rename_experiment(experiment.experiment_id, f"{study}.replaced-{stamp}")

    def find_parent(self, study: str) -> Any | None:
        """The study's parent run (the first one), or None."""
        experiment = self.experiment_id(study, create=False)
        if experiment is None:
            return None
        found = self.client.search_runs(
            [experiment],
            filter_string=f"tags.`{names.TAG_ROLE}` = '{names.ROLE_PARENT}'",
            max_results=1,
            order_by=["attributes.start_time ASC"],
        )
        return found[0] if found else None

    def parent_run(self, spec: StudySpec, baseline: str | None) -> str:
        """The study's parent run (created on first use); marked RUNNING. The experiment gets
        its kind and the saved view of its runs.

        ``baseline``: the label of the configuration the others are compared with, if any.
        """
        experiment = self.experiment_id(spec.name)
        assert experiment is not None
        self.describe_experiment(experiment, spec)
        found = self.find_parent(spec.name)
        if found is not None:
            run_id = found.info.run_id
            self._sources[spec.name] = found.data.tags.get(names.TAG_SOURCE_NAME, spec.source)
            self.client.update_run(run_id, status="RUNNING")
            if not self._has_artifact(run_id, found.info.artifact_uri, names.SPEC_ARTIFACT):
                # Its creator died before logging the spec (the spec is logged last).
                self._log_spec(spec, self.run_log(run_id, found.info.artifact_uri))
            return run_id
        self._sources[spec.name] = spec.source
        tags = {**_parent_tags(spec, baseline), **_source_tags(spec.source)}
        run = self.client.create_run(experiment, run_name=spec.name, tags=tags)
        fault_point("after_parent_create")
        self._log_spec(spec, self.run_log(run.info.run_id, run.info.artifact_uri))
        return run.info.run_id

    def _log_spec(self, spec: StudySpec, log: RunLog) -> None:
        # params: the base configuration as it trains (presets filled in), prefixed so that
        # they do not mix with the trials' in the UI; the artifact: the spec as written
        log.log_params(names.flatten(spec.resolve().model_dump(mode="json"),
                                     names.SPEC_PARAM_PREFIX))
        log.log_text(yaml.safe_dump(spec.written(), sort_keys=False), names.SPEC_ARTIFACT)

    def _has_artifact(self, run_id: str, artifact_uri: str, name: str) -> bool:
        folder = artifacts.local_dir(self.stores, artifact_uri)
        if folder is not None:
            return (folder / name).exists()
        return any(a.path == name for a in self.client.list_artifacts(run_id))

    def describe_experiment(self, experiment: str, spec: StudySpec) -> None:
        """Tag a study's experiment as model training, with the saved view of its trials and
        (until the first summary replaces it) a description."""
        state = view.study_view(spec)
        self.client.set_experiment_tag(experiment, names.TAG_EXPERIMENT_KIND,
                                       names.EXPERIMENT_KIND)
        self.client.set_experiment_tag(experiment, names.TAG_VIEW, view.view_tag(spec.name, state))
        current = self.client.get_experiment(experiment).tags.get(names.TAG_NOTE)
        if not current:
            self.client.set_experiment_tag(experiment, names.TAG_NOTE, notes.study_pending(spec))

    def publish(self, parent: Any, summary: notes.Summary) -> None:
        """Write a study's summary (``parent``: its parent run, see :meth:`find_parent`): the
        trial runs' decision tags, the experiment's and the parent run's descriptions, the
        parent's summary metrics and best-run tags, and the full report as its artifact."""
        for run_id, tags in summary.run_tags.items():
            RunLog(self.client, run_id).set_tags(tags)
        self.client.set_experiment_tag(parent.info.experiment_id, names.TAG_NOTE,
                                       summary.description[: view.TAG_LIMIT])
        log = self.run_log(parent.info.run_id, parent.info.artifact_uri)
        note = summary.description + "\n\n" + notes.SPEC_PARAMS_LINE
        log.set_tags({names.TAG_NOTE: note[: notes.RUN_TAG_LIMIT], **summary.tags})
        log.log_metrics(summary.metrics, step=summary.step)
        if summary.html is not None:
            log.log_text(summary.html, names.REPORT_ARTIFACT)

    def run_log(self, run_id: str, artifact_uri: str | None = None) -> RunLog:
        """Logging into an existing run (``artifact_uri``: its artifact URI, if known)."""
        if artifact_uri is None:
            artifact_uri = self.client.get_run(run_id).info.artifact_uri
        return RunLog(self.client, run_id, artifacts.local_dir(self.stores, artifact_uri))

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
        source: str | None = None,
    ) -> RunLog:
        """A run for one training: params are the flattened resolved config. ``source``: the
        spec file (default: the one that created the study, once its parent run is known)."""
        experiment = self.experiment_id(study)
        tags = run_tags(study, role, task=config.data.task, objective=config.objective.metric,
                        direction=config.objective.direction, seed=config.seed,
                        parent_id=parent_id, trial=trial, extra=extra_tags)
        components = json.loads(tags.get(names.TAG_COMPONENTS, "{}"))
        tags.update(_source_tags(source or self._sources.get(study, f"study '{study}'")))
        head = notes.run_head(name, config, values or {}, components,
                              tags.get(names.TAG_CONFIG) if components else None)
        tags[names.TAG_NOTE] = notes.run_note(head, config, "RUNNING")
        assert experiment is not None  # created when missing
        run = self.client.create_run(experiment, run_name=name, tags=tags)
        log = self.run_log(run.info.run_id, run.info.artifact_uri)
        log.config, log.note_head = config, head
        log.log_params(names.flatten(config.model_dump(mode="json")))
        if values:
            log.set_tags(searched_tags(values))
        log.log_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False),
                     names.CONFIG_ARTIFACT)
        return log


def _source_tags(source: str) -> dict[str, str]:
    return {names.TAG_SOURCE_NAME: source, names.TAG_SOURCE_TYPE: names.SOURCE_TYPE}


def _parent_tags(spec: StudySpec, baseline: str | None) -> dict[str, str]:
    objectives = [o.model_dump() for o in spec.objectives] or [spec.objective.model_dump()]
    tags = study_tags(
        spec.name, task=spec.data.task, objective=spec.objective.metric,
        direction=spec.objective.direction, search=spec.search_space(),
        classes=spec.data.names, design=spec.design.kind, baseline=baseline or "",
        components=[c.name for c in spec.design.components], objectives=objectives,
        thresholds=spec.eval.thresholds if spec.data.task == "binary" else [],
        report=spec.report.model_dump(mode="json"),
        repeats=spec.model_dump(mode="json")["design"]["repeats"])
    return {
        **tags,
        names.TAG_SPEC_PATH: spec.path or "",
        names.TAG_SPEC_DESCRIPTION: spec.description,
        names.TAG_NOTE: notes.study_pending(spec) + "\n\n" + notes.SPEC_PARAMS_LINE,
    }


def study_tags(
    study: str,
    *,
    task: str,
    objective: str,
    direction: str,
    search: Mapping[str, Any] | None = None,
    classes: Sequence[str] | None = None,
    design: str | None = None,
    baseline: str | None = None,
    components: Sequence[str] | None = None,
    objectives: Sequence[Mapping[str, Any]] | None = None,
    thresholds: Sequence[float] | None = None,
    report: Mapping[str, Any] | None = None,
    repeats: int | Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """The tags of a study's parent run that say what the study is (what the report reads
    back), encoded as the readers expect them. A value left None is not written, as in a
    store written before that tag existed (a study writes every one)."""
    def encoded(value: Any) -> str | None:
        return None if value is None else json.dumps(value)

    optional = {
        names.TAG_SEARCH: None if search is None else _search_tag(search),
        names.TAG_CLASSES: encoded(None if classes is None else list(classes)),
        names.TAG_DESIGN: design,
        names.TAG_BASELINE: baseline,
        names.TAG_COMPONENTS: encoded(None if components is None else list(components)),
        names.TAG_OBJECTIVES: encoded(None if objectives is None else
                                      [dict(o) for o in objectives]),
        names.TAG_THRESHOLDS: encoded(None if thresholds is None else list(thresholds)),
        names.TAG_REPORT: encoded(None if report is None else dict(report)),
        names.TAG_REPEATS: encoded(repeats if repeats is None or isinstance(repeats, int)
                                   else dict(repeats)),
    }
    return {
        names.TAG_STUDY: study, names.TAG_ROLE: names.ROLE_PARENT, names.TAG_TASK: task,
        names.TAG_OBJECTIVE: objective, names.TAG_DIRECTION: direction,
        **{k: v for k, v in optional.items() if v is not None},
    }


def _search_tag(space: Mapping[str, Any]) -> str:
    """The whole search space (``{path: {type, low, ...}}``) as JSON; past MLflow's tag
    limit, the types and log flags (the spec artifact holds the rest)."""
    text = json.dumps(dict(space))
    if len(text) <= names.TAG_VALUE_LIMIT:
        return text
    return json.dumps({k: {"type": v["type"], "log": v.get("log", False)}
                       if isinstance(v, Mapping) else v for k, v in space.items()})


def run_tags(
    study: str,
    role: str,
    *,
    task: str,
    objective: str,
    direction: str,
    seed: int | None = None,
    parent_id: str | None = None,
    trial: int | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The tags a run starts with (state RUNNING): its study, role, task and objective, its
    parent and trial, ``extra`` (a trial's configuration label, repeat and components as
    JSON, ...), its seed, and each component of its configuration as a Y/N tag."""
    tags = {
        names.TAG_STUDY: study,
        names.TAG_ROLE: role,
        names.TAG_STATE: "RUNNING",
        names.TAG_TASK: task,
        names.TAG_OBJECTIVE: objective,
        names.TAG_DIRECTION: direction,
    }
    if parent_id:
        tags[names.TAG_PARENT] = parent_id
    if trial is not None:
        tags[names.TAG_TRIAL] = str(trial)
    tags.update(extra or {})
    if seed is not None:
        tags[names.TAG_SEED] = str(seed)
    components = json.loads(tags.get(names.TAG_COMPONENTS, "{}"))
    tags.update({names.COMPONENT_PREFIX + k: "Y" if on else "N" for k, on in components.items()})
    return tags


def searched_tags(values: Mapping[str, Any]) -> dict[str, str]:
    """A trial's searched values, one tag each (JSON, so a list stays a list)."""
    return {names.SEARCHED_PREFIX + k: json.dumps(v) for k, v in values.items()}


def logged_metrics(result: TrainResult) -> dict[str, float]:
    """The final numbers of a run that are logged as metrics, by name (``val_iou``, ``gflops``).

    Per split: every split-level score (and the loss), the confusion counts ``tp fp fn tn``
    (binary: of the positive class; multiclass: summed over the classes) and, multiclass,
    per-class IoU and per-class ``tp_ fp_ fn_`` counts (keys: :func:`names.metric_key`).
    Per-class F1, threshold-scan counts and the class balance go to artifacts instead (they
    derive from the counts or describe the data; class fractions are also in the dataset
    inputs' profiles), so that a run's charts page stays a few screens long.
    """
    out = {names.split_key(split, k): v
           for split, values in result.metrics.items() for k, v in values.items()
           if not _artifact_only(k)}
    out.update(result.figures())
    return out


def class_balance(result: TrainResult) -> dict[str, dict[str, float]]:
    """``{split: {images, pixels, positive_ratio | frac_<class>}}`` of a run's data."""
    return {split: {k: v for k, v in values.items()
                    if k in names.BALANCE or k.startswith(names.FRACTION_PREFIX)}
            for split, values in result.metrics.items()}


def threshold_counts(result: TrainResult) -> dict[str, dict[str, dict[str, float]]]:
    """``{split: {threshold: {tp, fp, fn, tn}}}`` of a binary run's threshold scan."""
    return {
        split: {f"{t:g}": {"tn": float(m[0, 0]), "fp": float(m[0, 1]), "fn": float(m[1, 0]),
                           "tp": float(m[1, 1])} for t, m in by_threshold.items()}
        for split, by_threshold in result.threshold_matrices.items() if by_threshold
    }


@dataclass
class RunLog:
    """Logging into one MLflow run."""

    client: MlflowClient
    run_id: str
    # The run's artifact folder when the store is local (written directly), else None.
    folder: Path | None = None
    # What the run's description says while it runs (set by Tracker.start_run); the final
    # numbers logged so far, by name, for the description written when it ends.
    config: RunConfig | None = None
    note_head: str | None = None
    final: dict[str, float] = field(default_factory=dict)
    # Checked before every write (see WriteFence), so that nothing is written where it must
    # not be; ``owned`` False while a run whose trial was taken over is closed.
    fence: WriteFence | None = None
    owned: bool = True

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """One write to the run, after the fence; a store that fails it is StoreLost."""
        if self.fence is not None:
            self.fence.check(self.owned)
        try:
            yield
        except (StoreLost, TakenOver):
            raise
        except OSError as err:
            where = self.folder or "the artifact store"
            raise StoreLost(f"{where}: a run's artifacts cannot be written "
                            f"({err.strerror or err}); make the store writable again and run "
                            "the study again") from None
        except Exception as err:
            if not _store_failure(err):
                raise
            text = str(err).strip()
            first = text.splitlines()[0][:200] if text else type(err).__name__
            raise StoreLost(f"MLflow tracking store {self.client.tracking_uri}: a write failed "
                            f"({first}); check the store and run the study again") from None

    def log_params(self, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v[: names.PARAM_VALUE_LIMIT]) for k, v in params.items()]
        with self._writing():
            for i in range(0, len(items), _BATCH):
                self.client.log_batch(self.run_id, params=items[i : i + _BATCH])

    def set_tags(self, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(k, v) for k, v in tags.items()]
        with self._writing():
            for i in range(0, len(items), _BATCH):
                self.client.log_batch(self.run_id, tags=items[i : i + _BATCH])

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        with self._writing():
            for i in range(0, len(items), _METRIC_BATCH):
                self.client.log_batch(self.run_id, metrics=items[i : i + _METRIC_BATCH])

    def log_epoch(self, epoch: int, record: Mapping[str, float]) -> None:
        """Per-epoch curves, logged as soon as the epoch ends (a crash keeps them); the step
        is the epoch's number, from 1."""
        self.log_metrics({names.epoch_key(k): v for k, v in record.items()}, step=epoch)

    def log_final(self, metrics: dict[str, float]) -> None:
        """Final numbers, given by their names in a spec (``val_iou``, ``gflops``)."""
        self.log_metrics({names.metric_key(k): v for k, v in metrics.items()})
        self.final.update(metrics)

    def log_result(self, result: TrainResult) -> None:
        """Final numbers of a run, its confusion matrices (per split, and per threshold of a
        binary scan), the counts of each val and test image, its class balance and its
        normalisation."""
        self.log_final(logged_metrics(result))
        if result.applied:
            self.set_tags({names.applied_tag(k): v for k, v in result.applied.items()})
        matrices = {split: m.tolist() for split, m in result.matrices.items()}
        self.log_text(json.dumps(matrices), names.MATRICES_ARTIFACT)
        self.log_text(json.dumps(class_balance(result)), names.BALANCE_ARTIFACT)
        scan = threshold_counts(result)
        if scan:
            self.log_text(json.dumps(scan), names.THRESHOLDS_ARTIFACT)
        if result.image_counts is not None and result.image_counts.counts:
            self.log_bytes(result.image_counts.to_npz(), names.IMAGE_COUNTS_ARTIFACT)
        self.log_text(json.dumps(result.normalisation), names.NORMALISATION_ARTIFACT)

    def log_environment(self, env: Mapping[str, str], diff: str | None = None) -> None:
        """The environment the run trains in (``ablate.env.*`` tags) and, when the spec's work
        tree has uncommitted changes, their diff (:data:`~names.GIT_DIFF_ARTIFACT`)."""
        self.set_tags({names.env_tag(k): str(v)[: names.TAG_VALUE_LIMIT] for k, v in env.items()})
        if diff:
            self.log_text(diff, names.GIT_DIFF_ARTIFACT)

    def log_data(self, fingerprints: Mapping[str, SplitFingerprint]) -> None:
        """The data of each split: an MLflow dataset input (name, digest, source, profile)
        and a ``ablate.data.<split>`` digest tag (for bulk reads)."""
        from ablate.tracking.datasets import dataset_inputs

        self.set_tags({names.data_tag(split): f.digest for split, f in fingerprints.items()})
        with self._writing():
            self.client.log_inputs(self.run_id, datasets=dataset_inputs(fingerprints))

    def log_text(self, text: str, name: str) -> None:
        with self._writing():
            if self.folder is not None:
                artifacts.write_text(self.folder, name, text)
            else:
                self.client.log_text(self.run_id, text, name)

    def log_bytes(self, data: bytes, name: str) -> None:
        """A binary artifact (e.g. an ``.npz`` file)."""
        import tempfile

        with self._writing():
            if self.folder is not None:
                artifacts.write_bytes(self.folder, name, data)
                return
            with tempfile.TemporaryDirectory(prefix="ablate-") as tmp:
                path = Path(tmp) / name
                path.write_bytes(data)
                self.client.log_artifact(self.run_id, str(path))

    def log_artifacts(self, source: Path) -> None:
        """Every file below ``source``, into the run's artifacts."""
        if not source.exists() or not any(source.iterdir()):
            return
        with self._writing():
            if self.folder is not None:
                artifacts.copy_folder(self.folder, source)
            else:
                self.client.log_artifacts(self.run_id, str(source))

    def end(self, state: str, reason: str | None = None, killed: bool = False,
            owned: bool = True) -> None:
        """Close the run: COMPLETE and PRUNED end FINISHED, FAIL ends FAILED (KILLED if
        ``killed``: its worker died or was interrupted). ``owned`` False: the run's trial
        is another worker's now; only the stores are checked before the writes."""
        self.owned = owned
        tags = {names.TAG_STATE: state}
        if reason:
            tags[names.TAG_REASON] = reason[:500]
        if self.note_head is not None and self.config is not None:
            tags[names.TAG_NOTE] = notes.run_note(self.note_head, self.config, state, reason,
                                                  self.final)
        self.set_tags(tags)
        status = "FINISHED" if state != "FAIL" else ("KILLED" if killed else "FAILED")
        with self._writing():
            self.client.set_terminated(self.run_id, status=status)


def _store_failure(err: Exception) -> bool:
    """Whether an error of the tracking client says the store failed (a database or server
    error), rather than that ablate asked for something invalid."""
    from mlflow.exceptions import MlflowException

    if isinstance(err, ConnectionError):
        return True
    if type(err).__module__.startswith(("sqlalchemy", "requests", "urllib3", "sqlite3")):
        return True
    if isinstance(err, MlflowException):
        cause = err.__cause__ or err.__context__
        text = str(err).lower()
        return (cause is not None and type(cause).__module__.startswith(("sqlalchemy", "requests",
                                                                         "urllib3", "sqlite3"))
                or any(word in text for word in ("database", "readonly", "read-only",
                                                 "api request", "connection", "no such table")))
    return False
