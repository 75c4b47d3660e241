"""The ``ablate`` command line: a thin typer layer over :mod:`ablate.study` and friends."""

from __future__ import annotations

import sys
from typing import Any

from ablate.cli import check, reproduce, runs, study, tools  # noqa: F401 - registers the commands
from ablate.cli.common import app


def main(argv: list[str] | None = None) -> None:
    """Run the command line; a usage error (a missing argument, an unknown option or
    command, a value of the wrong type) is one line on stderr and exit code 2, like every
    other bad input."""
    import importlib

    import typer

    try:  # recent typer carries its own copy of click
        errors: Any = importlib.import_module("typer._click.exceptions")
    except ImportError:  # pragma: no cover - older typer on click
        errors = importlib.import_module("click.exceptions")
    ClickException, UsageError = errors.ClickException, errors.UsageError  # noqa: N806

    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="ablate", standalone_mode=False)
    except UsageError as err:
        where = err.ctx.command_path if err.ctx is not None else "ablate"
        message = " ".join(err.format_message().split()).rstrip(".")
        print(f"error: {where}: {message}; see `{where} --help`", file=sys.stderr)
        sys.exit(2)
    except ClickException as err:
        print(f"error: {' '.join(err.format_message().split())}", file=sys.stderr)
        sys.exit(err.exit_code)
    except typer.Abort:  # Ctrl-C while the command line itself was read
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


__all__ = ["app", "main"]
