"""Training into a tracked run: one configuration trained by :func:`~ablate.training.train.train`
with its epochs, final numbers and artifacts logged as they come."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from ablate.data import DataSplits
from ablate.runs import environment
from ablate.spec import RunConfig, objects
from ablate.testing.faults import fault_point
from ablate.tracking import RunLog, names
from ablate.training.devices import resolve_device
from ablate.training.fit import Progress, Resume
from ablate.training.precision import amp_dtype, dtype_name
from ablate.training.result import TrainResult
from ablate.training.train import EpochCallback, train

# Where a run may continue from: given the device, the saved state to continue from (or
# none) and where to save the next ones (see ablate.study.resume).
ResumeSource = Callable[..., Resume]


def train_tracked(
    config: RunConfig,
    run: RunLog,
    on_epoch: EpochCallback | None = None,
    progress: Progress = True,
    description: str = "train",
    spec_path: str | None = None,
    resume: ResumeSource | None = None,
    on_replay: EpochCallback | None = None,
) -> TrainResult:
    """:func:`~ablate.training.train.train` logging into ``run``: first the environment
    (versions, device, the git state of the spec file's work tree, ``spec_path``) and the AMP
    dtype that applies on the run's GPU (``ablate.amp_dtype``), the data of each split once
    loaded, each epoch as soon as it ends (a crash keeps them), then the final numbers and
    the artifacts. ``on_epoch`` runs after each epoch is logged (it may raise to prune).

    ``resume(device)``: continue from an earlier attempt's last finished epoch, if one was
    saved, and save the state after each epoch. A run that continues is tagged
    ``ablate.resumed_from_epoch`` and gets the earlier epochs' curve points first
    (``on_replay`` sees each, e.g. to report it to a pruner again).
    """
    env = environment.collect(config.device, spec_path)
    run.log_environment(env, environment.git_diff(env))
    device = resolve_device(config.device)
    run.set_tags({names.TAG_AMP_DTYPE: dtype_name(amp_dtype(device, config.optim.amp))})
    if config.model.custom:
        log_model_source(run, config.model.custom)
    fit_resume = resume(device) if resume is not None else None
    if fit_resume is not None and fit_resume.state is not None:
        replay(run, fit_resume.state.history, on_replay)

    def log_data(data: DataSplits) -> None:
        run.log_data(data.fingerprints)

    def log_epoch(epoch: int, record: dict[str, float]) -> None:
        run.log_epoch(epoch, record)
        if on_epoch is not None:
            on_epoch(epoch, record)

    with tempfile.TemporaryDirectory(prefix="ablate-") as tmp:
        result = train(config, log_epoch, Path(tmp), progress, description, log_data,
                       fit_resume)
        run.log_result(result)
        fault_point("mid_artifact")  # numbers and JSON artifacts written, figures not yet
        run.log_artifacts(Path(tmp))
    return result


def log_model_source(run: RunLog, path: str) -> None:
    """The source of a ``model.custom`` class or function as an artifact, so that a run of a
    model defined in a notebook can be reproduced."""
    from ablate.training.models import custom_class

    source = objects.source_of(custom_class(path))
    if source is not None:
        run.log_text(f"# model.custom: {path}\n{source}", names.MODEL_SOURCE_ARTIFACT)


def replay(run: RunLog, history: list[dict[str, float]],
           on_replay: EpochCallback | None) -> None:
    """The epochs an earlier attempt finished, logged into ``run`` before it continues."""
    run.set_tags({names.TAG_RESUMED_FROM: str(len(history))})
    for epoch, record in enumerate(history, 1):
        run.log_epoch(epoch, record)
        if on_replay is not None:
            on_replay(epoch, record)
