"""The quickstart notebook runs headless in a fresh kernel: load_spec -> run_study -> report
gives DataFrames and an inline HTML report, and a class defined in the notebook trains."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow  # starts a kernel and trains


def test_the_quickstart_notebook_runs_headless(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    from scripts.make_notebook import NOTEBOOK, run

    monkeypatch.setenv("ABLATE_NOTEBOOK_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("ABLATE_NOTEBOOK_PROFILE", "smoke")
    committed = nbformat.read(NOTEBOOK, as_version=4)
    executed = run(committed, timeout=600)  # raises CellExecutionError on any error
    outputs = [o for cell in executed.cells if cell.cell_type == "code" for o in cell.outputs]
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("<table" in h for h in html)  # trials() and the ablation table as DataFrames
    assert any("Ablation report: quickstart_smoke" in h and "data:image/png;base64" in h
               for h in html)  # the inline report, figures embedded
    texts = [o["data"]["text/plain"] for o in outputs if "text/plain" in o.get("data", {})]
    assert any("Best(configuration=" in t for t in texts)
    assert any("'val_iou'" in t and "'run'" in t for t in texts)  # the notebook's own model
    assert (tmp_path / "store" / "mlflow.db").is_file()
