"""``ablate study create|run|list|show``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ablate.cli.common import (
    ProfileOpt,
    QuietOpt,
    SetOpt,
    StorageOpt,
    StoreOpt,
    TrackingOpt,
    browse_hint,
    clean_errors,
    echo_line,
    store_flag,
    study_app,
)
from ablate.stores import resolve_stores


@study_app.command("create")
@clean_errors
def study_create(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC", help="Study spec (YAML).")],
    set_: SetOpt = None,
    profile: ProfileOpt = None,
    replace: Annotated[bool, typer.Option(help="Delete an existing study of that name.")] = False,
    store: StoreOpt = None,
    storage: StorageOpt = None,
    tracking_uri: TrackingOpt = None,
) -> None:
    """Create an Optuna study from SPEC (the spec is stored with it)."""
    from ablate.spec import load_spec
    from ablate.study import create_study

    spec = load_spec(spec_path, set_, profile)
    stores = resolve_stores(store, storage, tracking_uri)
    create_study(spec, stores, replace=replace)
    typer.echo(f"created study '{spec.name}' ({spec.trials} trials planned)\n{stores.describe()}")
    typer.echo(f"run it: ablate study run {spec.name}{store_flag(store)}")


@study_app.command("run")
@clean_errors
def study_run(
    target: Annotated[str, typer.Argument(metavar="NAME_OR_SPEC", help="Study name or spec.")],
    n_trials: Annotated[
        int | None, typer.Option("-n", "--n-trials", help="Run this many more trials.")
    ] = None,
    timeout: Annotated[float | None, typer.Option(help="Stop starting trials after S s.")] = None,
    set_: SetOpt = None,
    profile: ProfileOpt = None,
    quiet: QuietOpt = False,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes on this machine (shared storage).")
    ] = 1,
    gpus: Annotated[
        str | None, typer.Option(help="Comma-separated GPU ids: worker i sees one of them.")
    ] = None,
    store: StoreOpt = None,
    storage: StorageOpt = None,
    tracking_uri: TrackingOpt = None,
) -> None:
    """Run trials (creating the study first when given a spec file).

    After each finished trial (and once at the end) the study's summary in MLflow is
    refreshed: the ablation table in the experiment's and the study run's descriptions, the
    study run's summary metrics and its report.html artifact."""
    from ablate.publish import Publisher
    from ablate.study import TooManyFailures, run_study, run_workers

    stores = resolve_stores(store, storage, tracking_uri)
    if workers > 1 or gpus:
        gpu_list = [g.strip() for g in gpus.split(",") if g.strip()] if gpus else None
        code = run_workers(target, stores, workers, gpu_list, n_trials, timeout, set_, profile)
        typer.echo(f"{workers} worker(s) finished (exit code {code})")
        name = _study_name(target, set_, profile)
        Publisher(stores, name, echo_line).publish()
        typer.echo(browse_hint(stores, store, name))
        raise typer.Exit(code)
    publisher = Publisher(stores, echo=echo_line)
    try:
        study = run_study(target, stores, n_trials, timeout, set_, not quiet, echo_line, profile,
                          after_trial=publisher)
    except TooManyFailures as err:
        publisher.publish()
        typer.echo(str(err), err=True)
        raise typer.Exit(1) from None
    publisher.study = study.study_name
    publisher.publish()
    _print_best(study)
    typer.echo(browse_hint(stores, store, study.study_name))
    typer.echo(f"report: ablate report {study.study_name}{store_flag(store)} "
               "[--format html --out FILE]")


def _study_name(target: str, overrides: list[str] | None, profile: str | None) -> str:
    """The study a ``study run`` target names (a spec file's ``name``, or the name itself)."""
    from ablate.spec import load_spec
    from ablate.study.create import is_spec_file

    return load_spec(target, overrides, profile).name if is_spec_file(target) else target


def _print_best(study: Any) -> None:
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        typer.echo("no complete trial yet")
    elif len(study.directions) > 1:
        typer.echo(f"Pareto front: trials {', '.join(str(t.number) for t in study.best_trials)}")
    elif any("config" in t.params for t in study.trials):
        # A design: rank configurations by their mean over repeats, not single trials.
        # (not trials_dataframe: with metric names set, its value column is named after them)
        import pandas as pd

        done = pd.DataFrame([(t.params.get("config"), t.value) for t in study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE,))], columns=["config", "value"])
        means = done.groupby("config")["value"].agg(["mean", "count"])
        means = means.sort_values("mean", ascending=study.direction.name == "MINIMIZE")
        best = means.index[0]
        typer.echo(f"best configuration: {best} mean={means.loc[best, 'mean']:.4f} "
                   f"over {int(means.loc[best, 'count'])} run(s)")
    else:
        best = study.best_trial
        typer.echo(f"best trial: {best.number} value={best.value:.4f} params={best.params}")


@study_app.command("list")
@clean_errors
def study_list(
    store: StoreOpt = None, storage: StorageOpt = None, tracking_uri: TrackingOpt = None
) -> None:
    """List the studies in the storage."""
    from ablate.study import list_studies

    table = list_studies(resolve_stores(store, storage, tracking_uri))
    typer.echo(table.to_string(index=False) if not table.empty else "no studies yet")


@study_app.command("show")
@clean_errors
def study_show(
    name: str,
    store: StoreOpt = None,
    storage: StorageOpt = None,
    tracking_uri: TrackingOpt = None,
) -> None:
    """Show a study's trials: state, objective, searched values, reason."""
    from ablate.study import study_table

    table = study_table(resolve_stores(store, storage, tracking_uri), name)
    typer.echo(table.to_string(index=False) if not table.empty else f"study '{name}' has no trials")


# ------------------------------------------------------------------------------ single runs
