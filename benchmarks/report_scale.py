"""How long `ablate report` takes on a large study: N trial runs in a local SQLite MLflow store.

    .venv/bin/python benchmarks/report_scale.py                      # 1,000 runs, temporary store
    .venv/bin/python benchmarks/report_scale.py --runs 1000,10000    # both sizes, cost per run
    .venv/bin/python benchmarks/report_scale.py --runs 1000 --keep /tmp/scale   # keep (and reuse)

The store is filled through ``MlflowClient`` (one ``create_run`` and a few ``log_batch`` calls
per run; beyond 1,000 runs, row copies of those, see ``replicate``) in the tracking contract of
a real search study: a binary task, 7 searched values
(3 floats, an int, a categorical, 2 bool toggles), ~80 params, ~110 final metrics (3 splits,
a 3-threshold scan, model figures) and 5 epochs of curves per run; ~4 % of the trials fail
(half of them retried), ~4 % are pruned. With ``--keep DIR`` an existing store of the same size
in DIR/runsN is reused instead of regenerated.

It then times, on an otherwise idle machine: the in-process report (read + tables + PNG plots,
imports excluded) and the CLI subprocess wall time ``ablate report NAME --out FILE`` (imports
included), each the median of ``--repeats`` runs. The CLI is timed twice: with the fANOVA
importances computed by the report (a study still running: scikit-learn is imported and the
forest fitted), and after publishing the study as the end of ``study run`` does, which stores
them (a finished study: the report reuses them while its inputs are unchanged).
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

STUDY = "scale"
SEARCH = {
    "optim.lr": "float", "loss.weights.focal": "float", "loss.bce.pos_weight": "float",
    "data.batch_size": "int", "model.arch": "categorical",
    "augment.hflip": "bool", "augment.rot90": "bool",
}
THRESHOLDS = (0.25, 0.5, 0.75)
PIXELS = {"train": 30 * 128 * 128, "val": 6 * 128 * 128, "test": 6 * 128 * 128}


def _counts(rng: np.random.Generator, quality: float, pixels: int, thr: float = 0.5) -> tuple:
    positive = int(pixels * 0.7)
    shift = (0.5 - thr) * 0.4  # a lower threshold finds more positives, and more false ones
    tp = int(positive * min(0.99, max(0.05, quality + shift + rng.normal(0, 0.01))))
    fp = int((pixels - positive) * min(0.9, max(0.01, 0.4 - quality / 3 + shift)))
    return tp, fp, positive - tp, pixels - positive - fp


def _run_values(rng: np.random.Generator) -> tuple[dict, dict, dict, float, list[dict]]:
    searched = {
        "optim.lr": float(10 ** rng.uniform(-4, -2)),
        "loss.weights.focal": float(rng.uniform(0, 1)),
        "loss.bce.pos_weight": float(rng.uniform(0.5, 3)),
        "data.batch_size": int(rng.choice([2, 4, 8])),
        "model.arch": str(rng.choice(["Unet", "FPN", "DeepLabV3Plus"])),
        "augment.hflip": bool(rng.integers(2)), "augment.rot90": bool(rng.integers(2)),
    }
    quality = 0.55 + 0.1 * (math.log10(searched["optim.lr"]) + 3) / 1.0 \
        + 0.05 * searched["augment.hflip"] + rng.normal(0, 0.03)
    gflops = {"Unet": 0.83, "FPN": 0.61, "DeepLabV3Plus": 1.12}[searched["model.arch"]]
    from ablate.testing.fixtures import binary_metrics

    metrics: dict[str, float] = {}
    for split, pixels in PIXELS.items():
        metrics.update(binary_metrics(split, *_counts(rng, quality, pixels)))
        metrics[f"{split}_loss"] = float(1 - quality + rng.normal(0, 0.01))
        for thr in THRESHOLDS:
            for name, value in zip(("tp", "fp", "fn", "tn"), _counts(rng, quality, pixels, thr),
                                   strict=True):
                metrics[f"{split}_thr{thr:g}_{name}"] = value
    metrics.update({
        "params": 12.45e6, "gflops": gflops, "efficiency": 100 * metrics["val_iou"] / gflops,
        "model_size_mb": 47.5, "latency_ms": 20 * gflops + rng.normal(0, 0.5),
        "train_seconds": float(rng.uniform(60, 120)), "images_per_second": 40.0,
        "best_epoch": 4, "epochs_run": 5,
    })
    params = {f"section{i // 10}.key{i % 10}": str(rng.integers(100)) for i in range(73)}
    params.update({k: str(v) for k, v in searched.items()})
    epochs = [{"epoch/train_loss": 1 - quality * e / 5, "epoch/val_loss": 1 - quality * e / 6,
               "epoch/lr": searched["optim.lr"], "epoch/val_iou": quality * e / 5}
              for e in range(1, 6)]
    return searched, params, metrics, quality, epochs


def fill(tracking_uri: str, runs: int, seed: int = 0) -> None:
    """Write a parent run and ``runs`` trial runs (failed/pruned ones included)."""
    from ablate.testing.fixtures import StoreWriter

    rng = np.random.default_rng(seed)
    writer = StoreWriter(tracking_uri, STUDY, search=SEARCH, design="search",
                         thresholds=THRESHOLDS)
    started = time.perf_counter()
    trial = 0
    written = 0
    while written < runs:
        searched, params, metrics, _, epochs = _run_values(rng)
        draw = rng.uniform()
        if draw < 0.04:  # a failure; half of them retried under the same trial number
            reason = str(rng.choice(["worker died", "out of memory at batch size 8",
                                     "non-finite loss at epoch 2, step 5"]))
            writer.trial(trial, {}, state="FAIL", reason=reason, searched=searched,
                         params=params, epochs=epochs[:2])
            written += 1
            if draw < 0.02 and written < runs:
                writer.trial(trial, metrics, searched=searched, params=params, epochs=epochs)
                written += 1
        elif draw < 0.08:
            writer.trial(trial, {}, state="PRUNED", reason="pruned at epoch 2",
                         searched=searched, params=params, epochs=epochs[:2])
            written += 1
        else:
            writer.trial(trial, metrics, searched=searched, params=params, epochs=epochs)
            written += 1
        trial += 1
        if written % 100 == 0 or written == runs:
            rate = written / (time.perf_counter() - started)
            print(f"  {written}/{runs} runs written ({rate:.0f} runs/s)", flush=True)


def replicate(db: Path, runs: int) -> None:
    """Grow the store in ``db`` to ``runs`` trial runs by copying its trial runs' rows (runs,
    tags, params, metrics, latest metrics) under new run ids, trial numbers, names and start
    times, one INSERT ... SELECT per table and round. Each copy is a row-for-row image of a run
    MLflow wrote, so the report reads exactly what it would read from ``runs`` written runs;
    only the writing, at ~17 runs/s through MLflow, is skipped."""
    import sqlite3
    import uuid

    from ablate.tracking import names as keys

    with sqlite3.connect(db) as con:
        base = con.execute(
            "SELECT r.run_uuid, CAST(t.value AS INTEGER), r.start_time FROM runs r JOIN tags t "
            "ON t.run_uuid = r.run_uuid AND t.key = ? ORDER BY r.start_time",
            (keys.TAG_TRIAL,)).fetchall()
        offset = max(trial for _, trial, _ in base) + 1
        span = max(start for *_, start in base) - min(start for *_, start in base) + 1000
        have, round_ = len(base), 1
        con.execute("CREATE TEMP TABLE copy (old TEXT, new TEXT, trial INTEGER, shift INTEGER)")
        while have < runs:
            batch = base[: runs - have]
            con.execute("DELETE FROM copy")
            con.executemany("INSERT INTO copy VALUES (?, ?, ?, ?)", [
                (old, uuid.uuid4().hex, trial + round_ * offset, round_ * span)
                for old, trial, _ in batch])
            _copy_rows(con)
            have += len(batch)
            round_ += 1
            print(f"  {have}/{runs} runs (copies of the written ones)", flush=True)


def _copy_rows(con: Any) -> None:
    """Copy the rows of the runs in the temporary table ``copy`` under their new ids."""
    from ablate.tracking import names as keys

    def columns(table: str) -> list[str]:
        return [row[1] for row in con.execute(f"PRAGMA table_info({table})")]

    replaced = {
        "run_uuid": "c.new", "name": "'trial-' || c.trial",
        "start_time": "x.start_time + c.shift", "end_time": "x.end_time + c.shift",
        "artifact_uri": "replace(x.artifact_uri, c.old, c.new)",
    }
    for table in ("runs", "tags", "params", "metrics", "latest_metrics"):
        names = columns(table)
        chosen = [replaced.get(n, f"x.{n}") if table == "runs" or n == "run_uuid" else f"x.{n}"
                  for n in names]
        con.execute(f"INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join(chosen)} "
                    f"FROM {table} x JOIN copy c ON x.run_uuid = c.old")
    con.execute("UPDATE tags SET value = (SELECT CAST(c.trial AS TEXT) FROM copy c "
                "WHERE c.new = tags.run_uuid) WHERE key = ? "
                "AND run_uuid IN (SELECT new FROM copy)", (keys.TAG_TRIAL,))
    con.execute("UPDATE tags SET value = (SELECT 'trial-' || c.trial FROM copy c "
                "WHERE c.new = tags.run_uuid) WHERE key = 'mlflow.runName' "
                "AND run_uuid IN (SELECT new FROM copy)")


def _store_size(tracking_uri: str) -> int:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name(STUDY)
    if experiment is None:
        return -1
    return len(client.search_runs([experiment.experiment_id], max_results=50_000)) - 1


TARGETS = {1000: 2.0, 10000: 10.0}  # seconds, `ablate report` as a fresh process


WRITTEN = 1000  # runs written through MLflow; larger stores copy these (see replicate)


def prepare(folder: Path, runs: int) -> str:
    """The tracking URI of a store in ``folder`` holding ``runs`` trial runs (reused if it
    does, else made anew: up to WRITTEN runs written through MLflow, copies beyond; the
    written part is taken from a sibling ``runs{WRITTEN}`` store when there is one)."""
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "mlflow.db"
    uri = f"sqlite:///{db.absolute()}"
    existing = _store_size(uri) if db.exists() else -1
    if existing == runs:
        print(f"reusing the store in {folder} ({existing} trial runs)")
        return uri
    if db.exists():
        db.unlink()
    started = time.perf_counter()
    written = min(runs, WRITTEN)
    sibling = folder.parent / f"runs{written}" / "mlflow.db"
    if written < runs and sibling.exists() and _store_size(f"sqlite:///{sibling}") == written:
        print(f"copying the {written} written runs of {sibling} ...")
        shutil.copy(sibling, db)
    else:
        print(f"writing {written} trial runs to {uri} through MLflow ...")
        fill(uri, written)
    if written < runs:
        replicate(db, runs)
    print(f"store ready in {time.perf_counter() - started:.1f} s")
    return uri


def in_process(folder: Path, uri: str, repeats: int) -> dict[str, float]:
    """Median seconds of each stage of the report, in this process (imports excluded)."""
    from ablate.reporting import assemble
    from ablate.reporting.runs import load_runs
    from ablate.stores import resolve_stores

    stores = resolve_stores(store=folder, tracking_uri=uri)
    out = folder / "report" / f"{STUDY}.md"
    stages: dict[str, list[float]] = {"read (sql)": [], "build (tables, fANOVA, plots)": [],
                                      "render + write": [], "total": [], "total cpu": []}
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        study = load_runs(stores, STUDY, reader="sql")
        read = time.perf_counter()
        report = assemble.build(study, figures=out.with_suffix(""))
        built = time.perf_counter()
        out.write_text(assemble.render(report, "md", out.parent))
        done = time.perf_counter()
        for key, value in zip(stages, (read - wall, built - read, done - built, done - wall,
                                       time.process_time() - cpu), strict=True):
            stages[key].append(value)
    return {key: statistics.median(values) for key, values in stages.items()}


def cli_report(folder: Path, uri: str, reader: str) -> tuple[float, float]:
    """Wall and CPU seconds of ``ablate report`` as a fresh process, imports included."""
    ablate = Path(sys.executable).parent / "ablate"
    command = [str(ablate)] if ablate.exists() else [sys.executable, "-m", "ablate.cli"]
    out = folder / "report" / f"{STUDY}.md"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command + ["report", STUDY, "--tracking-uri", uri, "--out", str(out),
                              "--reader", reader], check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return time.perf_counter() - started, used


def stored(uri: str, publish: bool) -> None:
    """Store the importances as the end of ``study run`` does (publish), or drop them."""
    from mlflow.tracking import MlflowClient

    from ablate.reporting.publish import Publisher
    from ablate.stores import resolve_stores
    from ablate.tracking import names as keys

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(STUDY)
    assert experiment is not None
    parent = client.search_runs([experiment.experiment_id],
                                f"tags.`{keys.TAG_ROLE}` = 'parent'")[0]
    if keys.TAG_IMPORTANCE in parent.data.tags:
        client.delete_tag(parent.info.run_id, keys.TAG_IMPORTANCE)
    if publish:
        started = time.perf_counter()
        Publisher(resolve_stores(tracking_uri=uri), STUDY, echo=print).publish(html=True)
        print(f"published as a study's end does (HTML report, importances stored): "
              f"{time.perf_counter() - started:.1f} s")


def _cli_line(label: str, cli: list[tuple[float, float]]) -> float:
    walls = [w for w, _ in cli]
    print(f"  {label}: wall {statistics.median(walls):.2f} "
          f"(runs: {', '.join(f'{t:.2f}' for t in walls)}), "
          f"cpu {statistics.median(c for _, c in cli):.2f}")
    return statistics.median(walls)


def measure(folder: Path, runs: int, repeats: int, mlflow_reader: bool) -> tuple[float, float]:
    """Print the report's timings on ``runs`` runs; return the CLI's median wall times without
    and with the importances stored by the study."""
    uri = prepare(folder, runs)
    stored(uri, publish=False)
    stages = in_process(folder, uri, repeats)
    cold = [cli_report(folder, uri, "auto") for _ in range(repeats)]
    stored(uri, publish=True)
    warm = [cli_report(folder, uri, "auto") for _ in range(repeats)]
    out = folder / "report" / f"{STUDY}.md"
    plots = sorted(p.name for p in out.parent.glob(f"{STUDY}_*.png"))
    print(f"report on {runs} trial runs ({out}; figures: {', '.join(plots)})")
    print(f"in-process, figures drawn in-process, importances computed, median of {repeats} (s):")
    for key, value in stages.items():
        print(f"  {key:32s} {value:6.2f}")
    print(f"CLI `ablate report {STUDY} --out FILE` in a subprocess, imports included (s):")
    cold_wall = _cli_line("importances computed by the report (trials still coming)", cold)
    warm_wall = _cli_line("importances stored by the study's end (a finished study)", warm)
    if mlflow_reader:
        started = time.perf_counter()
        from ablate.reporting.runs import load_runs
        from ablate.stores import resolve_stores

        load_runs(resolve_stores(store=folder, tracking_uri=uri), STUDY, reader="mlflow")
        print(f"  read via search_runs instead (in-process): {time.perf_counter() - started:.2f}")
        wall, cpu = cli_report(folder, uri, "mlflow")
        print(f"  CLI with --reader mlflow: wall {wall:.2f}, cpu {cpu:.2f}")
    return cold_wall, warm_wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", default="1000",
                        help="trial runs in the store; a comma-separated list measures each "
                             "(e.g. 1000,10000)")
    parser.add_argument("--keep", type=Path,
                        help="folder to keep the stores in (one per size, reused if it matches)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (median)")
    parser.add_argument("--mlflow-reader", action="store_true",
                        help="also time the report read through MLflow's search_runs")
    args = parser.parse_args()
    sizes = [int(v) for v in str(args.runs).split(",") if v.strip()]
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"ablate report scale: cpus {os.cpu_count()}, load average {load}")
    root = args.keep or Path(tempfile.mkdtemp(prefix="ablate_scale_"))
    walls: dict[int, tuple[float, float]] = {}
    try:
        for runs in sizes:
            walls[runs] = measure(root / f"runs{runs}", runs, args.repeats, args.mlflow_reader)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    print("summary: `ablate report NAME --out FILE` as a fresh process (imports included), "
          "median wall seconds")
    smallest = min(walls)
    for runs, (cold, warm) in walls.items():
        target = TARGETS.get(runs)
        goal = f"target < {target:.0f} s: {'met' if warm < target else 'NOT met'}" if target else ""
        print(f"  {runs:6d} runs: {warm:6.2f} s finished study ({1000 * warm / runs:5.2f} ms per "
              f"run, {warm / walls[smallest][1]:5.2f}x the {smallest}-run time for "
              f"{runs / smallest:.0f}x the runs; {cold:.2f} s with the importances computed)  "
              f"{goal}")
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"  load average at the end {load}")


if __name__ == "__main__":
    main()
