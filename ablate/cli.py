"""The ``ablate`` command line: a thin typer layer over :mod:`ablate.study` and friends."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer

from ablate.errors import AblateError
from ablate.stores import Stores, resolve_stores

app = typer.Typer(
    help="Experiment-tracked ablation studies for semantic segmentation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
study_app = typer.Typer(help="Create, run and inspect Optuna studies.", no_args_is_help=True)
app.add_typer(study_app, name="study")
data_app = typer.Typer(help="Data utilities.", no_args_is_help=True)
app.add_typer(data_app, name="data")

ProfileOpt = Annotated[
    str | None,
    typer.Option("--profile", help="Apply the spec's profiles.NAME overrides (e.g. smoke)."),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a spec value: key.path=value (YAML value). Repeatable."),
]
StoreOpt = Annotated[
    str | None,
    typer.Option("--store", help="Folder of the embedded stores [env ABLATE_STORE]."),
]
StorageOpt = Annotated[
    str | None, typer.Option("--storage", help="Optuna storage URL [env ABLATE_STORAGE].")
]
TrackingOpt = Annotated[
    str | None,
    typer.Option("--tracking-uri", help="MLflow tracking URI [env MLFLOW_TRACKING_URI]."),
]


def _clean_errors(func: Any) -> Any:
    """Bad input becomes one line on stderr and exit code 2 (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        warnings.filterwarnings("ignore")
        try:
            return func(*args, **kwargs)
        except AblateError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from None

    return wrapper


def _stores(store: str | None, storage: str | None, tracking_uri: str | None) -> Stores:
    return resolve_stores(store, storage, tracking_uri)


def _echo(text: str) -> None:
    from tqdm.auto import tqdm

    tqdm.write(text)


def _browse_hint(stores: Stores, store: str | None) -> str:
    flag = f" --store {store}" if store else ""
    if stores.tracking_uri.startswith("http"):
        return f"MLflow runs: {stores.tracking_uri}"
    return f"MLflow runs: {stores.tracking_uri}\n  browse them: ablate ui{flag}"


# ------------------------------------------------------------------------------------- study


@study_app.command("create")
@_clean_errors
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
    stores = _stores(store, storage, tracking_uri)
    create_study(spec, stores, replace=replace)
    typer.echo(f"created study '{spec.name}' ({spec.trials} trials planned)\n{stores.describe()}")
    typer.echo(f"run it: ablate study run {spec.name}" + (f" --store {store}" if store else ""))


@study_app.command("run")
@_clean_errors
def study_run(
    target: Annotated[str, typer.Argument(metavar="NAME_OR_SPEC", help="Study name or spec.")],
    n_trials: Annotated[
        int | None, typer.Option("-n", "--n-trials", help="Run this many more trials.")
    ] = None,
    timeout: Annotated[float | None, typer.Option(help="Stop starting trials after S s.")] = None,
    set_: SetOpt = None,
    profile: ProfileOpt = None,
    quiet: Annotated[bool, typer.Option(help="No progress bars.")] = False,
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
    """Run trials (creating the study first when given a spec file)."""
    from ablate.study import TooManyFailures, run_study, run_workers

    stores = _stores(store, storage, tracking_uri)
    flag = f" --store {store}" if store else ""
    if workers > 1 or gpus:
        gpu_list = [g.strip() for g in gpus.split(",") if g.strip()] if gpus else None
        code = run_workers(target, stores, workers, gpu_list, n_trials, timeout, set_, profile)
        typer.echo(f"{workers} worker(s) finished (exit code {code})")
        typer.echo(_browse_hint(stores, store))
        raise typer.Exit(code)
    try:
        study = run_study(target, stores, n_trials, timeout, set_, not quiet, _echo, profile)
    except TooManyFailures as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(1) from None
    _print_best(study)
    typer.echo(_browse_hint(stores, store))
    typer.echo(f"report: ablate report {study.study_name}{flag}")


def _print_best(study: Any) -> None:
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        typer.echo("no complete trial yet")
    elif len(study.directions) > 1:
        typer.echo(f"Pareto front: trials {', '.join(str(t.number) for t in study.best_trials)}")
    elif any("config" in t.params for t in study.trials):
        # A design: rank configurations by their mean over repeats, not single trials.
        done = study.trials_dataframe(attrs=("params", "value", "state"))
        done = done[done["state"] == "COMPLETE"]
        means = done.groupby("params_config")["value"].agg(["mean", "count"])
        means = means.sort_values("mean", ascending=study.direction.name == "MINIMIZE")
        best = means.index[0]
        typer.echo(f"best configuration: {best} mean={means.loc[best, 'mean']:.4f} "
                   f"over {int(means.loc[best, 'count'])} run(s)")
    else:
        best = study.best_trial
        typer.echo(f"best trial: {best.number} value={best.value:.4f} params={best.params}")


@study_app.command("list")
@_clean_errors
def study_list(
    store: StoreOpt = None, storage: StorageOpt = None, tracking_uri: TrackingOpt = None
) -> None:
    """List the studies in the storage."""
    from ablate.study import list_studies

    table = list_studies(_stores(store, storage, tracking_uri))
    typer.echo(table.to_string(index=False) if not table.empty else "no studies yet")


@study_app.command("show")
@_clean_errors
def study_show(
    name: str,
    store: StoreOpt = None,
    storage: StorageOpt = None,
    tracking_uri: TrackingOpt = None,
) -> None:
    """Show a study's trials: state, objective, searched values, reason."""
    from ablate.study import study_table

    table = study_table(_stores(store, storage, tracking_uri), name)
    typer.echo(table.to_string(index=False) if not table.empty else f"study '{name}' has no trials")


# ------------------------------------------------------------------------------ single runs


@app.command("train")
@_clean_errors
def train_cmd(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC")],
    set_: SetOpt = None,
    profile: ProfileOpt = None,
    quiet: Annotated[bool, typer.Option(help="No progress bars.")] = False,
    store: StoreOpt = None,
    storage: StorageOpt = None,
    tracking_uri: TrackingOpt = None,
) -> None:
    """Train SPEC once with no sampling (a baseline), tracked like a trial."""
    import tempfile

    from ablate.spec import load_spec
    from ablate.study import preflight
    from ablate.tracking import Tracker
    from ablate.train import train

    stores = _stores(store, storage, tracking_uri)
    spec = load_spec(spec_path, set_, profile)
    config = spec.resolve({})
    preflight(config)
    tracker = Tracker(stores)
    config = tracker.localize(config)
    run = tracker.start_run(spec.name, config, role="train", name=f"{spec.name}-train")
    try:
        with tempfile.TemporaryDirectory(prefix="ablate-") as tmp:
            result = train(
                config, on_epoch=run.log_epoch, artifact_dir=Path(tmp), progress=not quiet
            )
            run.log_result(result)
            run.log_artifacts(Path(tmp))
    except BaseException as err:
        run.end("FAIL", str(err) or type(err).__name__)
        raise
    run.end("COMPLETE")
    flat = result.flat_metrics()
    shown = {k: v for k, v in flat.items() if k.startswith(("val_", "test_")) and "_" not in k[5:]}
    typer.echo(json.dumps({k: round(v, 5) for k, v in shown.items()}, indent=None))
    typer.echo(f"run {run.run_id}: {config.objective.metric}={result.objective:.4f}, "
               f"{result.gflops:.3f} GFLOPs, {result.params:,} params")
    typer.echo(_browse_hint(stores, store))


@app.command("flops")
@_clean_errors
def flops_cmd(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC")],
    set_: SetOpt = None,
    profile: ProfileOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
) -> None:
    """Params and GFLOPs of the configured model at its input size (fvcore)."""
    from ablate.flops import model_cost
    from ablate.spec import load_spec
    from ablate.tracking import FLOP_CONVENTION

    config = load_spec(spec_path, set_, profile).resolve({})
    cost = model_cost(config)
    if as_json:
        typer.echo(json.dumps({**cost, "convention": FLOP_CONVENTION}))
        return
    c, h, w = cost["input"]
    typer.echo(
        f"{config.model.arch}/{config.model.encoder} at {c}x{h}x{w}: "
        f"{cost['params']:,} params, {cost['gflops']:.3f} GFLOPs ({FLOP_CONVENTION})"
    )


# ------------------------------------------------------------------------------ reading back


@app.command("report")
@_clean_errors
def report_cmd(
    name: str,
    out: Annotated[
        Path | None,
        typer.Option(help="Write the report here (figures and CSV tables go next to it)."),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="md, csv (one file per table) or latex.")
    ] = "md",
    compare: Annotated[
        str | None, typer.Option(help="Another study to set side by side (same store).")
    ] = None,
    trials: Annotated[
        str | None,
        typer.Option(help="Trial numbers for the per-split tables, e.g. 3,5 "
                          "(default: the best configuration and the baseline)."),
    ] = None,
    reader: Annotated[
        str,
        typer.Option(help="auto (SQL tables of a database store, else search_runs), "
                          "mlflow (MlflowClient.search_runs) or sql."),
    ] = "auto",
    store: StoreOpt = None,
    tracking_uri: TrackingOpt = None,
) -> None:
    """Report of a study read from MLflow: markdown (default), CSV or LaTeX tables.

    Without --out the text goes to stdout and no figures are written; with --out the PNG
    figures are written next to the file (<stem>_pareto.png, ...) and linked from it."""
    from ablate.report import FORMATS, write_report
    from ablate.report.runs import READERS

    if fmt not in FORMATS:
        raise AblateError(f"--format: unknown format '{fmt}'; use one of {', '.join(FORMATS)}")
    if reader not in READERS:
        raise AblateError(f"--reader: unknown reader '{reader}'; use one of {', '.join(READERS)}")
    chosen: list[int] | None = None
    if trials:
        try:
            chosen = [int(t) for t in trials.replace(" ", "").split(",") if t]
        except ValueError:
            message = f"--trials: expected trial numbers like 3,5, not '{trials}'"
            raise AblateError(message) from None
    stores = _stores(store, None, tracking_uri)
    text, written = write_report(stores, name, out=out, fmt=fmt, compare=compare,
                                 trials=chosen, reader=reader)
    if out is None:
        typer.echo(text)
        return
    typer.echo(f"report written to {out}")
    for path in written[1:]:
        typer.echo(f"  {path}")


@app.command("predict")
@_clean_errors
def predict_cmd(
    target: Annotated[str, typer.Argument(metavar="RUN_OR_STUDY",
                                          help="An MLflow run id, or a study (its best run).")],
    out: Annotated[Path, typer.Option(help="Folder for labels/ and color/ PNGs.")],
    split: Annotated[str, typer.Option(help="train, val or test.")] = "test",
    store: StoreOpt = None,
    tracking_uri: TrackingOpt = None,
) -> None:
    """Write a run's predictions as label PNGs (original size) and colourised copies, and
    print the metrics computed from those files."""
    from ablate.predict import predict_run
    from ablate.tracking import Tracker

    tracker = Tracker(_stores(store, None, tracking_uri), write=False)
    result = predict_run(tracker, target, split, out)
    key = "miou" if "miou" in result.metrics else "iou"
    typer.echo(f"run {result.run_id}: wrote {result.files} label maps to {out / 'labels'} "
               f"and colourised copies to {out / 'color'}")
    line = f"{split} {key} from the written files: {result.metrics[key]:.6f}"
    logged = result.logged.get(f"{split}_{key}")
    if logged is not None:
        line += f" (logged {split}_{key}: {logged:.6f})"
    typer.echo(line)


@data_app.command("make")
@_clean_errors
def data_make(
    kind: Annotated[str, typer.Argument(help="plants or satellite")],
    out: Annotated[Path, typer.Argument(metavar="DIR")],
    num_images: Annotated[int | None, typer.Option(help="Number of images.")] = None,
    size: Annotated[int | None, typer.Option(help="Side of the square images.")] = None,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same files.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace an earlier stand-in there.")] = False,
) -> None:
    """Write a synthetic stand-in data set (images/ and masks/) for a workflow's study."""
    import yaml

    from ablate.data.standins import make_standin

    kwargs: dict[str, Any] = {"seed": seed, "overwrite": overwrite}
    if num_images is not None:
        kwargs["num_images"] = num_images
    if size is not None:
        kwargs["size"] = size
    try:
        info = make_standin(kind, out, **kwargs)
    except (ValueError, FileExistsError) as err:
        raise AblateError(f"ablate data make {kind} {out}: {err}") from None
    typer.echo(f"wrote a {kind} stand-in to {out}; a data section for it:")
    typer.echo(yaml.safe_dump({"data": info["data"]}, sort_keys=False).rstrip())


@app.command("ui")
@_clean_errors
def ui_cmd(
    store: StoreOpt = None,
    tracking_uri: TrackingOpt = None,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 5000,
) -> None:
    """Start the MLflow UI against the store (binds 127.0.0.1 unless --host is given)."""
    stores = _stores(store, None, tracking_uri)
    mlflow = shutil.which("mlflow", path=os.path.dirname(sys.executable)) or shutil.which("mlflow")
    if mlflow is None:
        raise AblateError("the mlflow command is not installed in this environment")
    command = [mlflow, "ui", "--backend-store-uri", stores.tracking_uri,
               "--host", host, "--port", str(port)]
    if stores.artifact_root is not None:
        command += ["--artifacts-destination", str(stores.artifact_root)]
    typer.echo(f"MLflow UI on http://{host}:{port} ({stores.tracking_uri}); Ctrl-C stops it")
    raise typer.Exit(subprocess.call(command))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
