"""The CLI's shared options: choice enums that match the sets they stand for, listed in
``--help``; the store options declared once and given to every command that reads a store."""

from __future__ import annotations

from typing import Any

import optuna
import pytest
import typer
from typer.testing import CliRunner

from ablate.cli import app
from ablate.cli.choices import Correction, Format, Reader, Split, Standin
from ablate.data.standins import KINDS
from ablate.inference.multiple import CORRECTIONS
from ablate.reporting import FORMATS
from ablate.spec import SPLITS
from ablate.tracking import READERS


@pytest.mark.parametrize(("enum", "values"), [
    (Format, FORMATS), (Reader, READERS), (Correction, CORRECTIONS), (Split, SPLITS),
    (Standin, KINDS),
])
def test_choice_enums_match_their_sets(enum: type, values: tuple[str, ...]) -> None:
    assert [member.value for member in enum] == list(values)


def _commands() -> dict[str, Any]:
    """Every command by its full name (typer may bring its own click: duck-typed)."""
    root: Any = typer.main.get_command(app)
    found: dict[str, Any] = {}
    for name, command in root.commands.items():
        if hasattr(command, "commands"):
            found.update({f"{name} {sub}": c for sub, c in command.commands.items()})
        else:
            found[name] = command
    return found


def _options(command: Any) -> dict[str, Any]:
    return {opt: p for p in command.params for opt in getattr(p, "opts", [])}


def test_store_options_on_every_command_that_reads_a_store() -> None:
    commands = _commands()
    with_storage = {"study create", "study run", "study submit", "study list", "study show",
                    "train", "report"}
    tracking_only = {"predict", "diff", "rerun", "ui"}
    for name in with_storage | tracking_only:
        options = _options(commands[name])
        assert {"--store", "--tracking-uri"} <= set(options), name
        assert ("--storage" in options) == (name in with_storage), name
    for name in set(commands) - with_storage - tracking_only:
        assert not {"--store", "--storage", "--tracking-uri"} & set(_options(commands[name]))
    # one declaration: the same help text everywhere, bar report's note on --storage
    helps = {getattr(_options(commands[n])["--store"], "help", None) for n in with_storage}
    assert len(helps) == 1


@pytest.mark.parametrize(("command", "option", "enum"), [
    ("report", "--format", Format), ("report", "--reader", Reader),
    ("report", "--correction", Correction), ("predict", "--split", Split),
    ("data make", "kind", Standin),
])
def test_help_lists_the_choices(command: str, option: str, enum: type) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COLUMNS", "250")  # one line per option in the help table
        shown = CliRunner().invoke(app, [*command.split(), "--help"]).output
    line = next(line for line in shown.splitlines() if f" {option} " in line)
    assert "|".join(m.value for m in enum) in line, shown


def test_a_value_outside_the_choices_is_refused(cli, tmp_path) -> None:
    result = cli("report", "x", "--store", tmp_path / "store", "--reader", "pandas")
    assert result.exit_code == 2 and "--reader" in result.output
    assert not (tmp_path / "store").exists()


def test_store_flags_reach_the_command(cli, tmp_path, monkeypatch) -> None:
    storage = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    optuna.create_study(study_name="elsewhere", storage=storage)
    monkeypatch.chdir(tmp_path)
    listed = cli("study", "list", "--storage", storage, "--store", tmp_path / "store")
    assert listed.exit_code == 0 and "elsewhere" in listed.output, listed.output
    assert "elsewhere" not in cli("study", "list", "--store", tmp_path / "store").output
