"""Rendering a report's sections: HTML lists, one notation for infinity, tables that scroll
in their box, markdown tables padded for MLflow's renderer."""

from __future__ import annotations

import re

import pandas as pd

from ablate.reporting import export
from ablate.reporting.sections import Section, Table

VIEW = pd.DataFrame({"config": ["+a", "baseline"], "diff": ["+0.0123", "baseline"],
                     "95% CI": ["[-inf, +inf]", ""], "MDE": ["∞", ""]})
SECTION = Section(
    "Ablation table", ["One row per configuration; `inf`: no p-value is that small."],
    Table("ablation", VIEW),
    ["Method: a paragraph, not a list - even with a dash inside.",
     "- `+a` vs `baseline`: **undecided**: effect at 80% power inf (level 0.05).\n"
     "- `+b` vs `baseline`: **better**: p_adj 0.01."])


def test_html_has_real_lists_one_infinity_and_scrolling_tables():
    page = export.html("Ablation report: t", ["Objective: `val_iou`."], [SECTION], [])
    assert "<ul><li><code>+a</code> vs <code>baseline</code>: <strong>undecided</strong>" in page
    assert page.count("<li>") == 2 and "<p>- " not in page and "<li>- " not in page
    assert "<p>Method: a paragraph, not a list - even with a dash inside.</p>" in page
    assert not re.search(r"(?<![\w.])[+-]?inf(?!\w)", re.sub(r"<[^>]+>", " ", page))
    assert "power ∞ (level" in page and "[-∞, +∞]" in page and "<code>∞</code>" in page
    assert '<div class="table"><table>' in page and ".table { overflow-x: auto;" in page


def test_markdown_writes_infinity_once_and_pads_cells_for_mlflow():
    text = export.markdown("Ablation report: t", [], [SECTION], [])
    assert "inf " not in text and "[-∞, +∞]" in text and "power ∞ (level" in text
    assert "- `+b` vs `baseline`: **better**" in text  # a markdown list stays one
    padded = export.markdown_table(VIEW, padded=True)
    header, rule, first, _ = padded.splitlines()
    assert header.startswith("| &nbsp;config&nbsp;") and "&nbsp;95% CI&nbsp;" in header
    assert "&nbsp;+a&nbsp;" in first and "&nbsp;[-∞, +∞]&nbsp;" in first
    assert set(rule) <= set("|:-")
    plain = export.markdown_table(VIEW)
    assert "&nbsp;" not in plain and "[-∞, +∞]" in plain
    assert export.one_infinity("info, inference, x_inf, ablate.inf") == (
        "info, inference, x_inf, ablate.inf")
