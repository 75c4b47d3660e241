"""Weights logged by earlier runs: fetched once into a local cache, for ``init_from``/predict."""

from __future__ import annotations

import tempfile
from pathlib import Path

from ablate.errors import AblateError
from ablate.spec import RunConfig
from ablate.tracking import names
from ablate.tracking.reader import artifact_path
from ablate.tracking.writer import Tracker


def checkpoint(tracker: Tracker, run_id: str) -> Path:
    """The ``model.pt`` logged by run ``run_id``: the file itself in a local store, else
    downloaded once into a local cache."""
    dest = Path(tempfile.gettempdir()) / "ablate-checkpoints" / run_id
    if (dest / names.MODEL_ARTIFACT).is_file():
        return dest / names.MODEL_ARTIFACT
    dest.mkdir(parents=True, exist_ok=True)
    try:
        return artifact_path(tracker, run_id, names.MODEL_ARTIFACT, dest)
    except AblateError as err:
        raise AblateError(f"{err}; train it with eval.save_weights: true") from None


def localize(tracker: Tracker, config: RunConfig) -> RunConfig:
    """``config`` with a run id in ``model.init_from`` replaced by its checkpoint's path."""
    source = config.model.init_from
    if not source or Path(source).is_file():
        return config
    data = config.model_dump(mode="json")
    try:
        data["model"]["init_from"] = str(checkpoint(tracker, source))
    except AblateError as err:
        raise AblateError(f"model.init_from: {err}, or give a checkpoint path") from None
    return RunConfig.model_validate(data)
