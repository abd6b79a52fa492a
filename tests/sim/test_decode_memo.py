"""The simulator's shared decode memo: the same frames as wire.decode,
bounded, and a datagram that does not decode raises at every node."""

from __future__ import annotations

import pytest

from ringward.engine import Engine
from ringward.errors import WireError
from ringward.sim.decodememo import DecodeMemo
from ringward.sim.keys import SimKeys
from ringward.sim.runner import Scenario, run_scenario
from ringward.wire import decode, encode, vectors


def test_each_datagram_is_decoded_once_and_to_the_same_frame() -> None:
    memo = DecodeMemo()
    data = encode(vectors.frames()["token"])
    first = memo(data)
    assert first == decode(data) and memo(bytes(data)) is first
    assert memo.hits == 1


def test_bad_datagrams_raise_every_time() -> None:
    memo = DecodeMemo()
    for _ in range(2):
        with pytest.raises(WireError):
            memo(b"junk")
    assert memo.hits == 0


def test_the_memo_forgets_the_oldest_past_its_bound() -> None:
    memo = DecodeMemo(entries_max=2)
    frames = [encode(f) for f in vectors.frames().values()][:3]
    for data in frames:
        memo(data)
    memo(frames[0])
    assert memo.hits == 0  # forgotten, decoded again
    memo(frames[2])
    assert memo.hits == 1


def test_a_world_runs_the_same_with_the_memo() -> None:
    """Same log with every node decoding for itself (the memo is a pure
    speed-up: frames are immutable)."""
    sc = Scenario(nodes=3, seed=5, duration=1.0, rate=100.0, security=True)
    with_memo = run_scenario(sc)
    keys = SimKeys(sc.seed, (1, 2, 3))

    def plain(node: int, roster: tuple[int, ...], inc: int, now: float, rs: int) -> Engine:
        security = keys.security(node)
        return Engine(node, roster, incarnation=inc, ring_seq=rs, now=now, security=security)

    without = run_scenario(sc, engine_factory=plain)
    assert with_memo.ok and without.ok
    assert with_memo.log_bytes() == without.log_bytes()


def test_large_datagrams_are_not_kept() -> None:
    """Memory stays bounded by entries x the datagram bound."""
    small, large = sorted((encode(f) for f in vectors.frames().values()), key=len)[:2]
    memo = DecodeMemo(datagram_bytes_max=len(small))
    for data in (small, small, large, large):
        assert memo(data) == decode(data)
    assert memo.hits == 1
