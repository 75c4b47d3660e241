"""The ablate CLI in separate processes, started in milliseconds instead of seconds.

Each command runs in a process forked from a server process that has already imported torch,
smp, MLflow, Optuna and ablate (``multiprocessing``'s forkserver with preloaded modules); the
server itself never runs torch code, so forking it is safe. A process can be SIGKILLed from
outside, or kill itself at a named point (``ABLATE_FAULT``), exactly like a separate
``ablate`` command; its output goes to a log file. Used by the kill-anywhere tests and
``benchmarks/soak.py``.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from multiprocessing.context import BaseContext
from pathlib import Path

PRELOAD = [
    "torch",
    "segmentation_models_pytorch",
    "matplotlib.pyplot",
    "mlflow.tracking",
    "optuna",
    "fvcore.nn",
    "ablate.cli",
    "ablate.study",
    "ablate.training.train",
    "ablate.runs.tracked",
    "ablate.tracking",
    "ablate.reporting",
]
# Store locations come from the command line only.
_CLEARED = ("ABLATE_STORAGE", "MLFLOW_TRACKING_URI", "ABLATE_STORE", "ABLATE_FAULT")
_context: BaseContext | None = None


def context() -> BaseContext:
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(PRELOAD)
    return _context


def _main(argv: list[str], env: dict[str, str], log: str) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    for var in _CLEARED:
        os.environ.pop(var, None)
    os.environ.update(env)
    import torch

    torch.set_num_threads(1)  # tiny tensors: threads only contend with the other processes
    from ablate.cli import main

    main([str(a) for a in argv])  # exits with the command's code


def start(argv: list[object], log: Path, **env: str) -> multiprocessing.Process:
    """Start ``ablate ARGV`` with extra environment ``env``; output appended to ``log``."""
    proc = context().Process(target=_main, args=([str(a) for a in argv], env, str(log)))
    proc.start()
    return proc


def run(argv: list[object], log: Path, timeout: float = 600, **env: str) -> int:
    """Run ``ablate ARGV`` to its end; returns its exit code (-9: killed by SIGKILL)."""
    proc = start(argv, log, **env)
    proc.join(timeout)
    if proc.exitcode is None:
        proc.kill()
        proc.join()
        raise TimeoutError(f"ablate {' '.join(map(str, argv))} ran over {timeout} s:\n"
                           + log.read_text())
    return int(proc.exitcode)
