"""The ``ablate`` command line: a thin typer layer over :mod:`ablate.study` and friends."""

from ablate.cli import check, reproduce, runs, study, tools  # noqa: F401 - registers the commands
from ablate.cli.common import app


def main() -> None:
    app()


__all__ = ["app", "main"]
