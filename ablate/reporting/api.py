"""Reports from Python: :func:`report` and the :class:`Report` it returns, with its tables as
DataFrames and an inline HTML view for notebooks."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ablate.errors import AblateError
from ablate.stores import Stores, resolve_stores

if TYPE_CHECKING:
    import pandas as pd

    from ablate.reporting.assemble import Report as Built

FORMATS = ("md", "html", "csv", "latex", "json")
_SETTINGS = ("alpha", "correction", "equivalence_margin", "target_effect")


class Report:
    """A study's report, read from its MLflow runs.

    Attributes:
        name: The study's name.
        tables: Every table of the report by its key (``"ablation"``, ``"efficiency"``,
            ``"pareto"``, ``"steps"``, ...), numbers as numbers.

    Example:
        >>> report = ablate.report("quickstart", store="ablate_store")
        >>> report.tables["ablation"].head()
        >>> report.save("reports/quickstart.html")
        >>> report  # in Jupyter: the whole report, with its figures
    """

    def __init__(self, name: str, stores: Stores, built: Built, figures: Any,
                 options: dict[str, Any]):
        self.name = name
        self.stores = stores
        self._built = built
        self._figures = figures  # the folder of the figures, kept while the report lives
        self._options = options

    @classmethod
    def read(cls, name: str, stores: Stores, *, compare: str | None = None,
             trials: list[int] | None = None, **settings: Any) -> Report:
        """Read study ``name`` from ``stores`` and build its report (see :func:`report`)."""
        from ablate.reporting.assemble import build
        from ablate.reporting.runs import load_runs

        unknown = set(settings) - set(_SETTINGS)
        if unknown:
            raise AblateError(f"report(): unknown option {sorted(unknown)[0]!r}; the options "
                              f"are compare, trials, {', '.join(_SETTINGS)}")
        study = load_runs(stores, name)
        other = load_runs(stores, compare) if compare else None
        figures = tempfile.TemporaryDirectory(prefix="ablate-report-")
        built = build(study, other, trials, Path(figures.name) / "report",
                      study.settings.override(**settings))
        return cls(name, stores, built, figures,
                   {"compare": compare, "trials": trials, **settings})

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        return {s.table.key: s.table.data for s in self._built.sections if s.table is not None}

    def to_markdown(self) -> str:
        """The report as markdown (figures are linked by :meth:`save` only)."""
        from ablate.reporting.assemble import render

        return render(self._built, "md")

    def to_html(self) -> str:
        """The report as one self-contained HTML document, figures embedded."""
        from ablate.reporting.assemble import render

        return render(self._built, "html")

    def _repr_html_(self) -> str:
        return self.to_html()

    def __repr__(self) -> str:
        return f"Report({self.name!r}: {', '.join(self.tables)})"

    def save(self, path: str | Path, format: str | None = None) -> list[Path]:
        """Write the report to ``path`` in ``format`` (default: from its suffix: .md, .html,
        .csv, .tex, .json), figures next to it as ``ablate report --out`` writes them;
        returns every file written."""
        from ablate.reporting.assemble import write_report

        path = Path(path)
        fmt = format or {".html": "html", ".htm": "html", ".csv": "csv", ".tex": "latex",
                         ".json": "json"}.get(path.suffix.lower(), "md")
        if fmt not in FORMATS:
            raise AblateError(f"format={fmt!r}: use one of {', '.join(FORMATS)}")
        settings = {k: v for k, v in self._options.items() if k in _SETTINGS}
        _, written = write_report(self.stores, self.name, out=path, fmt=fmt,
                                  compare=self._options.get("compare"),
                                  trials=self._options.get("trials"), overrides=settings)
        return written


def report(
    name: str,
    *,
    store: str | Path | None = None,
    storage: str | None = None,
    tracking_uri: str | None = None,
    **options: Any,
) -> Report:
    """The report of study ``name``, read from its MLflow runs, as ``ablate report`` makes it.

    Args:
        name: The study.
        store: The folder of the embedded stores (default ``./ablate_store``).
        storage: The Optuna storage URL (accepted like the command line's; the report reads
            MLflow only).
        tracking_uri: An MLflow tracking URI instead of the store's.
        **options: ``compare`` (another study, side by side), ``trials`` (trial numbers for
            the per-split tables), ``alpha``, ``correction`` (``holm``, ``bh``, ``none``),
            ``equivalence_margin``, ``target_effect`` (how the report decides; default: the
            study's spec).

    Returns:
        The report: ``tables`` as DataFrames, ``to_markdown()``, ``to_html()``, ``save()``;
        shown inline in Jupyter.

    Example:
        >>> r = ablate.report("quickstart", store="ablate_store", alpha=0.1)
        >>> r.tables["ablation"]
    """
    return Report.read(name, resolve_stores(store, storage, tracking_uri), **options)
