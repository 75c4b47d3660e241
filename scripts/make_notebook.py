"""Write examples/quickstart.ipynb and run it, keeping its outputs (the committed copy).

    .venv/bin/python scripts/make_notebook.py            # the full quickstart (a few minutes)
    ABLATE_NOTEBOOK_PROFILE=smoke .venv/bin/python scripts/make_notebook.py --no-save

The notebook does the quickstart from Python: ablate.load_spec -> ablate.run_study ->
Study.best / trials() / report(), and trains a model class defined in the notebook itself.
``make test`` runs it headless with the smoke profile (tests/test_notebook.py).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "examples" / "quickstart.ipynb"

CELLS = [
    ("markdown", """# ablate quickstart, from Python

The same study as `make quickstart`: 8 trials on the ISBI 2012 membrane stack (binary EM
segmentation), searching the learning rate, the BCE/Focal/Jaccard mix, BCE's `pos_weight` and
two flips. Every run is tracked in MLflow (local SQLite files in `STORE`); the report is read
back from there. The spec is `studies/quickstart.yaml`; a spec can also be a dict built here."""),
    ("code", """import os

import ablate

STORE = os.environ.get("ABLATE_NOTEBOOK_STORE", "ablate_store")  # where runs are tracked
PROFILE = os.environ.get("ABLATE_NOTEBOOK_PROFILE")  # "smoke": a one-minute check
spec = ablate.load_spec("../studies/quickstart.yaml", profile=PROFILE)
spec.name, spec.trials, list(spec.search)"""),
    ("markdown", """`run_study` creates the study (or joins the one this spec created) and runs its
trials; run it again and it runs what is left. Progress bars are widgets in Jupyter."""),
    ("code", """study = ablate.run_study(spec, store=STORE)
study.best"""),
    ("code", """study.trials()"""),
    ("markdown", """The report: every table as a DataFrame, and the whole report inline (the same
as `ablate report quickstart --format html`)."""),
    ("code", """report = study.report()
report.tables["ablation"]"""),
    ("code", """report"""),
    ("markdown", """## A model of your own

A class defined in the notebook trains in this process; its run records the import path
(`__main__:TinyNet`) and the class's source (`model_source.py`), so it can be reproduced."""),
    ("code", """from torch import nn


class TinyNet(nn.Module):
    \"\"\"Two convolutions and a 1x1 head: a floor for the U-Net above.\"\"\"

    def __init__(self, in_channels: int, classes: int, width: int = 16):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=2, dilation=2), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, classes, 1))

    def forward(self, x):
        return self.body(x)


tiny = ablate.load_spec("../studies/quickstart.yaml", profile=PROFILE, overrides={
    "name": "quickstart_tinynet", "model": {"custom": TinyNet, "width": 16}})
result = ablate.train(tiny, store=STORE)
{"val_iou": round(result.metrics["val"]["iou"], 4), "gflops": round(result.gflops, 4),
 "run": result.run_id}"""),
    ("markdown", """Browse every run: `ablate ui --store ablate_store` (from the `examples/`
folder) prints the address of the study's runs in the MLflow UI."""),
]


def build() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    for kind, text in CELLS:
        cell = (nbformat.v4.new_markdown_cell(text) if kind == "markdown"
                else nbformat.v4.new_code_cell(text))
        nb.cells.append(cell)
    return nb


def run(nb: nbformat.NotebookNode, timeout: int = 1800) -> nbformat.NotebookNode:
    """Execute ``nb`` in examples/ (as Jupyter would) and return it with its outputs."""
    from jupyter_client.manager import KernelManager

    with tempfile.TemporaryDirectory(prefix="ablate-kernel-") as sockets:
        # local sockets, not TCP; an absolute path, as the kernel runs in examples/
        kernel = KernelManager(kernel_name="python3", transport="ipc",
                               ip=str(Path(sockets) / "kernel"))
        NotebookClient(nb, km=kernel, timeout=timeout,
                       resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    return nb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-save", action="store_true", help="run it, keep nothing")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ablate-nb-") as tmp:
        os.environ.setdefault("ABLATE_NOTEBOOK_STORE", str(Path(tmp) / "store"))
        nb = run(build())
    if not args.no_save:
        nbformat.write(nb, NOTEBOOK)
        print(f"wrote {NOTEBOOK}")


if __name__ == "__main__":
    main()
