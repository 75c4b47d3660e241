"""What applies on this machine: settings the run's device cannot honour are switched off in
the configuration it trains and logs, with the reason as a tag (``ablate.ignored.<path>``).

The value precedence (:mod:`ablate.spec.precedence`) decides what a run is asked to do; this
module only records what the device lets it do, where the run starts.
"""

from __future__ import annotations

from ablate.designs import configurations
from ablate.spec import RunConfig, StudySpec, set_dotted
from ablate.tracking import names
from ablate.training.devices import resolve_device

# dotted path -> why it does not apply off CUDA
CUDA_ONLY = {
    "optim.amp": "mixed precision is CUDA-only",
    "optim.channels_last": "channels_last memory format is used on CUDA only",
}


def device_applied(config: RunConfig) -> tuple[RunConfig, dict[str, str]]:
    """``config`` as it applies on its resolved device, and ``{dotted path: reason}`` for each
    setting switched off (empty when everything applies)."""
    device = resolve_device(config.device)
    if device.type == "cuda":
        return config, {}
    data = config.model_dump(mode="json")
    ignored: dict[str, str] = {}
    for path, reason in CUDA_ONLY.items():
        section, key = path.split(".")
        if data[section][key]:
            set_dotted(data, path, False)
            ignored[path] = f"{device.type.upper()}: {reason}"
    if not ignored:
        return config, {}
    return RunConfig.model_validate(data), ignored


def ignored_tags(ignored: dict[str, str]) -> dict[str, str]:
    """The tags that record the settings switched off."""
    return {names.ignored_tag(path): reason for path, reason in ignored.items()}


def given_paths(spec: StudySpec) -> set[str]:
    """The dotted paths a person gave: written in the spec, searched, or set by a design
    component. Only these are worth a warning when they do not apply; a default that does
    not apply is still logged as false and tagged."""
    components = {path for c in configurations(spec.design) for path in c.values}
    return set(names.flatten(spec.written())) | set(spec.search) | components


def warning_lines(ignored: dict[str, str], given: set[str]) -> list[str]:
    """One line per setting in ``ignored`` that a person gave (see :func:`given_paths`)."""
    return [f"warning: {path} does not apply ({reason}); runs log it as false with the tag "
            f"{names.ignored_tag(path)}" for path, reason in ignored.items() if path in given]
