#!/usr/bin/env python
"""How long does ``ablate check`` take on CamVid (701 pairs, 360x480)? Target: at most 30 s on
2 cores.

Each measurement is a fresh process (nothing decoded yet, imports included), as a user runs
it: ``ablate check studies/road_efficiency.yaml``, and, as the baseline, the same process
loading the data set as a run does (``load_data`` of the spec's base configuration: the same
files decoded, no problem collecting, summary or loader checks). The figure printed for each is
the median wall time over ``--repeats``; the ratio says what checking costs beyond loading.

    .venv/bin/python benchmarks/check.py [--spec studies/road_efficiency.yaml] [--repeats 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 30.0
LOAD = ("import sys; from ablate.spec import load_spec; from ablate.data import load_data; "
        "data = load_data(load_spec(sys.argv[1]).resolve({}).data); "
        "print(sum(len(s) for s in data.splits.values()), 'pairs loaded')")


def timed(command: list[str]) -> tuple[float, str]:
    """Wall seconds of ``command`` run from the project root, and its output."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          check=False)
    seconds = time.perf_counter() - started
    output = (done.stdout + done.stderr).strip()
    if done.returncode not in (0, 2):
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{output}")
    return seconds, output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="studies/road_efficiency.yaml")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    if not (ROOT / args.spec).is_file():
        sys.exit(f"{args.spec}: spec not found")
    check: list[float] = []
    load: list[float] = []
    output = ""
    for _ in range(args.repeats):
        seconds, output = timed([sys.executable, "-m", "ablate.cli", "check", args.spec])
        check.append(seconds)
        load.append(timed([sys.executable, "-c", LOAD, args.spec])[0])
    cores = len(os.sched_getaffinity(0))
    print(f"ablate check {args.spec} ({cores} cores, {args.repeats} run(s), fresh processes):")
    print(f"  {output.splitlines()[-1]}")
    median_check, median_load = statistics.median(check), statistics.median(load)
    verdict = "met" if median_check <= TARGET_SECONDS else "NOT met"
    print(f"  ablate check: {median_check:.1f} s (target <= {TARGET_SECONDS:.0f} s: {verdict})")
    print(f"  baseline, load_data in a fresh process: {median_load:.1f} s; check / load = "
          f"{median_check / median_load:.2f}x")


if __name__ == "__main__":
    main()
