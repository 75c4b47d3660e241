"""Soak test: SIGKILL workers of a fixed-design study at random moments, then audit the stores.

    .venv/bin/python benchmarks/soak.py                 # >= 24 kills, seed 0
    .venv/bin/python benchmarks/soak.py --kills 40 --seed 3 --keep /tmp/soak

Rounds of two workers (``ablate study run SPEC``, started together on the same store) are
SIGKILLed after random delays: a third of the rounds a random time (up to ``--max-delay`` s)
after the start, the others a random time (up to a third of it) after a trial turned
RUNNING; in most rounds one worker, then the other later; in every fourth round both at the
same instant. Kills land anywhere: while the
study is created, while a trial starts, trains, logs, writes artifacts or is told. When the
workers of a round finish the study before they are killed, the next round starts a new
study (``soak-1``, ``soak-2``, ... in the same store). After the last kill one worker runs
the last study to its end, and every study is audited (tests/audit.py): configurations x
seeds lost (no COMPLETE trial), duplicated (two COMPLETE trials, MLflow runs or report
rows), trials or runs left RUNNING, MLflow runs that disagree with Optuna. It also prints the
epochs retrained per kill: for every killed attempt that had finished epochs, those epochs
less the ones its retry continued from (``ablate.resumed_from_epoch``); a trial keeps its state
after every epoch, so this should average at most 1. Workers start in well under a second
from a preloaded server (tests/processes.py).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests import processes  # noqa: E402
from tests.audit import audit  # noqa: E402

# Heartbeat 2 s: a trial is dead after 6 s of silence (1 s risks calling a live worker dead
# when 2 workers share 2 busy cores).
ENV = {"ABLATE_HEARTBEAT": "2"}


def soak_spec(name: str) -> dict:
    return {
        "name": name,
        "seed": 0,
        "data": {"task": "binary", "batch_size": 2,
                 "synthetic": {"num_images": 8, "channels": 3, "size": 16, "seed": 1},
                 "split_ratios": {"train": 0.5, "val": 0.25, "test": 0.25}},
        "model": {"custom": "tests.custom_models:TinyUNet", "width": 4},
        "loss": {"weights": {"bce": 1.0}},
        "optim": {"lr": 0.01, "epochs": 4},
        "eval": {"gallery": 1, "latency_repeats": 0},
        "design": {"kind": "one_at_a_time", "repeats": 2,
                   "components": ["augment.hflip", "augment.vflip", "augment.rot90",
                                  {"name": "wd", "set": {"optim.weight_decay": 1e-4}},
                                  {"name": "lr", "set": {"optim.lr": 0.02}}]},
    }


def retrained(store: Path, name: str) -> list[int]:
    """Epochs retrained because of each killed attempt of study ``name`` that had finished
    epochs: its finished epochs less those its next attempt continued from."""
    from mlflow.tracking import MlflowClient

    from ablate.tracking import names as keys

    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return []
    runs = client.search_runs([experiment.experiment_id],
                              f"tags.`{keys.TAG_ROLE}` = '{keys.ROLE_TRIAL}'", max_results=5000)
    attempts: dict[tuple[str, str], list] = {}
    for run in sorted(runs, key=lambda r: r.info.start_time):
        entry = (run.data.tags.get(keys.TAG_CONFIG, ""), run.data.tags.get(keys.TAG_REPEAT, ""))
        attempts.setdefault(entry, []).append(run)
    lost = []
    for series in attempts.values():
        for killed, after in zip(series, series[1:], strict=False):
            if killed.info.status != "KILLED":
                continue
            done = len(client.get_metric_history(killed.info.run_id, "epoch/train_loss"))
            if done == 0:
                continue
            resumed = int(after.data.tags.get(keys.TAG_RESUMED_FROM, "0"))
            lost.append(max(0, done - resumed))
    return lost


def kill(proc) -> bool:  # noqa: ANN001 - a multiprocessing.Process
    """SIGKILL a worker; True if it was still running (a kill it had to survive)."""
    if not proc.is_alive():
        return False
    proc.kill()
    proc.join()
    return proc.exitcode == -9


def running_trials(store: Path) -> int:
    """RUNNING trials in the store, read without writing to it."""
    db = store / "optuna.db"
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
            return int(conn.execute("SELECT count(*) FROM trials WHERE state = 'RUNNING'")
                       .fetchone()[0])
    except sqlite3.Error:  # not created yet
        return 0


def first_delay(workers: list, store: Path, rng: random.Random, max_delay: float) -> None:
    """Wait before the first kill: a random time from the start (a third of the rounds: the
    kill may hit start-up and study creation), else a random time into a running trial."""
    if rng.random() < 1 / 3:
        time.sleep(rng.uniform(0.05, max_delay))
        return
    deadline = time.monotonic() + 300
    while (running_trials(store) == 0 and any(w.is_alive() for w in workers)
           and time.monotonic() < deadline):
        time.sleep(0.05)
    time.sleep(rng.uniform(0.0, max_delay / 3))


def one_round(args: list, log: Path, rng: random.Random, double: bool,
              max_delay: float) -> tuple[int, bool]:
    """(kills, whether the workers finished the study on their own)."""
    workers = [processes.start(args, log, **ENV) for _ in range(2)]
    first_delay(workers, Path(args[4]), rng, max_delay)
    if double:
        alive = [w for w in workers if w.is_alive()]
        for w in alive:  # the same instant: no waiting between the two signals
            w.kill()
        for w in alive:
            w.join()
        kills = sum(w.exitcode == -9 for w in alive)
    else:
        first, second = rng.sample(workers, 2)
        kills = kill(first)
        time.sleep(rng.uniform(0.05, max_delay / 2))
        kills += kill(second)
    for w in workers:
        w.join()
    return kills, all(w.exitcode == 0 for w in workers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-delay", type=float, default=12.0,
                        help="kill within this many seconds of the workers' start")
    parser.add_argument("--keep", type=Path, help="keep the store in this folder")
    opts = parser.parse_args()
    rng = random.Random(opts.seed)
    root = opts.keep or Path(tempfile.mkdtemp(prefix="ablate-soak-"))
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    store, log = root / "store", root / "workers.log"
    names: list[str] = []

    def next_study() -> list:
        names.append(f"soak-{len(names) + 1}")
        spec = root / f"{names[-1]}.yaml"
        spec.write_text(yaml.safe_dump(soak_spec(names[-1])))
        return ["study", "run", spec, "--store", store, "--quiet"]

    args = next_study()
    started = time.monotonic()
    kills = doubles = rounds = 0
    while kills < opts.kills or doubles < 2:
        double = rounds % 4 == 3
        got, finished = one_round(args, log, rng, double, opts.max_delay)
        kills += got
        doubles += double and got == 2
        rounds += 1
        print(f"round {rounds} ({names[-1]}): {got} kill(s){' at once' if double else ''}, "
              f"{kills} so far", flush=True)
        if finished:
            args = next_study()
    code = processes.run(args, log, **ENV)
    results = [audit(store, name) for name in names]
    total = {key: sum(len(getattr(r, key)) for r in results)
             for key in ("lost", "duplicated", "running", "mismatched")}
    print(f"\nkills survived: {kills} ({doubles} rounds with both workers killed at once) "
          f"in {rounds} rounds, {time.monotonic() - started:.0f} s; final run exit code {code}")
    print(f"studies: {len(names)}, configurations x seeds: {sum(r.entries for r in results)}, "
          f"killed attempts re-run: {sum(r.dead_attempts for r in results)}")
    print(f"lost: {total['lost']}  duplicated: {total['duplicated']}  left RUNNING: "
          f"{total['running']}  MLflow/Optuna mismatches: {total['mismatched']}  parent runs: "
          f"{[r.parents for r in results]}")
    for r in results:
        for problem in r.lost + r.duplicated + r.running + r.mismatched:
            print(f"  {problem}")
    lost = [n for name in names for n in retrained(store, name)]
    if lost:
        print(f"epochs retrained per kill that cut a trial's training: mean "
              f"{sum(lost) / len(lost):.2f}, max {max(lost)} over {len(lost)} kills "
              f"(target: mean <= 1; {soak_spec('x')['optim']['epochs']} epochs per trial)")
    if not opts.keep:
        shutil.rmtree(root, ignore_errors=True)
    sys.exit(0 if code == 0 and all(r.ok for r in results) else 1)


if __name__ == "__main__":
    main()
