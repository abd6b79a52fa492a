"""Discovery of the atheris targets: every ``fuzz/fuzz_<name>.py``.

Used by smoke.py, make_corpus.py and the test suite's corpus replay, so a
new target is picked up everywhere by adding one file.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

FUZZ_DIR = Path(__file__).resolve().parent
CORPUS_DIR = FUZZ_DIR / "corpus"
REGRESSIONS_DIR = FUZZ_DIR / "regressions"
DICT_FILE = FUZZ_DIR / "ringward.dict"


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
