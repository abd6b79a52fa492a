"""Discovery of the atheris targets: every ``fuzz/fuzz_<name>.py``, and
their libFuzzer settings: every ``fuzz/fuzz_<name>.options``.

Used by smoke.py, run.sh, check_build.py, make_corpus.py and the test
suite's corpus replay, so a new target is picked up everywhere by adding
its two files. The ``.options`` file is the one source of a target's
limits: OSS-Fuzz and ClusterFuzzLite read it next to the built fuzzer,
and the local scripts turn it into flags here (``python fuzz/targets.py
flags NAME``).
"""

from __future__ import annotations

import configparser
import importlib
import sys
from pathlib import Path
from types import ModuleType

FUZZ_DIR = Path(__file__).resolve().parent
CORPUS_DIR = FUZZ_DIR / "corpus"
REGRESSIONS_DIR = FUZZ_DIR / "regressions"
DICT_FILE = FUZZ_DIR / "ringward.dict"
# The section of a .options file that holds libFuzzer flags (ClusterFuzz's
# format: an INI file, one section per engine).
LIBFUZZER_SECTION = "libfuzzer"
# Every target must bound these three: an input longer than a datagram, a
# parser allocating past the memory contract or hanging is a finding only
# if the run knows the bound.
REQUIRED_OPTIONS = ("max_len", "rss_limit_mb", "timeout")


def names() -> list[str]:
    """Target names (``decode`` for fuzz_decode.py), sorted."""
    return sorted(p.stem.removeprefix("fuzz_") for p in FUZZ_DIR.glob("fuzz_*.py"))


def load(name: str) -> ModuleType:
    """Import a target module without atheris instrumentation."""
    if str(FUZZ_DIR) not in sys.path:
        sys.path.insert(0, str(FUZZ_DIR))
    return importlib.import_module(f"fuzz_{name}")


def inputs(name: str) -> list[Path]:
    """Every stored input of a target: seed corpus and saved regressions."""
    found: list[Path] = []
    for base in (CORPUS_DIR / name, REGRESSIONS_DIR / name):
        if base.is_dir():
            found.extend(sorted(p for p in base.iterdir() if p.is_file()))
    return found


def options_file(name: str) -> Path:
    """The target's ``fuzz_<name>.options`` (shipped next to the fuzzer)."""
    return FUZZ_DIR / f"fuzz_{name}.options"


def options(name: str) -> dict[str, str]:
    """The ``[libfuzzer]`` settings of a target, in file order.

    Raises ValueError when the file is missing or lacks a required bound:
    a target without its limits must not run at libFuzzer's defaults.
    """
    path = options_file(name)
    parser = configparser.ConfigParser(interpolation=None)
    if not parser.read(path, encoding="utf-8"):
        raise ValueError(f"{path}: missing (every target needs its .options file)")
    if not parser.has_section(LIBFUZZER_SECTION):
        raise ValueError(f"{path}: no [{LIBFUZZER_SECTION}] section")
    settings = dict(parser.items(LIBFUZZER_SECTION))
    missing = [key for key in REQUIRED_OPTIONS if key not in settings]
    if missing:
        raise ValueError(f"{path}: missing {', '.join(missing)}")
    return settings


def dict_file(name: str) -> Path | None:
    """The libFuzzer dictionary the target's options name, if any."""
    value = options(name).get("dict")
    return FUZZ_DIR / value if value else None


def libfuzzer_flags(name: str) -> list[str]:
    """The target's options as libFuzzer flags (``-max_len=65507``...), with
    the dictionary's path resolved inside fuzz/ (a continuous fuzzing job
    resolves it next to the built fuzzer instead)."""
    flags = []
    for key, value in options(name).items():
        resolved = str(FUZZ_DIR / value) if key == "dict" else value
        flags.append(f"-{key}={resolved}")
    return flags


def main(argv: list[str]) -> int:
    """``targets.py names | flags NAME | dict NAME`` (for run.sh, build.sh)."""
    if argv == ["names"]:
        print("\n".join(names()))
        return 0
    if len(argv) == 2 and argv[0] == "flags" and argv[1] in names():
        print("\n".join(libfuzzer_flags(argv[1])))
        return 0
    if len(argv) == 2 and argv[0] == "dict" and argv[1] in names():
        # The file name only: a job resolves it next to the fuzzer.
        print(options(argv[1]).get("dict", ""))
        return 0
    print("usage: targets.py names | flags NAME | dict NAME", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
