"""docs/wire-format.md, ringward.wire.vectors and the codec agree byte for byte."""

from __future__ import annotations

import re
from pathlib import Path

from ringward.wire import decode, decode_batch, encode, encode_batch, vectors

DOC = Path(__file__).resolve().parents[2] / "docs" / "wire-format.md"
BLOCK = re.compile(r"#### vector `(\w+)` \((\d+) bytes\)\n\n```hex\n(.*?)```", re.S)


def _doc_vectors() -> dict[str, bytes]:
    found = {}
    for name, size, body in BLOCK.findall(DOC.read_text()):
        data = bytes.fromhex("".join(body.split()))
        assert len(data) == int(size), f"{name}: stated size differs"
        found[name] = data
    return found


def test_every_kind_has_a_documented_vector() -> None:
    assert set(_doc_vectors()) == {*vectors.frames(), "batch"}


def test_documented_vectors_decode_to_the_frames() -> None:
    doc = _doc_vectors()
    for name, frame in vectors.frames().items():
        assert decode(doc[name]) == frame, name
        assert encode(frame) == doc[name], f"{name}: run python -m ringward.wire.vectors"
    assert decode_batch(doc["batch"]) == vectors.BATCH
    assert encode_batch(vectors.BATCH) == doc["batch"]


def test_doc_section_is_current() -> None:
    assert vectors.markdown() in DOC.read_text()
