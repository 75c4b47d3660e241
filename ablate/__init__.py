"""ablate: experiment-tracked ablation studies for semantic segmentation.

spec (YAML) -> study (Optuna) -> resolved run config -> ``train()`` -> result -> MLflow ->
report. The command line is :mod:`ablate.cli`; the one train function is
:func:`ablate.training.train.train`.
"""

__version__ = "0.1.0"
