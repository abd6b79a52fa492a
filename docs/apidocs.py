"""Build the API reference from the docstrings with pdoc (``make docs``).

    python docs/apidocs.py [OUT_DIR]      # default: build/apidocs (git-ignored)

Documents the public modules below (each module's ``__all__``) and exits 1
when pdoc warns about anything (a name in ``__all__`` that does not resolve,
a module that fails to import): the reference is checked, not only built.
``make test`` runs the same build through tests/cli/test_packaging.py.
pdoc comes with the ``docs`` extra (``pip install -e '.[docs]'``).
"""

from __future__ import annotations

import importlib
import sys
import warnings
from pathlib import Path
from typing import Final

MODULES: Final = (
    "ringward",
    "ringward.errors",
    "ringward.runtime",
    "ringward.sync",
    "ringward.crypto",
    "ringward.wire",
    "ringward.engine",
    "ringward.eventlog",
    "ringward.sim",
)
DEFAULT_OUT: Final = Path(__file__).resolve().parents[1] / "build" / "apidocs"


def _resolve_lazy_names() -> None:
    """Some packages import names on first access (module ``__getattr__``,
    so that ``import ringward.wire`` stays light); pdoc looks only in a
    module's ``__dict__``, so resolve every ``__all__`` name there first."""
    for name in MODULES:
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", ()):
            if attr not in module.__dict__:
                setattr(module, attr, getattr(module, attr))


def build(out: Path) -> list[str]:
    """Write the reference to ``out``; returns pdoc's warnings (empty: clean)."""
    import pdoc

    _resolve_lazy_names()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pdoc.pdoc(*MODULES, output_directory=out)
    return [f"{w.category.__name__}: {w.message}" for w in caught]


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else DEFAULT_OUT
    problems = build(out)
    for problem in problems:
        print(f"apidocs: {problem}", file=sys.stderr)
    if problems:
        print(f"apidocs: {len(problems)} problem(s); the reference is in {out}", file=sys.stderr)
        return 1
    print(f"API reference: {out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
