"""Shared entry for every atheris target in fuzz/.

A target module defines ``TestOneInput(data: bytes) -> None`` (raises only
on a contract violation), ``seeds() -> list[bytes]`` (real encodings that
start its corpus) and calls :func:`main` under ``if __name__ == "__main__"``
after :func:`instrument`. Targets stay importable without atheris so that
pytest replays their corpora (tests/test_fuzz_corpus.py).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable


def instrument(modules: Iterable[str]) -> None:
    """Import ``modules`` with atheris coverage instrumentation. Call it
    before the target's own imports of ringward, only when fuzzing."""
    import atheris

    with atheris.instrument_imports(include=["ringward"]):
        for name in modules:
            importlib.import_module(name)


def main(test_one_input: Callable[[bytes], None]) -> None:
    """Run libFuzzer over ``test_one_input`` with the process's argv."""
    import atheris

    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
