"""``ablate diff`` and ``ablate rerun``: what differs between two runs; train one again."""

from __future__ import annotations

from typing import Annotated

import typer

from ablate.cli.common import QuietOpt, StoreFlags, app, clean_errors, store_options
from ablate.stores import Stores

_RUN_HELP = "A run id, or STUDY:TRIAL (STUDY:TRIAL:REPEAT with repeats)."
RunArg = Annotated[str, typer.Argument(metavar="RUN", help=_RUN_HELP)]
RunA = Annotated[str, typer.Argument(metavar="RUN_A", help=_RUN_HELP)]
RunB = Annotated[str, typer.Argument(metavar="RUN_B", help=_RUN_HELP)]


@app.command("diff")
@clean_errors
@store_options(storage=False)
def diff_cmd(
    run_a: RunA,
    run_b: RunB,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
    *,
    flags: StoreFlags,
) -> None:
    """What differs between two runs: configuration keys, environment entries, the data
    digest of each split, and every final metric side by side with its difference."""
    from ablate.runs.diff import compare
    from ablate.tracking import Tracker, find_run, tracked_run

    tracker = Tracker(_existing(flags.resolve()), write=False)
    runs = [tracked_run(tracker, find_run(tracker, ref)) for ref in (run_a, run_b)]
    diff = compare(*runs)
    typer.echo(diff.to_json() if as_json else "\n".join(diff.lines()))


@app.command("rerun")
@clean_errors
@store_options(storage=False)
def rerun_cmd(
    run: RunArg,
    check: Annotated[bool, typer.Option(
        "--check", help="Compare every final metric with the original; exit 1 if any differs "
        "(beyond a tolerance when a run was not bit-reproducible: CUDA, deterministic: false)."
    )] = False,
    quiet: QuietOpt = False,
    *,
    flags: StoreFlags,
) -> None:
    """Train RUN again from its logged configuration (same seed, same data), tracked as a new
    run (role rerun, tagged with the original's id) in the same experiment."""
    from ablate.runs.rerun import check as check_rerun
    from ablate.runs.rerun import rerun

    stores = _existing(flags.resolve())
    original, again = rerun(stores, run, progress=not quiet)
    typer.echo(f"rerun of {original.run_id} ({original.label}): run {again.run_id}")
    if not check:
        typer.echo(f"compare them: ablate diff {original.run_id} {again.run_id}")
        return
    _, lines, failing = check_rerun(original, again)
    for line in lines:
        typer.echo(line)
    for name, a, b in failing:
        typer.echo(f"  {name}: original {a!r}, rerun {b!r}, difference {b - a!r}")
    raise typer.Exit(1 if failing else 0)


def _existing(stores: Stores) -> Stores:
    """The stores, or a one-line error when the tracking store does not exist (nothing is
    created by reading)."""
    from ablate.errors import AblateError
    from ablate.stores import local_sqlite_missing

    if local_sqlite_missing(stores.tracking_uri):
        raise AblateError(f"no MLflow store at {stores.tracking_uri}; point --store or "
                          "--tracking-uri at the store that holds the run")
    return stores
