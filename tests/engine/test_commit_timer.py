"""A commit round gives up a token timeout after its last progress
(recovery.observe_commit), and only progress of the round itself counts.

Byzantine soak seed 80417: timed from each member's own forward, a round
slowed upstream was given up before the members waiting in GATHER could
blame the member that stopped it. Observed hops re-arm the round's timer
now; a forward whose certificate names other members (unchecked there: a
member of our ring can sign one at any hop it likes) re-arms nothing, or
one liar could hold a round open for up to two hops per roster node."""

from __future__ import annotations

from ringward.engine import Engine, EngineConfig
from ringward.engine.membership import State
from ringward.engine.recovery import observe_commit
from ringward.engine.ringstore import RingMembers
from ringward.sim.keys import SimKeys
from ringward.wire import CommitToken, Frame, RingId

ROSTER = (1, 2, 3, 4, 5, 6)
KEYS = SimKeys(3, ROSTER)
RING = RingId(1, 8)
MEMBERS = (1, 2, 3, 4)
KEY_COMMIT = bytes(32)


def committing() -> Engine:
    e = Engine(1, ROSTER, config=EngineConfig(), security=KEYS.security(1))
    e.state, e.pending, e.now = State.COMMIT, RingMembers(RING, MEMBERS), 10.0
    e.set_timer("token_loss", e.timing.token_timeout_s)
    return e


def _observe(e: Engine, at: float, sender: int, hop: int, members: tuple[int, ...]) -> None:
    e.now = at
    ct = CommitToken(hop, (), (), KEY_COMMIT, ())
    # The frame as received (its signature was checked on the way in).
    observe_commit(e, Frame(bytes(8), sender, RING, ct), ct, members, b"raw")


def test_a_hop_of_the_round_re_arms_its_timeout() -> None:
    e = committing()
    _observe(e, 10.5, 3, 3, MEMBERS)  # node 3 forwards hop 3 (its turn)
    assert e.timer_due("token_loss") == 10.5 + e.timing.token_timeout_s


def test_a_hop_under_other_members_re_arms_nothing() -> None:
    e = committing()
    due = e.timer_due("token_loss")
    # Node 4 of our ring signs a forward of our ring whose certificate lists
    # six members: hop 4 is its turn there too, but not of our round.
    _observe(e, 10.9, 4, 4, (1, 2, 3, 4, 5, 6))
    assert e.timer_due("token_loss") == due
