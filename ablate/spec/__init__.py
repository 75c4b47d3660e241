"""The study spec: a YAML file, validated into typed models.

A :class:`StudySpec` declares a whole study. Each trial receives a :class:`RunConfig`: the spec's
configuration sections with the sampled values written in. The run config is what ``train()``
gets, what is logged, and what reproduces a run.
"""

from ablate.naming import slug
from ablate.spec.config import (
    Component,
    DesignSpec,
    PrunerSpec,
    RepeatRange,
    ReportSpec,
    RunConfig,
    SamplerSpec,
    SearchParam,
    StudySpec,
)
from ablate.spec.load import apply_override, load, load_spec, spec_from_dict
from ablate.spec.paths import set_dotted
from ablate.spec.sections import (
    BINARY_METRICS,
    MODEL_OBJECTIVES,
    MULTICLASS_METRICS,
    SPLITS,
    AugmentSpec,
    BCESpec,
    CESpec,
    DataSpec,
    DerivedChannels,
    EvalSpec,
    FocalSpec,
    JaccardSpec,
    LossSpec,
    ModelSpec,
    ObjectiveSpec,
    OptimSpec,
    SplitDir,
    SyntheticSpec,
    TverskySpec,
    metric_names,
)

__all__ = [
    "BINARY_METRICS",
    "MULTICLASS_METRICS",
    "MODEL_OBJECTIVES",
    "Component",
    "DesignSpec",
    "SPLITS",
    "AugmentSpec",
    "BCESpec",
    "CESpec",
    "DataSpec",
    "DerivedChannels",
    "EvalSpec",
    "FocalSpec",
    "JaccardSpec",
    "LossSpec",
    "ModelSpec",
    "ObjectiveSpec",
    "OptimSpec",
    "PrunerSpec",
    "RepeatRange",
    "ReportSpec",
    "RunConfig",
    "SamplerSpec",
    "SearchParam",
    "SplitDir",
    "StudySpec",
    "SyntheticSpec",
    "TverskySpec",
    "apply_override",
    "load",
    "load_spec",
    "metric_names",
    "set_dotted",
    "slug",
    "spec_from_dict",
]
