"""A liar's joins lift one correct node's ring seq past what the others
accept (SECURITY.md, "A ring seq pushed ahead at one node only"): open.

The jump bound (``validate.RING_SEQ_JUMP_MAX``) is relative to what the
receiver knows, and a liar's joins raise that: two joins 2^32 apart sent to
one node before it signs anything take it 2^33 above everyone else, whose
validators then refuse its joins for good (the seq is persisted)."""

from __future__ import annotations

import pytest

from helpers import sign_frame
from ringward.engine import Engine, EngineConfig
from ringward.engine.validate import RING_SEQ_JUMP_MAX
from ringward.sim.keys import SimKeys
from ringward.wire import Join, RingId, encode

ROSTER = (1, 2, 3, 4)
KEYS = SimKeys(11, ROSTER)
LIAR, VICTIM, OTHER = 2, 3, 1


@pytest.mark.xfail(strict=True, reason="issue 16: a ring seq pushed ahead at one node only")
def test_joins_sent_to_one_node_do_not_cut_it_off_from_the_others() -> None:
    victim = Engine(VICTIM, ROSTER, config=EngineConfig(), security=KEYS.security(VICTIM))
    other = Engine(OTHER, ROSTER, config=EngineConfig(), security=KEYS.security(OTHER))
    victim.ready()
    other.ready()
    for step in (1, 2):
        lie = Join(RING_SEQ_JUMP_MAX * step, (LIAR, VICTIM), (), (), ())
        victim.receive(0.01 * step, encode(sign_frame(KEYS, LIAR, RingId(LIAR, 0), lie)))
        victim.ready()
    victim.send_join()
    for datagram in victim.ready().datagrams:
        other.receive(0.05, datagram.data)
    assert not other.drops.get("invalid:ring_seq_jump")
