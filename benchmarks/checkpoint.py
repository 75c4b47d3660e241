#!/usr/bin/env python
"""What keeping a resumable state after every epoch costs a trial, against the epoch itself.

A trial keeps its fit's state after each finished epoch (weights, optimiser, schedule,
scaler, EMA, random states, the best epoch's weights: ablate/training/checkpoint.py), so that
a killed trial continues from its last epoch. This trains the quickstart's configuration
(``studies/quickstart.yaml``, or ``--spec``) in this process, alternately with the states kept
as a study keeps them (copied at the epoch's end, written to a temporary folder on a thread
while the next epoch trains: ``training.checkpoint.StateWriter``) and without (the baseline,
as ``resume: false``), ``--repeats`` times each. It prints the median epoch time (training
and validation) of both, their ratio (target: at most 3 % more at the quickstart's scale),
the time an epoch's end waits for the copy, and the state's size.

    .venv/bin/python benchmarks/checkpoint.py [--spec studies/quickstart.yaml] [--epochs N]
                                              [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default=str(ROOT / "studies" / "quickstart.yaml"))
    parser.add_argument("--epochs", type=int, default=None, help="default: the spec's")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", default=None,
                        help="where the states are written (default: the system's temporary "
                             "folder; /dev/shm: memory, as checkpoint_dir can be)")
    args = parser.parse_args()

    import torch

    from ablate.spec import load
    from ablate.training.checkpoint import FitState, StateWriter
    from ablate.training.fit import Resume
    from ablate.training.train import train

    overrides = {"eval.latency_repeats": 0, "eval.gallery": 0}
    if args.epochs:
        overrides["optim.epochs"] = args.epochs
    config = load(args.spec, overrides=overrides).resolve({})
    print(f"cpus {os.cpu_count()}, load average "
          + " ".join(f"{v:.2f}" for v in os.getloadavg())
          + f"; torch threads {torch.get_num_threads()}; {config.model.arch}/"
          f"{config.model.encoder}, {config.data.size}, batch {config.data.batch_size}, "
          f"{config.optim.epochs} epochs; states in {args.dir or tempfile.gettempdir()}")

    with tempfile.TemporaryDirectory(prefix="ablate-ckpt-", dir=args.dir) as tmp:
        path = Path(tmp) / "state.pt"
        writer = StateWriter(path)
        copies: list[float] = []

        def keep(state: FitState) -> None:
            started = time.perf_counter()
            writer(state)  # returns once the tensors are copied; the file is written meanwhile
            copies.append(time.perf_counter() - started)

        with_states: list[float] = []
        without: list[float] = []
        train(config, epoch_timer([]), progress=False)  # warm-up: imports, decoding
        for _ in range(args.repeats):
            train(config, epoch_timer(without), progress=False)
            train(config, epoch_timer(with_states), progress=False,
                  resume=Resume(None, keep, writer.wait))
        size = path.stat().st_size

    epoch_on, epoch_off = statistics.median(with_states), statistics.median(without)
    print(f"epoch without states kept: {epoch_off:.3f} s (median of {len(without)})")
    print(f"epoch with a state kept:   {epoch_on:.3f} s (median of {len(with_states)})")
    print(f"an epoch's end waits {statistics.median(copies) * 1000:.1f} ms for the copy; "
          f"the state is {size / 2**20:.1f} MiB")
    print(f"cost: {100 * (epoch_on / epoch_off - 1):+.2f} % per epoch (target <= 3 %)")


def epoch_timer(times: list[float]):  # noqa: ANN201 - an on_epoch callback
    """An ``on_epoch`` callback that records each epoch's time after the first (the time
    between two calls: an epoch and the state kept at its end)."""
    last = [time.perf_counter()]

    def on_epoch(epoch: int, record: dict[str, float]) -> None:
        now = time.perf_counter()
        if epoch > 1:  # the first epoch's time includes building the run
            times.append(now - last[0])
        last[0] = now

    return on_epoch


if __name__ == "__main__":
    main()
