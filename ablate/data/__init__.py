"""Data: folder or synthetic data sets, split, checked and served as torch data loaders."""

from ablate.data.channels import derived_channels
from ablate.data.dataset import SegmentationDataset, loader_workers, make_dataset, make_loaders
from ablate.data.io import clear_cache
from ablate.data.load import load_data
from ablate.data.sample import DataSplits, Sample
from ablate.data.standins import make_standin
from ablate.data.synthetic import synthetic_samples
from ablate.data.transforms import build_transforms

__all__ = [
    "DataSplits",
    "Sample",
    "SegmentationDataset",
    "build_transforms",
    "clear_cache",
    "derived_channels",
    "load_data",
    "loader_workers",
    "make_dataset",
    "make_loaders",
    "make_standin",
    "synthetic_samples",
]
