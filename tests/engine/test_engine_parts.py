"""Unit tests of the engine's parts: send queue, reassembly, ring store,
recovery plan, configuration."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ringward.engine import Engine, EngineConfig, quorum_size
from ringward.engine.membership import GatherState, plan_recovery
from ringward.engine.ringstore import Assembler, RingStore
from ringward.engine.sendqueue import SendQueue, batch_capacity
from ringward.errors import ConfigError, StateError
from ringward.wire import BatchEntry, CommitMember, RingId, decode_batch, encode_batch

R = RingId(1, 4)


def _drain(q: SendQueue) -> list[list[BatchEntry]]:
    frames = []
    while len(q):
        entries = q.next_batch()
        assert entries, "a non-empty queue must yield entries"
        assert len(encode_batch(entries)) <= q.capacity
        frames.append(entries)
    return frames


@settings(max_examples=200)
@given(st.lists(st.tuples(st.binary(max_size=5000), st.booleans()), min_size=1, max_size=30))
def test_sendqueue_batches_and_fragments_roundtrip(payloads: list[tuple[bytes, bool]]) -> None:
    q = SendQueue(1400, 1000, 1 << 20)
    for i, (p, safe) in enumerate(payloads):
        q.push(i, p, safe=safe)
    asm = Assembler(1 << 20)
    got = []
    for entries in _drain(q):
        for e in decode_batch(encode_batch(entries)):
            whole = asm.add(7, e)
            if whole is not None:
                got.append((e.msg_no, whole, e.safe))
    assert got == [(i, p, s) for i, (p, s) in enumerate(payloads)]
    assert q.frames_pending == 0


def test_sendqueue_limits() -> None:
    q = SendQueue(1400, 2, 10_000)
    with pytest.raises(ConfigError):
        q.push(1, b"x" * 10_001, safe=False)
    q.push(1, b"a", safe=False)
    q.push(2, b"b", safe=False)
    with pytest.raises(StateError) as info:
        q.push(3, b"c", safe=False)
    assert info.value.reason == "backpressure"


def test_sendqueue_bounds_its_bytes() -> None:
    """Large payloads: the byte bound refuses once it is reached (10,000
    queued 1 MiB payloads held 1.5 GB per node in a `ringward bench --size
    1048576` flood), and one payload larger than the rest of the bound still
    fits a queue below it; the bytes leave as the payloads are sent."""
    mib = 1 << 20
    q = SendQueue(1400, 10_000, 4 * mib, bytes_max=3 * mib)
    q.push(1, bytes(mib), safe=False)
    q.push(2, bytes(mib), safe=False)
    assert q.has_room()
    q.push(3, bytes(4 * mib), safe=False)
    assert not q.has_room()
    with pytest.raises(StateError) as info:
        q.push(4, b"x", safe=False)
    assert info.value.reason == "backpressure"
    for left in (2, 1, 0):
        while len(q) > left:
            q.next_batch()
        assert q.has_room() == (left == 0), left  # 5 MiB, 4 MiB, nothing queued
    q.push(4, b"x", safe=False)


def test_engine_submit_is_bounded_in_bytes() -> None:
    e = Engine(1, (1, 2, 3), config=EngineConfig(send_queue_bytes_max=3 << 20))
    for _ in range(3):
        e.submit(0.0, bytes(1 << 20))
    assert not e.send_room
    with pytest.raises(StateError):
        e.submit(0.0, b"x")


def test_sendqueue_rewind_restarts_a_half_sent_payload() -> None:
    q = SendQueue(1400, 10, 1 << 20)
    q.push(1, bytes(range(256)) * 20, safe=False)
    first = q.next_batch()
    assert first[0].frag_index == 0 and first[0].frag_count > 2
    q.next_batch()
    q.rewind()
    again = q.next_batch()
    assert again[0].frag_index == 0
    assert q.frames_pending == first[0].frag_count - 1


def test_assembler_drops_out_of_order_and_oversize() -> None:
    from ringward.wire import BatchEntry

    asm = Assembler(10)
    assert asm.add(1, BatchEntry(5, 1, 2, False, b"x")) is None  # no fragment 0
    assert asm.add(1, BatchEntry(5, 0, 2, False, b"abcdef")) is None
    assert asm.add(1, BatchEntry(5, 1, 2, False, b"ghijkl")) is None  # 12 > 10 bytes
    assert asm.add(1, BatchEntry(6, 0, 2, False, b"ab")) is None
    assert asm.add(1, BatchEntry(6, 1, 2, False, b"cd")) == b"abcd"


def _d(seq: int) -> bytes:
    return seq.to_bytes(32, "big")


def test_ringstore_window_and_aru() -> None:
    store = RingStore(R, window=8)
    frame = object()
    assert store.add(2, b"2", frame, _d(2))  # type: ignore[arg-type]
    assert store.aru == 0 and store.missing(5, 10) == [1, 3, 4, 5]
    assert store.add(1, b"1", frame, _d(1))  # type: ignore[arg-type]
    assert store.aru == 0, "unconfirmed frames do not count as held"
    store.confirm(1, _d(1))
    store.confirm(2, _d(2))
    assert store.aru == 2
    assert not store.add(2, b"2", frame, _d(2))  # type: ignore[arg-type]
    assert not store.add(11, b"11", frame, _d(11))  # type: ignore[arg-type]  # beyond window
    store.delivered = 2
    store.mark_safe(5)  # clamped to aru
    assert store.safe_upto == 2
    store.collect()
    assert store.frames == {}


def test_ringstore_discards_a_frame_its_token_contradicts() -> None:
    store = RingStore(R, window=8)
    frame = object()
    assert store.add(1, b"forged", frame, _d(99))  # type: ignore[arg-type]
    assert not store.confirm(1, _d(1))  # the token says otherwise
    assert 1 not in store.frames and store.missing(1, 10) == [1]
    assert not store.add(1, b"forged", frame, _d(99))  # type: ignore[arg-type]
    assert store.add(1, b"real", frame, _d(1))  # type: ignore[arg-type]
    assert store.aru == 1
    # The first signed digest for a seq stands.
    assert store.confirm(1, _d(7)) and store.confirmed[1] == _d(1)


def test_gather_consensus() -> None:
    g = GatherState(proc={1, 2, 3}, fail=set())
    mine: tuple[frozenset[int], frozenset[int]] = (frozenset({1, 2, 3}), frozenset())
    g.joins = {1: (*mine, None), 2: (*mine, None)}  # type: ignore[dict-item]
    assert not g.consensus() and g.silent() == {3}
    g.joins[3] = (*mine, None)  # type: ignore[assignment]
    assert g.consensus()
    assert g.merge({4}, {3})
    assert not g.consensus()
    assert g.candidates() == [1, 2, 4]


def test_recovery_plan() -> None:
    old, other = RingId(1, 8), RingId(5, 8)
    entries = {
        1: CommitMember(1, old, aru=10, high_seq=14, high_delivered=9, received_flg=False),
        2: CommitMember(2, old, aru=12, high_seq=13, high_delivered=12, received_flg=False),
        5: CommitMember(5, other, aru=3, high_seq=3, high_delivered=3, received_flg=True),
    }
    plan = plan_recovery(1, old, entries)
    assert plan.trans == (1, 2)
    assert (plan.low_aru, plan.high_seq, plan.deliver_upto) == (10, 14, 12)
    # 11 is within node 2's aru only: node 2 alone re-sends it. 14 is within
    # nobody's aru: whoever holds it re-sends it.
    assert plan.responsible(11, 2, entries) and not plan.responsible(11, 1, entries)
    assert plan.responsible(14, 1, entries) and plan.responsible(14, 2, entries)
    # Issue 16, finding 4: with one liar possible, the two lowest claimants
    # re-send (node 2 alone claims 11: both holders do).
    assert plan.responsible(10, 1, entries, 1) and plan.responsible(10, 2, entries, 1)
    assert plan.responsible(11, 1, entries, 1) and plan.responsible(11, 2, entries, 1)


@pytest.mark.parametrize(("n", "q"), [(1, 1), (3, 2), (4, 3), (5, 4), (7, 5), (10, 7), (32, 22)])
def test_quorum_size(n: int, q: int) -> None:
    f = (n - 1) // 3
    assert quorum_size(n) == q == -(-(n + f + 1) // 2)
    # Two quorums intersect in at least f+1 nodes: a correct one.
    assert 2 * q - n >= f + 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"token_timeout_ms": 5},
        {"max_messages": 0},
        {"max_messages": 60, "window_size": 50},
        {"rtr_entries_max": 10_000},
        {"datagram_bytes_max": 70_000},
        {"receive_window_frames_max": 10},
        {"join_timeout_ms": 2000},
    ],
)
def test_config_rejects_out_of_range(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        EngineConfig(**kwargs)


def test_batch_capacity_leaves_room_for_headers() -> None:
    assert batch_capacity(1400) == 1400 - 27 - 20 - 16
