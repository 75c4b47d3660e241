"""docs/spec.md is every key of the spec with its type, default and meaning as the code has
them (generated: ``python -m ablate.spec.reference --write docs/spec.md``); ``make lint`` runs
its ``--check``."""

from __future__ import annotations

import pytest
from pydantic import Field

from ablate.spec import StudySpec
from ablate.spec.base import _Strict
from ablate.spec.reference import Undocumented, main, markdown, rows
from tests.conftest import REPO

SPEC_MD = REPO / "docs" / "spec.md"


def test_the_reference_is_current():
    assert SPEC_MD.read_text() == markdown(), (
        "docs/spec.md is stale: run python -m ablate.spec.reference --write docs/spec.md")


def test_every_key_has_a_type_a_default_and_a_meaning():
    keys = {r.key: r for r in rows(StudySpec, "")}
    # a few keys of every kind: top level, nested, optional section, mapping, list, union
    assert keys["name"].default == "required"
    assert keys["optim.lr"].default == "`0.001`" and keys["optim.lr"].type == "number > 0"
    assert keys["data.synthetic.size"].type == "integer ≥ 16"
    assert keys["data.split_dirs.<split>.masks"].type == "text or null"
    assert keys["search.<path>.type"].default == "required"
    assert keys["design.components[].set"].type == "{text: any} non-empty"
    assert keys["design.repeats"].type == "integer ≥ 1, ≤ 100 or {min, max}"
    assert keys["design.kind"].type.startswith("`search` / `one_at_a_time`")
    assert all(r.meaning for r in keys.values())
    # every data key is there, with its real default (docs/data.md tells the narrative)
    assert keys["data.num_workers"].default == "`auto`"
    assert keys["data.split_overlap"].default == "`error`"


def test_a_key_without_a_docstring_stops_the_generator():
    class Section(_Strict):
        documented: int = 1
        """What it means."""
        bare: int = Field(2, ge=0)

    with pytest.raises(Undocumented, match="spec key x.bare has no meaning"):
        rows(Section, "x.")


def test_check_fails_on_a_stale_file_and_write_makes_it_current(tmp_path, capsys):
    target = tmp_path / "spec.md"
    target.write_text("# an old reference\n")
    assert main(["--check", str(target)]) == 1
    assert "is stale: run python -m ablate.spec.reference --write" in capsys.readouterr().err
    assert main(["--write", str(target)]) == 0
    assert main(["--check", str(target)]) == 0
    assert target.read_text() == markdown()
