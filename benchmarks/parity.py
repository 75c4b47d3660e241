#!/usr/bin/env python
"""Does training through ablate score as well as a hand-written PyTorch loop?

For each ready study's ``cpu`` profile (``--profile``), its baseline configuration (a design's
baseline, a search's spec values) is trained ``--seeds`` times (seeds ``seed``, ``seed + 1``,
...) two ways, alternating which goes first:

* **ablate**: ``ablate.training.train`` on the resolved configuration, the function every trial
  runs (untracked here: tracking does not change the numbers);
* **plain**: ``benchmarks/plain_loop.py``, written without ablate's data pipeline, losses,
  engine or metrics (only the configuration and each split's file list come from ablate).

Per study it prints the mean validation objective of both (at the original image size, the
best epoch's weights) and the difference ablate - plain with a Welch t 95 % interval over the
seeds (the two sides draw different random streams, so seeds are not paired). "within seed
noise" when the interval covers 0; "ablate worse" when it lies below 0.

    .venv/bin/python benchmarks/parity.py --study quickstart --seeds 2
    .venv/bin/python benchmarks/parity.py --seeds 2 --json parity.json   # every study
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

STUDIES = ("quickstart", "membrane_cumulative", "plants_multichannel", "satellite_binary",
           "road_efficiency", "architecture_comparison", "lightweight_efficiency")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def baseline_config(study: str, profile: str, seed_offset: int, epochs: int | None) -> Any:
    """The resolved baseline configuration of ``study``'s ``profile`` at seed
    ``spec.seed + seed_offset``."""
    from ablate import load_spec

    overrides = {"optim.epochs": epochs} if epochs else None
    spec = load_spec(ROOT / "studies" / f"{study}.yaml", profile=profile, overrides=overrides)
    layers: list[dict[str, Any]] = []
    design = getattr(spec, "design", None)
    if design is not None and design.baseline:
        layers.append(dict(design.baseline))
    layers.append({"seed": spec.seed + seed_offset})
    return spec.resolve(*layers)


def file_lists(config: Any) -> dict[str, list[Any]]:
    """Each split's image/mask pairs, as ablate splits them (``max_images`` applied)."""
    from ablate.data.problems import Problems
    from ablate.data.splits import folder_splits

    data = config.data
    problems = Problems()
    pairs = folder_splits(Path(data.root), data, problems)
    caps = {str(k): v for k, v in (data.max_images or {}).items()}
    return {split: items[: caps.get(split)] for split, items in pairs.items()}


def run_ablate(config: Any) -> tuple[float, float]:
    """The objective of ablate's ``train`` on ``config`` and its seconds."""
    from ablate.training.train import train

    started = time.perf_counter()
    result = train(config, progress=False)
    metric = config.objective.metric.removeprefix("val_")
    return float(result.metrics["val"][metric]), time.perf_counter() - started


def run_plain(config: Any, splits: dict[str, Any]) -> tuple[float, float]:
    from plain_loop import train_plain

    result = train_plain(config, splits)
    return result.objective, result.seconds


def welch(a: list[float], b: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """mean(a) - mean(b) and its Welch t interval (NaN bounds with fewer than 2 each)."""
    from scipy import stats

    diff = statistics.fmean(a) - statistics.fmean(b)
    if len(a) < 2 or len(b) < 2:
        return diff, math.nan, math.nan
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return diff, diff, diff
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf(0.5 + level / 2, df)) * se
    return diff, diff - half, diff + half


def verdict(low: float, high: float) -> str:
    if math.isnan(low):
        return "one seed: no interval"
    if high < 0:
        return "ablate worse"
    return "ablate better" if low > 0 else "within seed noise"


def parity(study: str, profile: str, seeds: int, epochs: int | None) -> dict[str, Any]:
    """Both sides over ``seeds`` seeds for one study."""
    from plain_loop import read_split

    first = baseline_config(study, profile, 0, epochs)
    lists = file_lists(first)
    decoded = {split: read_split(lists[split], first.data) for split in ("train", "val")}
    runs: dict[str, list[float]] = {"ablate": [], "plain": []}
    seconds: dict[str, list[float]] = {"ablate": [], "plain": []}
    for offset in range(seeds):
        config = baseline_config(study, profile, offset, epochs)
        order = ("ablate", "plain") if offset % 2 == 0 else ("plain", "ablate")
        for side in order:
            value, spent = run_ablate(config) if side == "ablate" else run_plain(config, decoded)
            runs[side].append(value)
            seconds[side].append(spent)
            log(f"{study} seed {config.seed} {side:6s}: {config.objective.metric} "
                f"{value:.4f} ({spent:.0f} s)")
    diff, low, high = welch(runs["ablate"], runs["plain"])
    return {"study": study, "profile": profile, "objective": first.objective.metric,
            "epochs": first.optim.epochs, "seeds": seeds, "runs": runs, "seconds": seconds,
            "ablate": statistics.fmean(runs["ablate"]), "plain": statistics.fmean(runs["plain"]),
            "diff": diff, "low": low, "high": high, "verdict": verdict(low, high)}


def table(results: list[dict[str, Any]]) -> str:
    head = ("| study | objective | seeds | ablate (mean) | plain (mean) | ablate - plain "
            "[Welch 95% CI] | verdict | s/run ablate, plain |\n"
            "|---|---|---:|---:|---:|---|---|---|")
    rows = []
    for r in results:
        interval = ("" if math.isnan(r["low"]) else f" [{r['low']:+.4f}, {r['high']:+.4f}]")
        rows.append(
            f"| {r['study']} | {r['objective']} | {r['seeds']} | {r['ablate']:.4f} | "
            f"{r['plain']:.4f} | {r['diff']:+.4f}{interval} | {r['verdict']} | "
            f"{statistics.fmean(r['seconds']['ablate']):.0f}, "
            f"{statistics.fmean(r['seconds']['plain']):.0f} |")
    return "\n".join([head, *rows])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", action="append", choices=STUDIES,
                        help="a study (repeatable; default: all seven)")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per side (default 2)")
    parser.add_argument("--profile", default="cpu", help="the studies' profile (default cpu)")
    parser.add_argument("--epochs", type=int, help="override optim.epochs (a quick check)")
    parser.add_argument("--json", type=Path, help="also write every number here")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    warnings.filterwarnings("ignore")
    os.chdir(ROOT)  # the architecture comparison's custom model imports from tests/
    import torch

    print(f"cpus {os.cpu_count()}, torch threads {torch.get_num_threads()}, load average "
          + " ".join(f"{v:.2f}" for v in os.getloadavg()), flush=True)
    results = []
    for study in args.study or STUDIES:
        started = time.perf_counter()
        results.append(parity(study, args.profile, args.seeds, args.epochs))
        log(f"{study}: {time.perf_counter() - started:.0f} s")
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
