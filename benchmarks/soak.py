"""Soak test: SIGKILL workers of a fixed-design study at random moments, then audit the stores.

    .venv/bin/python benchmarks/soak.py                 # >= 24 kills, seed 0
    .venv/bin/python benchmarks/soak.py --kills 40 --seed 3 --keep /tmp/soak

Rounds of two workers (``ablate study run SPEC``, started together on the same store, the
first round on a fresh one) are SIGKILLed after random delays: in most rounds one worker,
then the other later; in every fourth round both at the same instant. Kills land anywhere:
while the study is created, while a trial starts, trains, logs, writes artifacts or is told.
After the last kill one worker runs the study to its end, and the stores are audited
(tests/audit.py): configurations x seeds lost (no COMPLETE trial), duplicated (two COMPLETE
trials, MLflow runs or report rows), trials or runs left RUNNING, MLflow runs that disagree
with Optuna. Workers start in milliseconds from a preloaded server (tests/processes.py).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests import processes  # noqa: E402
from tests.audit import audit  # noqa: E402

# Heartbeat 2 s: a trial is dead after 6 s of silence (1 s risks calling a live worker dead
# when 2 workers share 2 busy cores).
ENV = {"ABLATE_HEARTBEAT": "2"}


def soak_spec() -> dict:
    return {
        "name": "soak",
        "seed": 0,
        "data": {"task": "binary", "batch_size": 2,
                 "synthetic": {"num_images": 8, "channels": 3, "size": 16, "seed": 1},
                 "split_ratios": {"train": 0.5, "val": 0.25, "test": 0.25}},
        "model": {"custom": "tests.custom_models:TinyUNet", "width": 4},
        "loss": {"weights": {"bce": 1.0}},
        "optim": {"lr": 0.01, "epochs": 2},
        "eval": {"gallery": 1, "latency_repeats": 0},
        "design": {"kind": "one_at_a_time", "repeats": 2,
                   "components": ["augment.hflip", "augment.vflip", "augment.rot90",
                                  {"name": "wd", "set": {"optim.weight_decay": 1e-4}},
                                  {"name": "lr", "set": {"optim.lr": 0.02}}]},
    }


def kill(proc) -> bool:  # noqa: ANN001 - a multiprocessing.Process
    """SIGKILL a worker; True if it was still running (a kill it had to survive)."""
    if not proc.is_alive():
        return False
    proc.kill()
    proc.join()
    return proc.exitcode == -9


def one_round(args: list, log: Path, rng: random.Random, double: bool) -> int:
    workers = [processes.start(args, log, **ENV) for _ in range(2)]
    time.sleep(rng.uniform(0.05, 4.0))
    if double:
        alive = [w for w in workers if w.is_alive()]
        for w in alive:  # the same instant: no waiting between the two signals
            w.kill()
        for w in alive:
            w.join()
        return sum(w.exitcode == -9 for w in alive)
    first, second = rng.sample(workers, 2)
    kills = kill(first)
    time.sleep(rng.uniform(0.05, 3.0))
    return kills + kill(second)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="keep the store in this folder")
    opts = parser.parse_args()
    rng = random.Random(opts.seed)
    root = opts.keep or Path(tempfile.mkdtemp(prefix="ablate-soak-"))
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    spec, store, log = root / "soak.yaml", root / "store", root / "workers.log"
    spec.write_text(yaml.safe_dump(soak_spec()))
    args = ["study", "run", spec, "--store", store, "--quiet"]
    started = time.monotonic()
    kills = doubles = rounds = 0
    while kills < opts.kills or doubles < 2:
        double = rounds % 4 == 3
        got = one_round(args, log, rng, double)
        kills += got
        doubles += double and got == 2
        rounds += 1
        print(f"round {rounds}: {got} kill(s){' at once' if double else ''}, {kills} so far",
              flush=True)
    code = processes.run(args, log, **ENV)
    result = audit(store, "soak")
    print(f"\nkills survived: {kills} ({doubles} rounds with both workers killed at once) "
          f"in {rounds} rounds, {time.monotonic() - started:.0f} s; final run exit code {code}")
    print(f"configurations x seeds: {result.entries}, dead attempts re-run: "
          f"{result.dead_attempts}")
    print(f"lost: {len(result.lost)}  duplicated: {len(result.duplicated)}  left RUNNING: "
          f"{len(result.running)}  MLflow/Optuna mismatches: {len(result.mismatched)}  "
          f"parent runs: {result.parents}")
    for problem in result.lost + result.duplicated + result.running + result.mismatched:
        print(f"  {problem}")
    if not opts.keep:
        shutil.rmtree(root, ignore_errors=True)
    sys.exit(0 if code == 0 and result.ok else 1)


if __name__ == "__main__":
    main()
