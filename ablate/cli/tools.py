"""``ablate data make`` and ``ablate ui``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ablate.cli.choices import Standin
from ablate.cli.common import StoreFlags, app, clean_errors, data_app, store_options
from ablate.errors import AblateError


@data_app.command("make")
@clean_errors
def data_make(
    kind: Annotated[Standin, typer.Argument(help="The stand-in to write.")],
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
        info = make_standin(str(kind), out, **kwargs)
    except (ValueError, FileExistsError) as err:
        raise AblateError(f"ablate data make {kind} {out}: {err}") from None
    typer.echo(f"wrote a {kind} stand-in to {out}; a data section for it:")
    typer.echo(yaml.safe_dump({"data": info["data"]}, sort_keys=False).rstrip())


@app.command("ui")
@clean_errors
@store_options(storage=False)
def ui_cmd(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 5000,
    *,
    flags: StoreFlags,
) -> None:
    """Browse the store's runs in the MLflow UI (one lean server; Ctrl-C stops it).

    Binds 127.0.0.1 unless --host is given, and prints the address of the newest study's runs.
    """
    from ablate.tracking.ui import serve

    serve(flags.resolve(), host, port, echo=typer.echo)
