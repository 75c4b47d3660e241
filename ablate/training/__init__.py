"""Training one configuration: the one train function and what it is made of.

- :mod:`~ablate.training.train`: :func:`train`, fit -> evaluate -> measure -> result;
- :mod:`~ablate.training.fit`: the epoch loop, best epoch on val, early stopping;
- :mod:`~ablate.training.engine`: model, loss, precision, EMA and the train/evaluation passes;
- :mod:`~ablate.training.evaluation`: every split once on the best weights;
- :mod:`~ablate.training.models`: smp architectures, local weights, params, latency;
- :mod:`~ablate.training.flops`: FLOPs (fvcore: one multiply-add = one FLOP);
- :mod:`~ablate.training.optim`: optimisers and per-epoch schedules;
- :mod:`~ablate.training.figures`: curves and gallery PNGs;
- :mod:`~ablate.training.allocator`: glibc's thresholds for a training process;
- :mod:`~ablate.training.devices`: the run's device, composed with ``study run --gpus``;
- :mod:`~ablate.training.precision`: the AMP dtype of the run's GPU (bf16 or fp16);
- :mod:`~ablate.training.determinism`: deterministic CUDA and what is reproducible where;
- :mod:`~ablate.training.memory`: out of memory: recognised, a halved batch, memory freed;
- :mod:`~ablate.training.result`: :class:`TrainResult`, what a run produced (torch-free).

Names load on first use, so readers of a :class:`TrainResult` import no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ablate._lazy import lazy

_EXPORTS = {
    "EpochCallback": "fit", "TrainingError": "engine", "TrainResult": "result",
    "ImageCounts": "result", "resolve_device": "devices", "train": "train",
}

if TYPE_CHECKING:
    from ablate.training.devices import resolve_device
    from ablate.training.engine import TrainingError
    from ablate.training.fit import EpochCallback
    from ablate.training.result import ImageCounts, TrainResult
    from ablate.training.train import train

__getattr__, __dir__ = lazy(__name__, _EXPORTS)

__all__ = ["EpochCallback", "ImageCounts", "TrainResult", "TrainingError", "resolve_device",
           "train"]
