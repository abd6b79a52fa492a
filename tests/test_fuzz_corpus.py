"""Replays every stored fuzz input (seed corpora and saved regressions)
through its atheris target's TestOneInput, without atheris: a finding turned
into a file under fuzz/regressions/<target>/ stays fixed forever."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

FUZZ_DIR = Path(__file__).resolve().parent.parent / "fuzz"
sys.path.insert(0, str(FUZZ_DIR))

import targets  # noqa: E402

CASES = [(name, path) for name in targets.names() for path in targets.inputs(name)]


def test_every_target_has_seeds() -> None:
    assert targets.names(), "no fuzz targets found"
    for name in targets.names():
        assert targets.inputs(name), f"fuzz target {name} has no corpus (run `make corpus`)"


def test_seeds_match_generator() -> None:
    # The committed corpus is what make_corpus.py produces from real encodings.
    for name in targets.names():
        module = targets.load(name)
        if getattr(module, "SEEDS_RECORDED", False):
            continue  # recorded traffic: changes with the engine, any copy serves
        stored = {p.read_bytes() for p in (targets.CORPUS_DIR / name).iterdir()}
        assert set(module.seeds()) <= stored, f"{name}: run `make corpus`"


@pytest.mark.parametrize(("name", "path"), CASES, ids=[f"{n}/{p.name[:12]}" for n, p in CASES])
def test_replay(name: str, path: Path) -> None:
    targets.load(name).TestOneInput(path.read_bytes())
