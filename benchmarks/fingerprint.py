#!/usr/bin/env python
"""What does recording a run's data and environment cost, against one quickstart trial?

In one process, on the quickstart spec (or ``--spec``):

* **trial**: ``train()`` of the spec's base configuration (the run the fingerprint belongs to),
  after a warm-up run (imports, decode cache);
* **fingerprint**: what a run adds for its data: with the decode cache warm but the digest
  cache cleared (the state of a fresh process after decoding), SHA-256 of every image and mask
  file plus the per-split digests and profiles (``load_data`` with and without the digests);
* **environment**: ``ablate.environment.collect`` (package versions, device, two git work
  trees), which each run calls once.

Prints the medians over ``--repeats`` and the ratio to the trial.

    .venv/bin/python benchmarks/fingerprint.py [--repeats 3] [--spec studies/quickstart.yaml]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--spec", default=str(ROOT / "studies" / "quickstart.yaml"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    from ablate.data import io, load_data
    from ablate.runs import environment
    from ablate.spec import load_spec
    from ablate.training.train import train

    spec = load_spec(args.spec)
    config = spec.resolve()
    train(config, progress=False)  # warm-up: imports, decode cache
    trial = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        train(config, progress=False)
        trial.append(time.perf_counter() - start)

    hashing, files = [], 0
    for _ in range(args.repeats):
        io._DIGESTS.clear()  # noqa: SLF001 - the state of a fresh process after decoding
        start = time.perf_counter()
        loaded = load_data(config.data)
        hashing.append(time.perf_counter() - start)
        files = sum(f.files for f in loaded.fingerprints.values())
    plain = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        load_data(config.data)  # digests cached: only the per-split digests are computed
        plain.append(time.perf_counter() - start)
    env = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        environment.collect(config.device, spec.path)
        env.append(time.perf_counter() - start)

    t = statistics.median(trial)
    cost = max(statistics.median(hashing) - statistics.median(plain), 0.0)
    e = statistics.median(env)
    print(f"spec: {args.spec} ({config.optim.epochs} epochs, {files} files hashed)")
    print(f"trial (train()):                  {t:8.3f} s")
    print(f"hashing the files (fresh digests): {cost:8.4f} s  = {100 * cost / t:5.2f} % of "
          "the trial")
    print(f"environment.collect:              {e:8.4f} s  = {100 * e / t:5.2f} % of the trial")
    print(f"both:                             {cost + e:8.4f} s  = "
          f"{100 * (cost + e) / t:5.2f} % of the trial")


if __name__ == "__main__":
    main()
