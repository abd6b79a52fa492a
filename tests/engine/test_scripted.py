"""Every script under tests/engine/scripts/ (see tests/scripted.py for the format)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripted import parse, run_script

SCRIPTS = sorted((Path(__file__).parent / "scripts").glob("*.txt"))


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_script(path: Path) -> None:
    expected, actual = run_script(path)
    assert actual == expected


def test_there_are_scripts() -> None:
    assert len(SCRIPTS) >= 3


def test_a_command_needs_its_separator() -> None:
    with pytest.raises(ValueError, match="line 1"):
        parse("run 1\nn1 view\n")
