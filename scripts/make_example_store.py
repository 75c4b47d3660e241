"""Re-create ``mlruns.example/``: the stores of a real quickstart run, as committed files.

The store is portable as written: ablate creates its experiments with ``mlflow-artifacts:/``
locations relative to the store's ``artifacts/`` folder, which the MLflow UI serves from
``--artifacts-destination mlruns.example/artifacts`` (``ablate ui`` passes it). Each database
becomes one self-contained file (no WAL), the report is written next to it.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "mlruns.example"


def main() -> None:
    if EXAMPLE.exists():
        shutil.rmtree(EXAMPLE)
    ablate = Path(sys.executable).parent / "ablate"
    subprocess.run(
        # no model weights: the committed store stays small (eval.save_weights shows it)
        [str(ablate), "study", "run", "studies/quickstart.yaml", "--store", str(EXAMPLE),
         "--quiet", "--set", "eval.save_weights=none"],
        check=True, cwd=REPO,
    )
    with closing(sqlite3.connect(EXAMPLE / "mlflow.db")) as db:
        local = db.execute("SELECT count(*) FROM runs WHERE artifact_uri NOT LIKE "
                           "'mlflow-artifacts:%'").fetchone()[0]
    if local:
        raise SystemExit(f"{local} run(s) in {EXAMPLE} have absolute artifact URIs")
    # each database one self-contained file to commit (WAL stores: every connection closed
    # first, or the journal mode cannot change)
    for path in EXAMPLE.glob("*.db"):
        with closing(sqlite3.connect(path, timeout=60)) as db:
            db.execute("PRAGMA journal_mode=DELETE")
    with closing(sqlite3.connect(EXAMPLE / "mlflow.db", timeout=60)) as db:
        db.execute("VACUUM")
    for leftover in list(EXAMPLE.glob("*.lock")) + list(EXAMPLE.glob("*.db-*")):
        leftover.unlink()
    shutil.rmtree(EXAMPLE / "logs", ignore_errors=True)  # the run's log: empty, machine-local
    subprocess.run(
        [str(ablate), "report", "quickstart", "--store", str(EXAMPLE),
         "--out", str(EXAMPLE / "report.md")],
        check=True, cwd=REPO, stdout=subprocess.DEVNULL,
    )
    print(f"wrote {EXAMPLE.relative_to(REPO)}; open it with: ablate ui --store mlruns.example")


if __name__ == "__main__":
    main()
