"""The ring-seq state file under any content (the fuzz_ringseq invariant
as properties), and the regression it found: control characters around
the number (\\x1c-\\x1f, which str.strip() removes) were accepted."""

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ringward.errors import ConfigError
from ringward.runtime.ringseq import RING_SEQ_MAX, load_ring_seq, store_ring_seq

import fuzz_ringseq

DIGITS_AND_NOISE = st.lists(
    st.sampled_from(
        [
            b"0",
            b"1",
            b"9",
            b" ",
            b"\n",
            b"\r",
            b"\t",
            b"\x0b",
            b"\x1c",
            b"\x1f",
            b"+",
            b"-",
            b"_",
            b"\xd9\xa3",
            b"\x00",
        ]
    ),
    max_size=40,
).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=64), DIGITS_AND_NOISE))
def test_any_content_keeps_the_fuzz_invariant(data: bytes) -> None:
    fuzz_ringseq.TestOneInput(data)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, RING_SEQ_MAX))
def test_store_then_load_round_trips(tmp_path_factory: pytest.TempPathFactory, value: int) -> None:
    path = tmp_path_factory.mktemp("seq") / "ring.seq"
    store_ring_seq(path, value)
    assert path.read_bytes() == f"{value}\n".encode()
    assert load_ring_seq(path) == value


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        # The regression: control characters str.strip() removed, now refused.
        (b"\x1c5\n", None),
        (b"5\x1f", None),
        (b"\x1e\x1d7\n", None),
        # ASCII whitespace around the number stays accepted.
        (b"5", 5),
        (b"5\r\n", 5),
        (b" 5 \n", 5),
        (b"\t5\x0b\x0c", 5),
    ],
)
def test_only_ascii_whitespace_may_surround_the_number(
    tmp_path: Path, content: bytes, expected: int | None
) -> None:
    path = tmp_path / "ring.seq"
    path.write_bytes(content)
    if expected is not None:
        assert load_ring_seq(path) == expected
        return
    with pytest.raises(ConfigError, match="not a ring sequence number"):
        load_ring_seq(path)
