"""Render a report's sections as markdown, CSV, LaTeX or one self-contained HTML file (the same
tables in each format). Text infinities read ``∞`` in markdown and HTML, whichever module
formatted them."""

from __future__ import annotations

import base64
import html as html_lib
import json
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ablate.reporting.sections import Section

FORMATS = ("md", "csv", "latex", "json", "html")
SUFFIX = {"md": ".md", "csv": ".csv", "latex": ".tex", "json": ".json", "html": ".html"}


def _link(path: Path, base: Path | None) -> str:
    return os.path.relpath(path, base) if base is not None else str(path)


def _numeric(column: pd.Series) -> bool:
    if pd.api.types.is_numeric_dtype(column):
        return True
    text = column.astype(str).str.replace(r"[\s,±+%\[\]∞]|n/a|\binf\b|e[+-]", "", regex=True)
    return bool(text.str.fullmatch(r"[-0-9.]*").all())


# "inf", "+inf", "-inf" as a word of their own (not "info", "inference", "x_inf")
_INFINITY = re.compile(r"(?<![\w.])([+-]?)inf(?!\w)")
# MLflow's markdown renderer draws tables without cell padding: cells would run together
_PAD = "&nbsp;"


def one_infinity(text: str) -> str:
    """``text`` with Python's ``inf`` written ``∞`` (the notation the report's tables use)."""
    return _INFINITY.sub(r"\1∞", text)


def markdown_table(table: pd.DataFrame, padded: bool = False) -> str:
    """The table as the cells were formatted (no re-parsing of numbers); numbers right-aligned;
    ``padded``: each cell between non-breaking spaces (for MLflow's renderer)."""
    align = ["right" if _numeric(table[c]) else "left" for c in table.columns]
    cells = table.map(lambda v: "" if v is None else one_infinity(str(v)))  # as tabulate
    if padded:
        cells = cells.map(lambda v: f"{_PAD}{v}{_PAD}")
        cells.columns = [f"{_PAD}{c}{_PAD}" for c in cells.columns]
    return cells.to_markdown(index=False, disable_numparse=True, colalign=align)


def markdown(title: str, header: list[str], sections: list[Section], footer: list[str],
             base: Path | None = None) -> str:
    """The markdown document; figure links are relative to ``base`` (the report's folder)."""
    out = [f"# {title}", "", *map(one_infinity, header), ""]
    for section in sections:
        out += ["#" * section.level + " " + section.title, ""]
        for paragraph in section.text:
            out += [one_infinity(paragraph), ""]
        if section.table is not None:
            shown = section.table.shown
            out += [section.empty if shown.empty else markdown_table(shown), ""]
        for note in section.notes:
            out += [one_infinity(note), ""]
        for caption, path in section.figures:
            out += [f"![{caption}]({_link(path, base)})", ""]
    if footer:
        out += ["---", ""]
        for line in footer:
            out += [line, ""]
    return "\n".join(out)


def csv_text(sections: list[Section]) -> str:
    """Every table's numbers as CSV, one block per table headed ``# <section title>``."""
    blocks = []
    for section in sections:
        if section.table is not None and not section.table.data.empty:
            blocks.append(f"# {section.title}\n{section.table.data.to_csv(index=False)}")
    return "\n".join(blocks)


def csv_files(sections: list[Section], out: Path) -> list[Path]:
    """One CSV file per table next to ``out``: ``<stem>_<table key>.csv``."""
    written = []
    for section in sections:
        table = section.table
        if table is not None and not table.data.empty:
            path = out.with_name(f"{out.stem}_{table.key}.csv")
            table.data.to_csv(path, index=False)
            written.append(path)
    return written


_LATEX = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
          "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
          "\\": r"\textbackslash{}"}


def escape_latex(text: str) -> str:
    """Text with LaTeX's special characters escaped (for captions)."""
    return "".join(_LATEX.get(char, char) for char in text)


def _label(name: str, key: str) -> str:
    return "tab:" + re.sub(r"[^A-Za-z0-9]+", "-", f"{name}-{key}").strip("-").lower()


def latex(name: str, sections: list[Section], base: Path | None = None) -> str:
    """One ``table`` environment per table (``DataFrame.to_latex``, cells escaped), the
    section title as its caption; figures as ``figure`` environments."""
    blocks = [f"% ablate report: {name} (needs \\usepackage{{graphicx}} for the figures)"]
    for section in sections:
        table = section.table
        if table is not None and not table.shown.empty:
            blocks.append(table.shown.to_latex(
                index=False, escape=True, caption=escape_latex(section.title),
                label=_label(name, table.key), position="htbp"))
        for caption, path in section.figures:
            blocks.append(
                "\\begin{figure}[htbp]\n\\centering\n"
                f"\\includegraphics[width=\\linewidth]{{{_link(path, base)}}}\n"
                f"\\caption{{{escape_latex(caption)}}}\n\\end{{figure}}\n")
    return "\n".join(blocks)


def _plain(value: Any) -> Any:
    """A cell as JSON: numpy scalars as Python, NaN/inf/NA as null."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_text(summary: dict[str, Any], sections: list[Section], footer: list[str]) -> str:
    """The report as one JSON object: ``summary`` (study, objective, settings, ...), then
    ``tables``: each table's numbers by its key, ``{"title", "text", "notes", "rows"}`` with one
    object per row (NaN as null), and the ``footer``."""
    tables: dict[str, Any] = {}
    for section in sections:
        table = section.table
        if table is None:
            continue
        rows = [{str(k): _plain(v) for k, v in record.items()}
                for record in table.data.to_dict("records")]
        tables[table.key] = {"title": section.title, "text": section.text,
                             "notes": section.notes, "rows": rows}
    document = {**summary, "tables": tables, "footer": footer}
    return json.dumps(document, indent=2, allow_nan=False) + "\n"


STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328;
       max-width: 1100px; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 1.6em; border-bottom: 1px solid #d0d7de; padding-bottom: .3em; }
h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #d0d7de; }
h3 { font-size: 1.05em; margin-top: 1.4em; }
.table { overflow-x: auto; margin: .8em 0; max-width: 100%; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: 3px 8px; white-space: nowrap; }
th { background: #f6f8fa; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #f9fafb; }
code { background: #eff1f3; padding: 0 .3em; border-radius: 4px; font-size: 90%; }
ul { padding-left: 1.4em; } li { margin: .25em 0; }
figure { margin: 1em 0; } figure img { max-width: 100%; }
figcaption { color: #59636e; font-size: 12px; }
footer { margin-top: 2em; border-top: 1px solid #d0d7de; color: #59636e; }
"""


def _inline(text: str) -> str:
    """Markdown's inline code, bold and italics (all the report's text uses) as HTML."""
    out = html_lib.escape(one_infinity(text), quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"(?<![\w])_(.+?)_(?![\w])", r"<em>\1</em>", out)


def _html_table(table: pd.DataFrame) -> str:
    numeric = [_numeric(table[c]) for c in table.columns]
    head = "".join(f"<th>{html_lib.escape(str(c))}</th>" for c in table.columns)
    rows = []
    for values in table.itertuples(index=False):
        cells = "".join(
            f'<td class="num">{html_lib.escape(one_infinity(str(v)))}</td>' if is_num
            else f"<td>{html_lib.escape(one_infinity(str(v)))}</td>"
            for v, is_num in zip(values, numeric, strict=True))
        rows.append(f"<tr>{cells}</tr>")
    # the box scrolls a table wider than the page, not the page
    return (f'<div class="table"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _block(text: str) -> str:
    """A paragraph as HTML: a markdown list (every line "- ...") as a list, else a paragraph."""
    lines = text.splitlines()
    if lines and all(line.startswith("- ") for line in lines):
        return "<ul>" + "".join(f"<li>{_inline(line[2:])}</li>" for line in lines) + "</ul>"
    return f"<p>{_inline(text)}</p>"


def _figure(caption: str, path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    alt = html_lib.escape(caption)
    return (f'<figure><img alt="{alt}" src="data:image/png;base64,{data}">'
            f"<figcaption>{alt}</figcaption></figure>")


def html(title: str, header: list[str], sections: list[Section], footer: list[str]) -> str:
    """One self-contained HTML document: tables as HTML, figures embedded as base64 PNG, an
    inline stylesheet; nothing else is loaded, so it opens offline and anywhere."""
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{html_lib.escape(title)}</title><style>{STYLE}</style></head><body>",
           f"<h1>{html_lib.escape(title)}</h1>"]
    out += [_block(line) for line in header]
    for section in sections:
        level = min(max(section.level, 2), 6)
        out.append(f"<h{level}>{_inline(section.title)}</h{level}>")
        out += [_block(paragraph) for paragraph in section.text]
        if section.table is not None:
            shown = section.table.shown
            out.append(f"<p>{_inline(section.empty)}</p>" if shown.empty else _html_table(shown))
        out += [_block(note) for note in section.notes]
        out += [_figure(caption, path) for caption, path in section.figures]
    if footer:
        out.append("<footer>" + "".join(f"<p>{_inline(line)}</p>" for line in footer)
                   + "</footer>")
    out.append("</body></html>")
    return "\n".join(out)
