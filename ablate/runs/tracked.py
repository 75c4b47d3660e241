"""Training into a tracked run: one configuration trained by :func:`~ablate.training.train.train`
with its epochs, final numbers and artifacts logged as they come."""

from __future__ import annotations

import tempfile
from pathlib import Path

from ablate.data import DataSplits
from ablate.runs import environment
from ablate.spec import RunConfig
from ablate.testing.faults import fault_point
from ablate.tracking import RunLog, names
from ablate.training.devices import resolve_device
from ablate.training.precision import amp_dtype, dtype_name
from ablate.training.result import TrainResult
from ablate.training.train import EpochCallback, train


def train_tracked(
    config: RunConfig,
    run: RunLog,
    on_epoch: EpochCallback | None = None,
    progress: bool = True,
    description: str = "train",
    spec_path: str | None = None,
) -> TrainResult:
    """:func:`~ablate.training.train.train` logging into ``run``: first the environment (versions,
    device, the git state of the spec file's work tree, ``spec_path``) and the AMP dtype that
    applies on the run's GPU (``ablate.amp_dtype``), the data of each split
    once loaded, each epoch as soon as it ends (a crash keeps them), then the final numbers and
    the artifacts. ``on_epoch`` runs after each epoch is logged (it may raise to prune)."""
    env = environment.collect(config.device, spec_path)
    run.log_environment(env, environment.git_diff(env))
    dtype = amp_dtype(resolve_device(config.device), config.optim.amp)
    run.set_tags({names.TAG_AMP_DTYPE: dtype_name(dtype)})

    def log_data(data: DataSplits) -> None:
        run.log_data(data.fingerprints)

    def log_epoch(epoch: int, record: dict[str, float]) -> None:
        run.log_epoch(epoch, record)
        if on_epoch is not None:
            on_epoch(epoch, record)

    with tempfile.TemporaryDirectory(prefix="ablate-") as tmp:
        result = train(config, log_epoch, Path(tmp), progress, description, log_data)
        run.log_result(result)
        fault_point("mid_artifact")  # numbers and JSON artifacts written, figures not yet
        run.log_artifacts(Path(tmp))
    return result
