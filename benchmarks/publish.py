"""What refreshing a study's summary in MLflow costs a worker, on N trial runs.

    .venv/bin/python benchmarks/publish.py                          # 1,000 runs, temporary store
    .venv/bin/python benchmarks/publish.py --keep /tmp/scale        # keep (and reuse) the store

The store is the one ``benchmarks/report_scale.py`` builds (same contract, same content; a
store kept by either script is reused by the other). It times, in one process as a worker
does it: one refresh as :class:`ablate.reporting.publish.Publisher` runs it (read the runs,
the compact table, the full HTML report, the writes), the median of ``--repeats`` after a
first one that pays the imports; and its parts: reading the runs, the summary without the
HTML, the summary with it. After a finished trial the publisher refreshes the descriptions,
and separately the HTML report, only when its last refresh took at most 5 % of the time
since (``ablate.reporting.publish.SHARE``); the last line says what that means here.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1000, help="trial runs in the store")
    parser.add_argument("--keep", type=Path, help="store folder to keep (reused if it matches)")
    parser.add_argument("--repeats", type=int, default=3, help="timed refreshes (median)")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    import report_scale

    folder = (args.keep or Path(tempfile.mkdtemp(prefix="ablate_publish_"))).absolute()
    folder.mkdir(parents=True, exist_ok=True)
    # The fixture store's experiment keeps MLflow's default, cwd-relative artifact location
    # (./mlruns): report.html goes there, inside the store folder.
    os.chdir(folder)
    uri = f"sqlite:///{folder.absolute() / 'mlflow.db'}"
    if os.getloadavg()[0] > 0.5:
        print(f"warning: load average {os.getloadavg()[0]:.1f}: other processes compete")
    existing = report_scale._store_size(uri) if (folder / "mlflow.db").exists() else -1
    if existing != args.runs:
        if (folder / "mlflow.db").exists():
            (folder / "mlflow.db").unlink()
        print(f"filling {uri} with {args.runs} trial runs ...")
        report_scale.fill(uri, args.runs)

    from ablate.reporting.publish import SHARE, Publisher, summarize
    from ablate.reporting.runs import load_runs
    from ablate.stores import resolve_stores
    from ablate.tracking import Tracker

    stores = resolve_stores(store=folder, tracking_uri=uri)
    publisher = Publisher(stores, report_scale.STUDY)
    first = publisher.publish()
    refreshes = [publisher.publish() for _ in range(args.repeats)]
    if first is None or None in refreshes:
        raise SystemExit("a refresh failed (see the warning above)")
    parent = Tracker(stores).find_parent(report_scale.STUDY)
    parts: dict[str, list[float]] = {"read the runs": [], "summary, no HTML": [],
                                     "summary with the HTML report": []}
    for _ in range(args.repeats):
        started = time.perf_counter()
        study = load_runs(stores, report_scale.STUDY)
        read = time.perf_counter()
        summarize(study, parent, html=False)
        table = time.perf_counter()
        summary = summarize(study, parent, html=True)
        done = time.perf_counter()
        for key, value in zip(parts, (read - started, table - read, done - table), strict=True):
            parts[key].append(value)
    cost = statistics.median(refreshes)
    print(f"one refresh on {args.runs} trial runs (s): first {first:.2f} (imports included), "
          f"then median {cost:.2f} ({', '.join(f'{t:.2f}' for t in refreshes)})")
    for key, values in parts.items():
        print(f"  {key:30s} {statistics.median(values):6.2f}")
    print(f"  report.html: {len(summary.html or '') / 1e6:.1f} MB; description: "
          f"{len(summary.description):,} characters")
    wait = 1 / SHARE - 1
    print(f"after a trial, at most {SHARE:.0%} of a worker's time: the descriptions at most "
          f"every {publisher.summary_pace.cost * wait:.0f} s, report.html every "
          f"{publisher.report_pace.cost * wait:.0f} s; both once at the end of `study run`")
    if args.keep is None:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
