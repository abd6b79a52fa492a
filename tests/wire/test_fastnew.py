"""The per-message fast constructors (ringward.wire.fastnew) make exactly
what each class's own ``__init__`` makes, and the object stays frozen."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ringward.engine import Engine, EngineConfig, delivery
from ringward.engine.api import Delivered, MessageId
from ringward.runtime import appevents
from ringward.runtime.events import Delivered as AppDelivered
from ringward.wire.batch import BatchEntry, new_entry

ints = st.integers(min_value=0, max_value=2**64 - 1)


@given(ints, st.integers(0, 9), st.integers(1, 10), st.booleans(), st.binary(), st.booleans())
def test_new_entry_is_the_constructor(
    msg_no: int, index: int, count: int, safe: bool, payload: bytes, recovered: bool
) -> None:
    fast = new_entry(msg_no, index, count, safe, payload, recovered)
    slow = BatchEntry(msg_no, index, count, safe, payload, recovered)
    assert type(fast) is BatchEntry and fast == slow and hash(fast) == hash(slow)
    assert dataclasses.astuple(fast) == dataclasses.astuple(slow)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.payload = b"changed"  # type: ignore[misc]


@given(st.text(max_size=8), ints, st.integers(1, 256), ints, st.binary(), st.booleans())
def test_deliveries_are_the_constructors(
    view: str, seq: int, sender: int, msg_no: int, payload: bytes, safe: bool
) -> None:
    """The engine's deliveries (named tuples built through tuple.__new__) and
    the application's events built from them (through the slots)."""
    engine = Engine(1, (1, 2), config=EngineConfig())
    entry = new_entry(msg_no, 0, 1, safe, payload, False)
    delivery.deliver_entries(engine, view, seq, sender, (entry,))
    (fast,) = engine.ready().events
    msg_id = MessageId(sender, msg_no)
    assert type(fast) is Delivered and type(fast.msg_id) is MessageId
    assert fast == Delivered(view, seq, msg_id, payload, safe) and fast.sender == sender
    app = appevents.delivered(fast, {sender: "n"})
    expected = AppDelivered(sender, payload, seq, safe, view, msg_id, "n")
    assert type(app) is AppDelivered and app == expected
    with pytest.raises(dataclasses.FrozenInstanceError):
        app.seq = 0  # type: ignore[misc]
