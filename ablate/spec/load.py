"""Reading a spec: YAML (safe loader), path resolution, ``--set`` overrides, validation."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ablate.errors import SpecError
from ablate.spec.config import StudySpec
from ablate.spec.messages import format_validation_error
from ablate.spec.paths import set_dotted
from ablate.spec.yamlsafe import MAX_SPEC_BYTES, YamlLimitError, safe_yaml


def load(
    source: str | Path | Mapping[str, Any],
    *,
    profile: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> StudySpec:
    """A study spec from a YAML file or from a dict built in a notebook cell, validated.

    Args:
        source: A spec file, or the spec as a mapping (the YAML's structure; a model class
            may be given as an object under ``model.custom``). Relative paths in a file are
            relative to the file; in a mapping, to the working directory.
        profile: Apply the spec's ``profiles: {NAME: {dotted.key: value}}`` entry first
            (e.g. ``smoke``).
        overrides: ``{dotted.key: value}`` applied last, as ``--set`` on the command line
            (``{"optim.lr": 3e-4, "search.optim.lr": None}``).

    Returns:
        The validated spec; bad input raises :class:`~ablate.errors.SpecError` (one line that
        names the key and what to do).

    Example:
        >>> spec = ablate.load_spec({"name": "demo", "data": {"task": "binary", "synthetic":
        ...     {"num_images": 24, "size": 32}}, "optim": {"epochs": 2}})
        >>> spec.resolve().optim.epochs
        2
    """
    if isinstance(source, Mapping):
        raw = copy.deepcopy(dict(source))
        name, base = "spec", Path.cwd()
    else:
        path = Path(source)
        raw, name, base = _read_spec(path), str(path), path.parent
        raw.setdefault("name", path.stem)
    _apply_profile(raw, profile, name)
    for key, value in (overrides or {}).items():
        apply_value(raw, str(key), copy.deepcopy(value))
    _resolve_paths(raw, base)
    spec = spec_from_dict(raw, None, source=name)
    if not isinstance(source, Mapping):
        spec._path = str(Path(source).resolve())
    return spec


def load_spec(
    path: str | Path, overrides: list[str] | None = None, profile: str | None = None
) -> StudySpec:
    """Read, override and validate a study spec file; bad input raises :class:`SpecError`.

    ``profile`` applies the spec's ``profiles: {NAME: {dotted.key: value}}`` entry first (e.g. a
    ``smoke`` profile: tiny size, one epoch, two trials); ``--set`` overrides come after it.
    """
    path = Path(path)
    raw = _read_spec(path)
    raw.setdefault("name", path.stem)
    _apply_profile(raw, profile, str(path))
    _resolve_paths(raw, path.parent)
    spec = spec_from_dict(raw, overrides, source=str(path))
    spec._path = str(path.resolve())
    return spec


def _read_spec(path: Path) -> dict[str, Any]:
    """A spec file's YAML mapping; one-line SpecError otherwise."""
    if not path.is_file():
        raise SpecError(f"{path}: spec file not found")
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: a spec is a YAML mapping (key: value), got {type(raw).__name__}")
    return raw


def _apply_profile(raw: dict[str, Any], profile: str | None, source: str) -> None:
    """Apply ``profiles[profile]`` to ``raw`` (and drop the profiles, which are not config)."""
    profiles = raw.pop("profiles", None) or {}
    if profile is None:
        return
    if profile not in profiles:
        known = ", ".join(profiles) or "none"
        raise SpecError(f"{source}: --profile {profile}: no such profile (profiles: {known})")
    if not isinstance(profiles[profile], dict):
        raise SpecError(f"{source}: profiles.{profile}: expected a mapping of key: value")
    for key, value in profiles[profile].items():
        apply_value(raw, str(key), copy.deepcopy(value))


def read_yaml(path: Path) -> Any:
    """A spec file's YAML (UTF-8, at most ``MAX_SPEC_BYTES``, safe loader, no duplicate keys,
    aliases expanding to at most ``MAX_NODES`` nodes); one-line SpecError otherwise."""
    try:
        size = path.stat().st_size
        if size > MAX_SPEC_BYTES:
            raise SpecError(f"{path}: {size:,} bytes; a spec is at most {MAX_SPEC_BYTES:,} "
                            "bytes (is this the right file?)")
        data = path.read_bytes()
    except OSError as err:
        raise SpecError(f"{path}: cannot read the spec file ({err.strerror or err}); check "
                        "its permissions") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise SpecError(
            f"{path}: not UTF-8 text (byte 0x{data[err.start]:02x} at line {line}); save the "
            "spec as UTF-8"
        ) from None
    try:
        return safe_yaml(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise SpecError(f"{path}: malformed YAML{where}: {problem}") from None


def spec_from_dict(
    raw: dict[str, Any], overrides: list[str] | None = None, source: str = "spec"
) -> StudySpec:
    """Validate a spec held as plain data (e.g. the copy stored with a study)."""
    raw = copy.deepcopy(raw)
    for item in overrides or []:
        apply_override(raw, item)
    try:
        spec = StudySpec.model_validate(raw)
    except ValidationError as err:
        raise SpecError(format_validation_error(err, source, StudySpec)) from None
    spec._source = source
    return spec


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Apply one ``--set key.path=value`` (value parsed as YAML) to raw spec data."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise SpecError(f"--set {item!r}: expected key.path=value, e.g. --set optim.lr=0.001")
    try:
        value = safe_yaml(text)
    except YamlLimitError as err:
        raise SpecError(f"--set {key}: {err.problem}") from None
    except yaml.YAMLError:
        value = text
    apply_value(raw, key, value)


def apply_value(raw: dict[str, Any], key: str, value: Any) -> None:
    """Set one dotted key of raw spec data; ``search.<path>`` keys address search entries
    (``search.optim.lr.high``), and null removes a search entry."""
    if key.startswith("search.") and isinstance(raw.get("search"), dict):
        rest = key.removeprefix("search.")
        for name in sorted(raw["search"], key=len, reverse=True):
            if rest == name:
                if value is None:
                    del raw["search"][name]
                else:
                    raw["search"][name] = value
                return
            if rest.startswith(name + "."):
                raw["search"][name][rest[len(name) + 1 :]] = value
                return
        raw["search"][rest] = value
        return
    set_dotted(raw, key, value)


def _resolve_paths(raw: dict[str, Any], base: Path) -> None:
    """Make paths in the spec file relative to the file, not to the working directory."""
    data = raw.get("data")
    if isinstance(data, dict) and isinstance(data.get("root"), str):
        data["root"] = str((base / data["root"]).resolve())
    model = raw.get("model")
    if isinstance(model, dict):
        weights = model.get("encoder_weights")
        if isinstance(weights, str) and (base / weights).is_file():
            model["encoder_weights"] = str((base / weights).resolve())
