"""``ablate check SPEC``: every problem of the spec's data set in one pass, before any run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ablate.cli.common import ProfileOpt, SetOpt, app, clean_errors


@app.command("check")
@clean_errors
def check_cmd(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC")],
    set_: SetOpt = None,
    profile: ProfileOpt = None,
) -> None:
    """Read SPEC's whole data set once and list every problem, one line each (the file or key,
    and the setting that fixes it), then a summary: pairs per split, classes and their pixel
    shares, image sizes and channel counts. Exit code 2 when anything is wrong, else 0.
    Nothing is written anywhere. study create, study run and train run the same checks."""
    from ablate.data.check import check_data
    from ablate.designs import configurations
    from ablate.spec import load_spec

    spec = load_spec(spec_path, set_, profile)
    # The base data set, and each design configuration that reads the data another way.
    checks = {"": spec.resolve({})}
    for design in configurations(spec.design):
        if any(path.startswith("data.") for path in design.values):
            config = spec.resolve(design.values)
            if config.data not in [c.data for c in checks.values()]:
                checks[design.label] = config
    failed = False
    for label, config in checks.items():
        prefix = f"[{label}] " if label else ""
        if label:
            typer.echo(f"design configuration '{label}':")
        found = check_data(config)
        for line in found.problems.lines():
            typer.echo(f"error: {prefix}{line}", err=True)
        for line in found.problems.warnings:
            typer.echo(f"warning: {prefix}{line}", err=True)
        problems = len(found.problems)
        verdict = f"{problems} problem(s)" if problems else "ok"
        typer.echo(f"{prefix}{verdict}: {found.summary(config.data)}")
        failed = failed or not found.ok
    if failed:
        raise typer.Exit(2)
