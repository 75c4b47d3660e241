"""``ablate study create|run|list|show``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ablate.cli.common import (
    ProfileOpt,
    QuietOpt,
    SetOpt,
    StoreFlags,
    browse_hint,
    clean_errors,
    echo_line,
    report_hint,
    store_options,
    study_app,
)

if TYPE_CHECKING:
    from ablate.stores import Stores


@study_app.command("create")
@clean_errors
@store_options()
def study_create(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC", help="Study spec (YAML).")],
    set_: SetOpt = None,
    profile: ProfileOpt = None,
    replace: Annotated[bool, typer.Option(help="Delete an existing study of that name.")] = False,
    *,
    flags: StoreFlags,
) -> None:
    """Create an Optuna study from SPEC (the spec is stored with it)."""
    from ablate.spec import load_spec
    from ablate.study import budget, create_study

    spec = load_spec(spec_path, set_, profile)
    stores = flags.resolve()
    create_study(spec, stores, replace=replace)
    typer.echo(f"created study '{spec.name}' ({budget(spec)} trials planned)\n"
               f"{stores.describe()}")
    typer.echo(f"run it: ablate study run {spec.name}{stores.flags()} (on any number of "
               "machines: each runs trials until the study is done)")


# study run's own options (the shared ones are in ablate.cli.common).
TrialCountOpt = Annotated[
    int | None, typer.Option("-n", "--n-trials", help="Run this many more trials.")
]
TimeoutOpt = Annotated[float | None, typer.Option(help="Stop starting trials after S s.")]
WorkersOpt = Annotated[
    int | None, typer.Option(help="Worker processes on this machine (shared storage; default: "
                                  "one per --gpus entry, else 1).")
]
GpusOpt = Annotated[
    str | None, typer.Option(help="Comma-separated GPU ids (0,1; 0,0 = two workers on GPU 0): "
                                  "worker i trains on the i-th.")
]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(min=1, help="Torch threads per worker (default: cores // workers with "
                             "--workers, else torch's default)."),
]


@study_app.command("run")
@clean_errors
@store_options()
def study_run(
    target: Annotated[str, typer.Argument(metavar="NAME_OR_SPEC", help="Study name or spec.")],
    n_trials: TrialCountOpt = None,
    timeout: TimeoutOpt = None,
    set_: SetOpt = None,
    profile: ProfileOpt = None,
    quiet: QuietOpt = False,
    workers: WorkersOpt = None,
    gpus: GpusOpt = None,
    threads: ThreadsOpt = None,
    *,
    flags: StoreFlags,
) -> None:
    """Run trials (creating the study first when given a spec file, or joining the study
    that spec created).

    After each finished trial (and once at the end) the study's summary in MLflow is
    refreshed: the ablation table in the experiment's and the study run's descriptions, the
    study run's summary metrics and its report.html artifact."""
    from ablate.runs.interrupts import ignore_warning, interruptible

    if workers is None:  # one worker per listed GPU
        workers = len(gpus.split(",")) if gpus else 1
    _check_counts(n_trials, timeout, workers)
    stores = flags.resolve()
    if workers > 1 or gpus:
        code = run_workers_cmd(target, stores, workers, gpus, n_trials, timeout, set_,
                               profile, threads)
        raise typer.Exit(code)
    try:
        with interruptible():  # from the start: Slurm's warning may come while it imports
            _run_one(target, stores, n_trials, timeout, set_, profile, quiet, threads)
    except KeyboardInterrupt as err:
        raise typer.Exit(_after_interrupt(err, stores, target, set_, profile)) from None
    finally:
        ignore_warning()  # done: a warning while the process exits must not kill it


def _run_one(target: str, stores: Stores, n_trials: int | None, timeout: float | None,
             overrides: list[str] | None, profile: str | None, quiet: bool,
             threads: int | None) -> None:
    """``study run`` in this process: the worker, the study's summary, the hints."""
    from ablate.reporting.publish import Publisher
    from ablate.study import TooManyFailures, run_study

    publisher = Publisher(stores, echo=echo_line)
    try:
        study = run_study(target, stores, n_trials, timeout, overrides, not quiet, echo_line,
                          profile, threads, after_trial=publisher)
    except TooManyFailures as err:
        publisher.publish()
        typer.echo(str(err), err=True)
        raise typer.Exit(1) from None
    publisher.study = study.study_name
    publisher.publish()
    _print_best(study)
    typer.echo(browse_hint(stores, study.study_name))
    typer.echo(report_hint(stores, study.study_name))


def _after_interrupt(err: BaseException, stores: Stores, target: str,
                     overrides: list[str] | None, profile: str | None) -> int:
    """The exit code of an interrupted ``study run`` (its trial is queued again already); a
    worker in a Slurm job stopped by the warning signal requeues its job first
    (``ablate.study.cluster.job``)."""
    from ablate.runs import interrupts

    interrupts.shield()  # Slurm's own SIGTERM follows a requeue
    if not (interrupts.is_warning(err) and os.environ.get("SLURM_JOB_ID")):
        if os.environ.get("SLURM_JOB_ID"):
            echo_line(f"{interrupts.reason(err)}: this worker stops (Slurm requeues its job "
                      "where that is what it meant)")
        return interrupts.INTERRUPTED
    from ablate.study.cluster.job import after_interrupt

    return after_interrupt(err, stores, _study_name(target, overrides, profile), echo_line)


def run_workers_cmd(
    target: str, stores: Stores, workers: int, gpus: str | None, n_trials: int | None,
    timeout: float | None, overrides: list[str] | None, profile: str | None,
    threads: int | None,
) -> int:
    """``study run --workers N``: the worker processes, then the study's summary and hints;
    returns their exit code."""
    from ablate.reporting.publish import Publisher
    from ablate.runs.interrupts import INTERRUPTED
    from ablate.study import run_workers

    try:
        code = run_workers(target, stores, workers, gpus, n_trials, timeout, overrides,
                           profile, threads, echo_line)
    except KeyboardInterrupt:
        typer.echo(f"interrupted: the workers' trials are queued again; `ablate study run "
                   f"{target}{stores.flags()}` resumes", err=True)
        raise typer.Exit(INTERRUPTED) from None
    typer.echo(f"{workers} worker(s) finished (exit code {code})")
    name = _study_name(target, overrides, profile)
    Publisher(stores, name, echo_line).publish()
    typer.echo(browse_hint(stores, name))
    typer.echo(report_hint(stores, name))
    return code


def _study_name(target: str, overrides: list[str] | None, profile: str | None) -> str:
    """The name of the study a ``study run`` target names (a spec file or a study name)."""
    from ablate.spec import load_spec
    from ablate.study.create import is_spec_file

    return load_spec(Path(target), overrides, profile).name if is_spec_file(target) else target


def _check_counts(n_trials: int | None, timeout: float | None, workers: int) -> None:
    from ablate.errors import AblateError

    if n_trials is not None and n_trials < 1:
        raise AblateError(f"-n/--n-trials {n_trials}: give a number of trials >= 1 (or leave it "
                          "out to run until the study's budget is done)")
    if timeout is not None and not timeout > 0:
        raise AblateError(f"--timeout {timeout:g}: give a number of seconds > 0")
    if workers < 1:
        raise AblateError(f"--workers {workers}: give a number of worker processes >= 1")


def _print_best(study: Any) -> None:
    from optuna.trial import TrialState

    from ablate.study.tables import best_configuration

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        typer.echo("no complete trial yet")
    elif len(study.directions) > 1:
        typer.echo(f"Pareto front: trials {', '.join(str(t.number) for t in study.best_trials)}")
    else:
        typer.echo(best_line(best_configuration(study)))


def best_line(best: Any) -> str:
    """One line on the best configuration (``ablate.selection``'s rule) and its trial."""
    if best is None:
        return "no complete trial yet"
    trial = best.trial
    params = {k: v for k, v in trial.params.items() if k != "config"}
    runs = f"over {best.trials} run(s)"
    repeat = trial.user_attrs.get("repeat")
    where = f"trial {trial.number}" + (f", repeat {repeat}" if "config" in trial.params else "")
    return (f"best configuration: {best.config}: mean objective {best.mean:.4f} {runs}; "
            f"represented by {where}" + (f"; params {params}" if params else ""))


# study submit's own options
SubmitWorkersOpt = Annotated[
    int, typer.Option("--workers", help="Workers: tasks of one Slurm job array.")
]
PartitionOpt = Annotated[str | None, typer.Option(help="Slurm partition (default: the "
                                                        "cluster's).")]
TimeOpt = Annotated[str | None, typer.Option(
    "--time", metavar="HH:MM:SS", help="Time limit per job; the job requeues itself at the "
                                       "limit until the study is done (default: partition's).")]
GpusPerWorkerOpt = Annotated[int, typer.Option(help="GPUs per worker: 1, or 0 for CPU workers.")]
CpusPerWorkerOpt = Annotated[int | None, typer.Option(
    help="CPUs per worker (also its torch threads; default: the cluster's).")]
MemOpt = Annotated[str | None, typer.Option(help="Memory per worker, e.g. 16G (default: the "
                                                  "cluster's).")]
SlurmOpt = Annotated[list[str] | None, typer.Option(
    "--slurm", metavar="KEY=VALUE", help="Any further sbatch option, e.g. --slurm qos=high, "
                                         "--slurm account=lab. Repeatable.")]
WaitOpt = Annotated[bool, typer.Option(
    "--wait", help="Wait for the job; exit 0 when the study's budget is done.")]


@study_app.command("submit")
@clean_errors
@store_options()
def study_submit(
    target: Annotated[str, typer.Argument(metavar="NAME_OR_SPEC", help="Study name or spec.")],
    workers: SubmitWorkersOpt,
    partition: PartitionOpt = None,
    time: TimeOpt = None,
    gpus_per_worker: GpusPerWorkerOpt = 1,
    cpus_per_worker: CpusPerWorkerOpt = None,
    mem: MemOpt = None,
    slurm: SlurmOpt = None,
    wait: WaitOpt = False,
    set_: SetOpt = None,
    profile: ProfileOpt = None,
    *,
    flags: StoreFlags,
) -> None:
    """Submit N workers on a Slurm cluster as one job array (creating the study first when
    given a spec file). Each array task runs `ablate study run NAME`; at a time limit or a
    preemption it queues its trial again and its job requeues itself until the study is done.
    """
    from ablate.cli.slurm_task import Worker
    from ablate.study import budget, prepare, resolve_target
    from ablate.study.cluster.options import SubmitOptions
    from ablate.study.cluster.submit import require_sbatch, submit, test_submission
    from ablate.study.create import is_spec_file

    options = SubmitOptions(workers, partition, time, gpus_per_worker, cpus_per_worker, mem,
                            tuple(slurm or ())).check()
    require_sbatch()
    stores = flags.resolve()
    spec, _ = resolve_target(target, stores, set_, profile)  # reads only
    test_submission(options, spec.name)
    spec = prepare(target, stores, set_, profile)  # checks, then creates a spec's study
    overrides = () if is_spec_file(target) else tuple(set_ or ())
    job = submit(spec.name, stores, options, Worker(spec.name, stores, overrides))
    total = budget(spec)
    typer.echo(submitted_lines(job, spec.name, total, options, stores))
    if wait:
        raise typer.Exit(wait_for(job, stores, spec.name, total))


def submitted_lines(job: Any, name: str, total: int, options: Any, stores: Stores) -> str:
    """What was submitted, where its logs are, how to watch and stop it."""
    sbatch = options.sbatch()
    where = [f"partition {sbatch['partition']}" if "partition" in sbatch else
             "the default partition"]
    if "time" in sbatch:
        where.append(f"time limit {sbatch['time']} min")
    tasks = (f"array {job.job_id}_[0-{job.tasks - 1}]" if job.tasks > 1 else "one job")
    return "\n".join([
        f"submitted Slurm job {job.job_id}: {job.tasks} worker(s) ({tasks}) on "
        f"{', '.join(where)}, for study '{name}' ({total} trial(s) planned)",
        f"logs:   {job.log('<task>')} (and .err)" if job.tasks > 1 else
        f"logs:   {job.log(0)} (and .err)",
        f"watch:  squeue -j {job.job_id}   |   ablate study show {name}{stores.flags()}   |   "
        f"tail -f {job.log(0)}",
        f"stop:   scancel {job.job_id} (each worker queues its trial again first)",
    ])


def wait_for(job: Any, stores: Stores, name: str, total: int, poll_s: float = 5.0) -> int:
    """``--wait``: progress lines until the job is over; 0 when the study is done."""
    from ablate.runs.interrupts import INTERRUPTED
    from ablate.study.cluster.job import study_done
    from ablate.study.cluster.watch import wait
    from ablate.study.tables import load_study

    try:
        states = wait(job.job_id, stores, name, total, echo_line, poll_s)
    except KeyboardInterrupt:
        typer.echo(f"stopped waiting; job {job.job_id} goes on (squeue -j {job.job_id}; "
                   f"scancel {job.job_id} stops it)", err=True)
        return INTERRUPTED
    if study_done(stores, name):
        _print_best(load_study(stores, name))
        typer.echo(report_hint(stores, name))
        return 0
    ended = ", ".join(f"{task} {state}" for task, state in sorted(states.items()))
    typer.echo(f"job {job.job_id} ended ({ended or 'tasks forgotten by Slurm'}) but study "
               f"'{name}' is not done; see the logs ({job.log('*')}) and `ablate study show "
               f"{name}{stores.flags()}`", err=True)
    return 1


@study_app.command("list")
@clean_errors
@store_options()
def study_list(*, flags: StoreFlags) -> None:
    """List the studies in the storage: trials by state, the best configuration's mean
    objective, when the first trial started."""
    from ablate.study import list_summaries

    summaries = list_summaries(flags.resolve())
    typer.echo(summary_table(summaries) if summaries else "no studies yet")


def summary_table(summaries: list[Any]) -> str:
    """The summaries as a plain text table, numbers right-aligned."""
    header = ["study", "trials", "complete", "running", "waiting", "failed", "best", "started"]
    rows = [[s.name, s.trials, s.complete, s.running, s.waiting, s.failed,
             "-" if s.best is None else f"{s.best:.4f}",
             "-" if s.started is None else s.started.strftime("%Y-%m-%d %H:%M:%S")]
            for s in summaries]
    cells = [header, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()
                     for row in cells)


@study_app.command("show")
@clean_errors
@store_options()
def study_show(name: str, *, flags: StoreFlags) -> None:
    """Show a study's trials: state, objective, searched values, reason; and the best
    configuration by the rule the report and predict use."""
    from ablate.study import study_table
    from ablate.study.tables import best_configuration, load_study

    stores = flags.resolve()
    table = study_table(stores, name)
    typer.echo(table.to_string(index=False) if not table.empty else f"study '{name}' has no trials")
    study = load_study(stores, name)
    if len(study.directions) == 1:
        typer.echo(best_line(best_configuration(study)))


# ------------------------------------------------------------------------------ single runs
