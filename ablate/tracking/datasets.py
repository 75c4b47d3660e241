"""A run's data as MLflow dataset inputs: one dataset per split, with its digest and profile.

The MLflow UI shows them in the runs table's Dataset column and on the run page (name, digest,
context = the split, source = the data folder, profile = counts and class balance).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow.entities import DatasetInput

    from ablate.data.fingerprint import SplitFingerprint


def _dataset_class() -> type:
    from mlflow.data.dataset import Dataset

    class SplitDataset(Dataset):
        """A split of a segmentation data set: metadata only (the files stay where they are)."""

        def __init__(self, source: Any, name: str, digest: str, profile: dict[str, Any]):
            self._profile = profile
            super().__init__(source=source, name=name, digest=digest)

        def _compute_digest(self) -> str:  # the digest is always given
            raise NotImplementedError

        @property
        def profile(self) -> dict[str, Any]:
            return self._profile

        @property
        def schema(self) -> None:
            return None

        def to_dict(self) -> dict[str, str]:
            return {**super().to_dict(), "profile": json.dumps(self._profile)}

    return SplitDataset


def _source(fingerprint: SplitFingerprint) -> Any:
    if fingerprint.source == "synthetic":
        from mlflow.data.code_dataset_source import CodeDatasetSource

        return CodeDatasetSource({"generator": "ablate synthetic data (data.synthetic)"})
    import warnings

    from mlflow.data.dataset_source_registry import resolve_dataset_source

    with warnings.catch_warnings():  # "can be interpreted in multiple ways": both are local
        warnings.simplefilter("ignore")
        return resolve_dataset_source(fingerprint.source)


def dataset_inputs(fingerprints: Mapping[str, SplitFingerprint]) -> list[DatasetInput]:
    """One MLflow ``DatasetInput`` per split, its context tag naming the split."""
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    cls = _dataset_class()
    inputs = []
    for split, fingerprint in fingerprints.items():
        dataset = cls(_source(fingerprint), fingerprint.name, fingerprint.digest,
                      fingerprint.profile())
        inputs.append(DatasetInput(dataset._to_mlflow_entity(),
                                   tags=[InputTag(MLFLOW_DATASET_CONTEXT, split)]))
    return inputs
