"""A successor can show the version its token linked to for as long as a
member may ask for it (issue 16, finding 7).

A member that signs one version of its token for its successor and another
for everyone else leaves the others holding a version the successor's token
does not name: they ask for the named one, and only the successor (and the
equivocator) has it. A successor that had forgotten it was accused of
``broken_link`` for its predecessor's equivocation: it kept those versions
for two token timeouts, and a member whose chain waited for a lost token
asks later than that.
"""

from __future__ import annotations

import pytest

from ring_harness import Cluster
from ringward.wire import Token, TokenRequest, decode

pytestmark = pytest.mark.heavy  # real engines, about a second of ring time


def test_a_successor_answers_for_the_version_it_linked_to_long_after() -> None:
    c = Cluster(4)
    c.run(0.6)
    e2 = c.engines[2]
    ring = e2.ring
    assert ring is not None
    linked = {h: decode(raw) for h, raw in e2.tokens.links.linked_to.items()}
    hop = max(h for h, f in linked.items() if f.sender == 1)
    c.run(4 * c.config.token_timeout_ms / 1000)  # several rotations, past raw_at
    assert hop not in e2.detector.tokens.raw_at
    request = c.sign(3, ring, TokenRequest(hop))
    c.call(2, lambda: e2.receive(c.now, request))
    answers = [decode(o.data) for o in e2.ready().datagrams if o.dest == 3]
    assert [(f.sender, f.body.hop) for f in answers if isinstance(f.body, Token)] == [(1, hop)]
