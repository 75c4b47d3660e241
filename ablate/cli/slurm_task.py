"""One task of ``ablate study submit``'s job array: ``ablate study run NAME`` in the task's own
process (the CLI's own command, so it lives with the CLI).

submitit pickles a :class:`Worker` and runs it in each array task. It runs the ``study run``
command in-process rather than as a child process, so that Slurm's signals reach the one
process whose handlers queue the trial again (a child would race its parent for them). The
warning signal and SIGTERM are caught from the task's first instant; ``study run`` does the
rest (:func:`ablate.study.cluster.job.after_interrupt`: the trial queued again, the job
requeued unless the study is done).

A task that ends without a result is not done for submitit: when the job was requeued (or
stopped) the worker exits without returning, so submitit writes no result file and the
requeued task writes it when it finishes.
"""

from __future__ import annotations

import os
import sys

import submitit

from ablate.runs import interrupts
from ablate.runs.slurm import job_label
from ablate.stores import Stores
from ablate.study.cluster.job import REQUEUED, after_interrupt


class WorkerFailed(RuntimeError):
    """``ablate study run`` in an array task ended with an error (its log says which)."""


class Worker(submitit.helpers.Checkpointable):
    """``ablate study run NAME`` on ``stores``; ``overrides``: ``--set`` items of a study
    given by name. Checkpointable, so that submitit itself requeues the job should the warning
    signal come in the instant before :meth:`__call__` takes over the signals."""

    def __init__(self, name: str, stores: Stores, overrides: tuple[str, ...] = ()) -> None:
        self.name = name
        self.stores = stores
        self.overrides = overrides

    def argv(self) -> list[str]:
        """The ``ablate`` arguments: the study by name, its stores, torch threads = the
        task's CPUs when Slurm says how many."""
        argv = ["study", "run", self.name, "--quiet", "--storage", self.stores.storage,
                "--tracking-uri", self.stores.tracking_uri]
        if self.stores.folder is not None:
            argv += ["--store", str(self.stores.folder)]
        cpus = os.environ.get("SLURM_CPUS_PER_TASK", "")
        if cpus.isdigit() and int(cpus) > 0:
            argv += ["--threads", cpus]
        for item in self.overrides:
            argv += ["--set", item]
        return argv

    def __call__(self) -> str:
        with interrupts.interruptible():
            try:
                os.environ.setdefault("ABLATE_WORKER", job_label())
                from ablate.cli import app

                code = app(self.argv(), prog_name="ablate", standalone_mode=False)
            except KeyboardInterrupt as err:  # before `study run` took over the signals
                interrupts.shield()
                print(f"stopped while starting ({interrupts.reason(err)})", flush=True)
                code = after_interrupt(err, self.stores, self.name)
        interrupts.ignore_warning()  # done: submitit's handler would requeue the job
        if code in (None, 0):
            return f"study '{self.name}': worker {job_label()} done"
        if code in (REQUEUED, interrupts.INTERRUPTED):
            sys.stdout.flush()
            sys.exit(code)  # no result: the requeued task (or nobody) finishes it
        raise WorkerFailed(f"`ablate {' '.join(self.argv())}` exited with code {code}; see "
                           "this task's log")
