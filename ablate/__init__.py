"""ablate: experiment-tracked ablation studies for semantic segmentation.

spec (YAML, validated) -> study (Optuna) -> resolved run config -> ``train()`` -> result
(counts, metrics, FLOPs) -> MLflow -> report. The command line is ``ablate``; from Python:

>>> import ablate
>>> spec = ablate.load_spec("studies/quickstart.yaml")
>>> study = ablate.run_study(spec, store="ablate_store")
>>> study.best
>>> ablate.report("quickstart", store="ablate_store")  # tables, and inline HTML in Jupyter

Importing ablate loads nothing heavy: each name below loads its module on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ablate._lazy import lazy

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "load_spec": "spec.load:load",
    "run_study": "study.api",
    "Study": "study.api",
    "Best": "study.api",
    "report": "reporting.api",
    "Report": "reporting.api",
    "train": "runs.single",
    "StudySpec": "spec.config",
    "RunConfig": "spec.config",
    "TrainResult": "training.result",
    "AblateError": "errors",
    "SpecError": "errors",
    "DataError": "errors",
}

if TYPE_CHECKING:
    from ablate.errors import AblateError, DataError, SpecError
    from ablate.reporting.api import Report, report
    from ablate.runs.single import train
    from ablate.spec.config import RunConfig, StudySpec
    from ablate.spec.load import load as load_spec
    from ablate.study.api import Best, Study, run_study
    from ablate.training.result import TrainResult

__getattr__, __dir__ = lazy(__name__, _EXPORTS)

__all__ = [
    "AblateError", "Best", "DataError", "Report", "RunConfig", "SpecError", "Study",
    "StudySpec", "TrainResult", "__version__", "load_spec", "report", "run_study", "train",
]
