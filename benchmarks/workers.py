"""Trials per minute with 1, 2 and 3 worker processes on one machine (embedded SQLite stores).

    .venv/bin/python benchmarks/workers.py                 # 8-run factorial, 1/2/3 workers
    .venv/bin/python benchmarks/workers.py --workers 1 3 --components 4 --threads 1

Each round runs ``ablate study run SPEC --workers N`` on a fresh store: the same small fixed
design (a factorial of ``--components`` augmentation toggles on tiny synthetic data), so every
round trains the same trials. The wall time includes starting the processes and creating the
study, as a user sees it. Each worker gets ``cores // N`` torch threads unless ``--threads``
is given (e.g. ``--threads 2`` on 2 cores: every worker on all cores, as before the split).
Figures are only meaningful on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ablate.study.workers import available_cores, threads_per_worker  # noqa: E402

COMPONENTS = ["augment.hflip", "augment.vflip", "augment.rot90", "augment.blur"]


def design_spec(name: str, components: int, epochs: int = 1) -> dict:
    """A factorial of ``components`` toggles (2**components runs) on tiny synthetic data."""
    return {
        "name": name, "seed": 0,
        "data": {"task": "binary", "batch_size": 4,
                 "synthetic": {"num_images": 16, "channels": 3, "size": 32, "seed": 1},
                 "split_ratios": {"train": 0.5, "val": 0.25, "test": 0.25}},
        "model": {"arch": "Unet", "encoder": "resnet18", "encoder_depth": 3,
                  "decoder_channels": [16, 8, 4]},
        "optim": {"lr": 0.01, "epochs": epochs},
        "eval": {"gallery": 0},
        "objective": {"metric": "val_iou", "direction": "maximize"},
        "design": {"kind": "factorial", "components": COMPONENTS[:components]},
    }


def write_spec(folder: Path, spec: dict) -> Path:
    path = folder / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def ablate(*args: object, env: dict[str, str] | None = None) -> float:
    """Run the CLI; returns its wall time (s). Fails loudly on a non-zero exit."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "ablate.cli", *map(str, args)], cwd=REPO,
                            env={**os.environ, **(env or {})}, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"ablate {' '.join(map(str, args))} failed:\n{result.stdout}"
                         f"{result.stderr}")
    return elapsed


def run_design(spec_path: Path, workers: int, flags: list[str], threads: int | None) -> float:
    """Wall time of ``study run SPEC --workers N`` (a fresh study in the given stores)."""
    args: list[object] = ["study", "run", spec_path, "--quiet", *flags]
    if workers > 1:
        args += ["--workers", workers]
    if threads is not None:
        args += ["--threads", threads]
    return ablate(*args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--components", type=int, default=3, help="2**N runs (default 3: 8)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per worker (default: cores // N)")
    args = parser.parse_args()
    runs = 2 ** args.components
    cores = available_cores()
    print(f"{runs}-run factorial, tiny synthetic data; {cores} core(s), torch threads per "
          f"worker: {args.threads or 'cores // N'}")
    print(f"{'workers':>7} {'threads':>7} {'wall s':>8} {'trials/min':>10} {'vs 1':>6}")
    base = None
    with tempfile.TemporaryDirectory(prefix="ablate-workers-") as tmp:
        for n in args.workers:
            spec = write_spec(Path(tmp), design_spec(f"w{n}", args.components))
            wall = run_design(spec, n, ["--store", f"{tmp}/store{n}"], args.threads)
            rate = 60 * runs / wall
            base = base or rate
            threads = threads_per_worker(n, args.threads)
            print(f"{n:>7} {threads:>7} {wall:>8.1f} {rate:>10.1f} {rate / base:>5.2f}x",
                  flush=True)


if __name__ == "__main__":
    main()
