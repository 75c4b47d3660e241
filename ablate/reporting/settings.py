"""How the report decides: the spec's ``report:`` section as the parent run records it, with
the command line's overrides, and the adaptive-repeats plan the study ran under."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from typing import Any

from ablate.errors import AblateError
from ablate.inference import Correction
from ablate.inference.decision import ALPHA
from ablate.inference.multiple import CORRECTIONS


@dataclass(frozen=True)
class Settings:
    """``correction`` and ``alpha`` of the decisions, the optional ``equivalence_margin`` and
    ``target_effect``; ``repeats``: (min, max) of an adaptive design, None for fixed repeats."""

    correction: Correction = "holm"
    alpha: float = ALPHA
    equivalence_margin: float | None = None
    target_effect: float | None = None
    repeats: tuple[int, int] | None = None

    @property
    def adaptive(self) -> bool:
        return self.repeats is not None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["repeats"] = ({"min": self.repeats[0], "max": self.repeats[1]}
                          if self.repeats is not None else None)
        return out

    def override(self, **values: Any) -> Settings:
        """These settings with the given non-None values replaced (checked like the spec)."""
        given = {k: v for k, v in values.items() if v is not None}
        if "correction" in given and given["correction"] not in CORRECTIONS:
            raise AblateError(f"--correction: unknown correction '{given['correction']}'; use "
                              f"one of {', '.join(CORRECTIONS)}")
        if "alpha" in given and not 0.0 < given["alpha"] < 0.5:
            raise AblateError(f"--alpha: {given['alpha']} is outside (0, 0.5)")
        for key in ("equivalence_margin", "target_effect"):
            if key in given and not given[key] > 0:
                flag = "--" + key.replace("_", "-")
                raise AblateError(f"{flag}: must be > 0, got {given[key]}")
        return replace(self, **given)


def from_tags(report: str | None, repeats: str | None) -> Settings:
    """Settings from the parent's ``ablate.report`` and ``ablate.repeats`` tags (JSON); a
    study written before they existed gets the defaults and fixed repeats."""
    raw = _json(report)
    section = raw if isinstance(raw, dict) else {}
    known = {k: section[k] for k in ("correction", "alpha", "equivalence_margin",
                                     "target_effect") if section.get(k) is not None}
    settings = Settings().override(**known)
    plan = _json(repeats)
    if isinstance(plan, dict) and {"min", "max"} <= set(plan):
        settings = replace(settings, repeats=(int(plan["min"]), int(plan["max"])))
    return settings


def _json(raw: str | None) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None
