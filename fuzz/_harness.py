"""Shared entry for every atheris target in fuzz/.

A target module defines ``TestOneInput(data: bytes) -> None`` (raises only
on a contract violation), ``seeds() -> list[bytes]`` (real encodings that
start its corpus) and calls :func:`main` under ``if __name__ == "__main__"``
after :func:`instrument`. Targets stay importable without atheris so that
pytest replays their corpora (tests/test_fuzz_corpus.py).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterable


def instrument(modules: Iterable[str]) -> None:
    """Import ``modules`` with atheris coverage instrumentation. Call it
    before the target's own imports of ringward, only when fuzzing."""
    import atheris

    with atheris.instrument_imports(include=["ringward"]):
        for name in modules:
            importlib.import_module(name)


# libFuzzer runs argv[0] again for -minimize_crash and -merge with
# subprocesses; a target started as `python fuzz_x.py` has a script there,
# not an executable, so fuzz/run.sh names an executable wrapper here.
ARGV0_ENV = "RINGWARD_FUZZ_ARGV0"


def main(test_one_input: Callable[[bytes], None]) -> None:
    """Run libFuzzer over ``test_one_input`` with the process's argv."""
    import atheris

    argv = list(sys.argv)
    argv[0] = os.environ.get(ARGV0_ENV, argv[0])
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


def body_target(kind_name: str) -> Callable[[bytes], None]:
    """TestOneInput for one structured (msgpack) body kind.

    Invariant: any bytes decode to the kind's typed body or raise WireError;
    an accepted body re-encodes to the very same bytes.
    """
    from ringward.errors import WireError
    from ringward.wire.codec import pack_record, unpack_record
    from ringward.wire.messages import SCHEMAS, Kind

    schema = SCHEMAS[Kind[kind_name]]

    def test_one_input(data: bytes) -> None:
        try:
            body = unpack_record(schema, data)
        except WireError:
            return
        assert pack_record(schema, body) == data, "accepted body is not canonical"

    return test_one_input


def body_seeds(kind_name: str) -> list[bytes]:
    """The msgpack bodies of the test vectors of one kind (real encodings)."""
    from ringward.wire import HEADER, signing_bytes, vectors
    from ringward.wire.messages import Kind

    kind = Kind[kind_name]
    return [signing_bytes(f)[HEADER.size :] for f in vectors.all_frames() if f.kind is kind]
