"""A membership round that cannot complete must not hold a correct node for
good (real engines, real keys): Byzantine soak seed 2098 (7 nodes,
``1:drop-commit 6:starve-successor``) in two deterministic pieces."""

from __future__ import annotations

import pytest

from ring_harness import Cluster, body_of
from ringward.engine.membership import State
from ringward.engine.reasons import Note
from ringward.wire import CommitToken, Token

pytestmark = pytest.mark.heavy  # seconds: real engines under a traced work budget

FORMED_S = 0.5  # the first ring of everyone is installed by then


def _drop_commits(c: Cluster, node: int, data: bytes) -> list[bytes]:
    late = c.now >= FORMED_S
    return [] if late and isinstance(body_of(data), CommitToken) else [data]


def test_failing_a_silent_representative_fails_nobody_else() -> None:
    """The representative (node 1) answers every join and never starts the
    commit. The first member whose consensus timer finds the agreement a
    full period old failed it, and in the same step failed every candidate
    whose last join did not match its new sets: all of them, since none had
    heard of the change yet (seed 2098 split 6 correct members into 4
    rings). The same happened a little later to members that had failed it
    on a join (0.8 of the period) without announcing it. Now failing the
    representative is announced at once with a fresh consensus period, and
    the four correct members form one ring first. (Node 1 goes on failing
    others in its joins, and fail sets are unioned on trust, SECURITY.md:
    rings of fewer may follow until it is evicted.)"""
    c = Cluster(5, tamper={1: _drop_commits})
    c.run(FORMED_S)
    assert all(c.regular_members(i) == c.roster for i in c.roster)
    seen = {i: len(c.views(i)) for i in c.roster}
    c.call(3, lambda: c.engines[3].enter_gather(c.now, reason="rekey"))
    e = c.engines[2]
    for _ in range(200):  # until node 2 sees everyone agree
        c.run(0.005)
        if e.gather is not None and e.gather.agreed is not None:
            break
    assert e.gather is not None and e.gather.agreed is not None
    # Node 2 alone now: its own timer, not a join, finds the wait over.
    c.down = {1, 3, 4, 5}
    for _ in range(200):  # until its timer fails someone
        c.run(0.01)
        if e.gather is None or e.gather.fail:
            break
    assert e.gather is not None, ("alone", c.regular_members(2))
    assert e.gather.fail == {1}, e.gather.fail
    c.down = set()
    c.run(4.0)
    correct = (2, 3, 4, 5)
    for i in correct:
        later = [v.members for v in c.views(i)[seen[i] :] if v.kind == "regular"]
        assert later and later[0] == correct, (i, later)
        assert c.regular_members(i) == correct, (i, later)
        assert c.engines[i].state is State.OPERATIONAL, i


def test_a_ring_that_keeps_dying_at_one_member_lets_go_of_it() -> None:
    """Node 2's tokens never reach its successor (``starve-successor``:
    harmless in a ring of three or more, where the others relay them; in a
    ring of two nobody does). Partitioned from the others, 1 and 2 fail them and form a
    pair whose token dies in recovery every time; the pair is never
    operational, so the fail set it kept never cleared, and node 1 stayed
    out of the others' ring after the partition healed. Now the second
    death at node 2 fails it: node 1 installs a ring and merges back."""
    heal_s = 3.0

    def lose(c: Cluster, src: int, dest: int, data: bytes) -> bool:
        if c.now < FORMED_S:
            return False
        body = body_of(data)
        if src == 2 and isinstance(body, Token) and dest == body.succ:
            return True
        return c.now < heal_s and (src <= 2) != (dest <= 2)

    c = Cluster(5, lose=lose)
    c.run(FORMED_S)
    assert all(c.regular_members(i) == c.roster for i in c.roster)
    c.run(heal_s - FORMED_S)
    assert c.engines[1].state is not State.OPERATIONAL  # the pair never completes
    c.run(6.0)
    e = c.engines[1]
    assert e.notes[Note.DIED_TWICE] >= 1
    assert e.state is State.OPERATIONAL
    members = c.regular_members(1)
    assert members is not None and {1, 3, 4, 5} <= set(members), members
    c.submit(1, b"back")
    c.run(2.0)
    for i in (1, 3, 4, 5):
        assert b"back" in c.delivered(i), i
