"""An estimate over seeds with its intervals and p-values: the fields that a paired
comparison, a factorial effect, a sequential look and a report row all carry."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

NAN = math.nan


@dataclass(frozen=True, kw_only=True)
class Estimate:
    """The mean of per-seed values (differences configuration minus reference, or a
    factorial effect's per-seed contrasts) with its intervals and p-values; NaN where a
    figure does not exist (too few seeds) or does not apply.

    - ``n``: values it rests on; ``delta``: their mean; ``sd``: their standard deviation
      (ddof=1); ``se``/``df``: standard error and degrees of freedom of the t statistic;
    - ``level``: the confidence level of the intervals; ``ci_low``/``ci_high``: the t
      interval (Welch's when unpaired; the repeated confidence interval of a sequential look);
    - ``boot_low``/``boot_high``: a bootstrap interval, ``boot_method`` says which;
    - ``p``: two-sided p-value of "no difference" (sign-flip permutation when paired, Welch's
      t test when not); ``p_t``: the t test's p-value.
    """

    n: int
    delta: float
    level: float
    sd: float = NAN
    se: float = NAN
    df: float = NAN
    ci_low: float = NAN
    ci_high: float = NAN
    boot_low: float = NAN
    boot_high: float = NAN
    boot_method: str = "none"
    p: float = NAN
    p_t: float = NAN


def fields_of(kind: type, value: Any) -> dict[str, Any]:
    """The fields of dataclass ``kind`` taken from ``value`` (an instance of it or of a
    subclass), to build another class that shares them."""
    return {f.name: getattr(value, f.name) for f in fields(kind)}
