#!/usr/bin/env python
"""How long a read command takes as a fresh process, against the imports it cannot avoid.

``ablate study list`` and ``ablate study show NAME`` (each a new Python process, imports
included) over a copy of the example store's Optuna storage (the quickstart study, 8 complete
trials), against ``python -c "import optuna, sqlalchemy"`` (the floor: listing Optuna
studies needs both).
Runs are interleaved (baseline, list, show, baseline, ...) and medians are compared; the
target for ``study list`` is at most 2x the baseline.

    .venv/bin/python benchmarks/study_list.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SPEC = ROOT / "studies" / "quickstart.yaml"
EXAMPLE = ROOT / "mlruns.example" / "optuna.db"


def wall(command: list[str]) -> float:
    """Seconds a command takes as a fresh process (it must succeed)."""
    tick = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   cwd=ROOT)
    return time.perf_counter() - tick


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each (median)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # optuna's experimental-feature notes
    from ablate.spec import load_spec
    from ablate.stores import resolve_stores
    from ablate.study import create_study

    with tempfile.TemporaryDirectory(prefix="ablate-list-") as tmp:
        stores = resolve_stores(store=Path(tmp), storage=f"sqlite:///{tmp}/optuna.db",
                                tracking_uri=f"sqlite:///{tmp}/mlflow.db")
        spec = load_spec(SPEC)
        if EXAMPLE.exists():
            shutil.copy(EXAMPLE, Path(tmp) / "optuna.db")
        else:  # the quickstart study without trials
            create_study(spec, stores)
        flags = ["--storage", stores.storage, "--tracking-uri", stores.tracking_uri]
        cli = [sys.executable, "-m", "ablate.cli"]
        commands = {
            "import optuna, sqlalchemy": [sys.executable, "-c", "import optuna, sqlalchemy"],
            "ablate study list": [*cli, "study", "list", *flags],
            f"ablate study show {spec.name}": [*cli, "study", "show", spec.name, *flags],
        }
        for command in commands.values():  # warm the file cache once
            wall(command)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.repeats):
            for name, command in commands.items():
                times[name].append(wall(command))
    base_name = next(iter(commands))
    base = statistics.median(times[base_name])
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"read commands as fresh processes (median of {args.repeats}, cpus {os.cpu_count()}, "
          f"load average {load}):")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:34s} {median:6.2f} s  {median / base:5.1f}x")
    ratio = statistics.median(times["ablate study list"]) / base
    print(f"ablate study list / import optuna, sqlalchemy: {ratio:.1f}x (target <= 2.0x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
