"""The typer apps, shared options and helpers of the ``ablate`` command line."""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import typer

from ablate.errors import AblateError, StoreLost
from ablate.stores import Stores, redact, resolve_stores

R = TypeVar("R")

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
STORAGE_HELP = "Optuna storage URL (env ABLATE_STORAGE)."
TrackingOpt = Annotated[
    str | None,
    typer.Option("--tracking-uri", help="MLflow tracking URI (env MLFLOW_TRACKING_URI)."),
]


@dataclass(frozen=True)
class StoreFlags:
    """The store options as given on the command line; :meth:`resolve` applies the
    environment and the default (``ablate.stores.resolve_stores``)."""

    store: str | None = None
    storage: str | None = None
    tracking_uri: str | None = None

    def resolve(self) -> Stores:
        return resolve_stores(self.store, self.storage, self.tracking_uri)


def store_options(
    storage: bool = True, storage_help: str = STORAGE_HELP
) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Give a command the store options (``--store``, ``--tracking-uri`` and, with
    ``storage``, ``--storage``), passed to it as one ``flags: StoreFlags`` argument."""
    options = [("store", StoreOpt), ("tracking_uri", TrackingOpt)]
    if storage:
        storage_opt = Annotated[str | None, typer.Option("--storage", help=storage_help)]
        options.insert(1, ("storage", storage_opt))

    def decorate(func: Callable[..., R]) -> Callable[..., R]:
        signature = inspect.signature(func, eval_str=True)
        params = [p for p in signature.parameters.values() if p.name != "flags"]
        params += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                     annotation=annotation) for name, annotation in options]

        @functools.wraps(func)
        def command(*args: Any, **kwargs: Any) -> R:
            given = {name: kwargs.pop(name, None) for name, _ in options}
            return func(*args, flags=StoreFlags(**given), **kwargs)

        command.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command

    return decorate


STORE_LOST = 1  # the exit code of a worker that stopped because its store failed


def clean_errors(func: Any) -> Any:
    """Bad input becomes one line on stderr (one per problem when a data set has several) and
    exit code 2 (no traceback); a store that failed while written, one line and exit code 1;
    Ctrl-C or SIGTERM, exit code 130 (the run was closed KILLED, "interrupted")."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from ablate.runs.interrupts import INTERRUPTED

        warnings.filterwarnings("ignore")
        try:
            return func(*args, **kwargs)
        except StoreLost as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(STORE_LOST) from None
        except AblateError as err:
            for line in str(err).splitlines() or [""]:
                typer.echo(f"error: {line}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(INTERRUPTED) from None

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
