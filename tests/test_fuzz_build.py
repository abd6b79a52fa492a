"""The fuzz targets build as a continuous fuzzing job builds them: every
target compiles behind compile_python_fuzzer's coverage stub (no `from
__future__` import, which must be a file's first statement), has its
.options with the three bounds and the dictionary they name, and
fuzz/build.sh ships all of it. The PyInstaller build itself is `make
fuzz-build` (fuzz/check_build.py)."""

import subprocess
from pathlib import Path

import pytest

import check_build
import targets


def test_every_target_compiles_behind_the_coverage_stub() -> None:
    check_build.check_stub_compiles()


def test_a_future_import_breaks_the_stub_and_is_caught(tmp_path: Path) -> None:
    source = "from __future__ import annotations\nx: int = 1\n"
    compile(source, "target.py", "exec")  # fine alone...
    with pytest.raises(SyntaxError, match="__future__"):
        compile(check_build.COVERAGE_STUB + source, "target.py", "exec")  # ...not behind the stub


@pytest.mark.parametrize("name", targets.names())
def test_every_target_has_its_options_and_dictionary(name: str) -> None:
    settings = targets.options(name)
    assert int(settings["max_len"]) > 0
    assert int(settings["rss_limit_mb"]) == 2048
    assert int(settings["timeout"]) in (10, 60)
    dict_file = targets.dict_file(name)
    assert dict_file is not None and dict_file.is_file(), f"{name}: run `make corpus`"


def test_run_sh_uses_the_options_file() -> None:
    run_sh = targets.FUZZ_DIR / "run.sh"
    text = run_sh.read_text()
    for flag in ("-max_len=", "-rss_limit_mb=", "-timeout=", "-dict="):
        assert flag not in text, f"run.sh hard-codes {flag}; it belongs in the .options files"
    listed = subprocess.run(
        ["bash", str(run_sh), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert listed == targets.names()


@pytest.mark.heavy
def test_build_script_ships_every_target(tmp_path: Path) -> None:
    check_build.check_build_script(tmp_path)
