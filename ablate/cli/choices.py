"""The closed sets of values CLI options take, as enums so that ``--help`` lists them.

They are spelled out here rather than imported so that ``--help`` stays light (the modules
that define the sets load pandas or scipy); ``tests/test_cli_options.py`` keeps them equal.
"""

from __future__ import annotations

from enum import StrEnum


class Format(StrEnum):
    """``ablate report --format`` (:data:`ablate.reporting.FORMATS`)."""

    md = "md"
    csv = "csv"
    latex = "latex"
    json = "json"
    html = "html"


class Reader(StrEnum):
    """``ablate report --reader`` (:data:`ablate.tracking.READERS`)."""

    auto = "auto"
    mlflow = "mlflow"
    sql = "sql"


class Correction(StrEnum):
    """``ablate report --correction`` (:data:`ablate.inference.multiple.CORRECTIONS`)."""

    holm = "holm"
    bh = "bh"
    none = "none"


class Split(StrEnum):
    """``ablate predict --split``."""

    train = "train"
    val = "val"
    test = "test"


class Standin(StrEnum):
    """``ablate data make KIND`` (:data:`ablate.data.standins.KINDS`)."""

    plants = "plants"
    satellite = "satellite"
