"""The typer apps, shared options and helpers of the ``ablate`` command line."""

from __future__ import annotations

import functools
import warnings
from typing import Annotated, Any

import typer

from ablate.errors import AblateError
from ablate.stores import Stores, redact

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
QuietOpt = Annotated[bool, typer.Option(help="No progress bars or per-epoch lines.")]
StoreOpt = Annotated[
    str | None,
    typer.Option("--store", help="Folder of the embedded stores (env ABLATE_STORE)."),
]
StorageOpt = Annotated[
    str | None, typer.Option("--storage", help="Optuna storage URL (env ABLATE_STORAGE).")
]
TrackingOpt = Annotated[
    str | None,
    typer.Option("--tracking-uri", help="MLflow tracking URI (env MLFLOW_TRACKING_URI)."),
]


def clean_errors(func: Any) -> Any:
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


def echo_line(text: str) -> None:
    from tqdm.auto import tqdm

    tqdm.write(text)


def browse_hint(stores: Stores, study: str | None = None) -> str:
    """Where the runs are and how to browse them (a tracking server: the address of the
    study's runs in ablate's saved view)."""
    shown = redact(stores.tracking_uri)
    if stores.tracking_uri.startswith("http"):
        return f"MLflow runs: {redact(_runs_address(stores, study))}"
    return f"MLflow runs: {shown}\n  browse them: ablate ui{stores.flags(storage=False)}"


def report_hint(stores: Stores, study: str) -> str:
    """The report command for ``study`` on these stores."""
    return f"report: ablate report {study}{stores.flags()} [--format html --out FILE]"


def _runs_address(stores: Stores, study: str | None) -> str:
    from ablate.tracking import Tracker, names

    server = stores.tracking_uri.rstrip("/")
    if study is None:
        return server
    try:
        experiment = Tracker(stores, write=False).experiment_id(study, create=False)
    except AblateError:
        return server
    return server if experiment is None else f"{server}/{names.runs_page(experiment, True)}"


# ------------------------------------------------------------------------------------- study
