"""Fail claims are counted, never unioned (issue 16, finding 10).

Totem unions every fail set it hears, so one member listing a live node in
every join kept that node out of every ring (simulator ``fail-live``).
Each join now names its sender's own claims, and a node computes its fail
set from the claims it holds (engine/claims.py): a node still heard is
left out only on f+1 claimants, a node nobody lets us hear on one.
Driven here on a real engine (node 1 of 7, f = 2) with joins signed by the
simulator's keys, through ``receive``.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import sign_frame
from ringward.engine import Engine, EngineConfig
from ringward.engine.membership import State
from ringward.engine.validate import static_rule
from ringward.sim.keys import SimKeys
from ringward.wire import Frame, Join, RingId, decode, encode

ROSTER = (1, 2, 3, 4, 5, 6, 7)
KEYS = SimKeys(11, ROSTER)
RING = RingId(1, 8)


def engine() -> Engine:
    e = Engine(1, ROSTER, config=EngineConfig(), security=KEYS.security(1))
    e.state, e.ring, e.members, e.ring_seq_max = State.OPERATIONAL, RING, ROSTER, RING.seq
    e.now = 10.0
    e.enter_gather(e.now, reason="token_loss")
    return e


def join(
    sender: int, *, fail: tuple[int, ...] = (), claims: tuple[int, ...] = (), seq: int = 8
) -> bytes:
    body = Join(seq, ROSTER, fail, (), (), claims=claims)
    return encode(sign_frame(KEYS, sender, RING, body))


def hear_all(e: Engine, t: float, **odd: bytes) -> None:
    """A join of every other member (``odd``: some of them replaced)."""
    for n in ROSTER[1:]:
        e.receive(t, odd.get(f"n{n}", join(n)))


def test_one_claim_of_a_node_still_heard_leaves_it_in() -> None:
    e = engine()
    g = e.gather
    assert g is not None
    hear_all(e, 10.1, n7=join(7, fail=(3,), claims=(3,)))
    assert g.fail == set() and 3 in g.candidates()
    # Every other member agrees without the liar's claim: it is the one
    # whose sets disagree, and our consensus timer claims it.
    e.tick(10.1 + EngineConfig().consensus_timeout_ms / 1000)
    assert 7 in g.claims and 3 not in g.claims


def test_f_liars_leave_no_node_out_and_f_plus_one_claimants_do() -> None:
    e = engine()
    g = e.gather
    assert g is not None
    liars = {"n6": join(6, fail=(3,), claims=(3,)), "n7": join(7, fail=(3,), claims=(3,))}
    hear_all(e, 10.1, **liars)
    assert g.fail == set()  # f = 2 claimants
    e.receive(10.2, join(5, fail=(3,), claims=(3,)))
    assert g.fail == {3}  # f + 1


def test_a_fail_set_without_a_claim_is_not_taken() -> None:
    e = engine()
    g = e.gather
    assert g is not None
    hear_all(e, 10.1, n7=join(7, fail=(2, 3, 4)))
    assert g.fail == set()


def test_one_claim_of_a_node_nobody_lets_us_hear_leaves_it_out() -> None:
    """A crash or a partition: whoever is left sees the node as Totem does,
    on one claim, and once the node speaks again it is back in."""
    e = engine()
    g = e.gather
    assert g is not None
    for n in (2, 4, 5, 6, 7):
        e.receive(10.1, join(n, fail=(3,), claims=(3,)) if n == 2 else join(n))
    assert g.fail == {3}
    e.receive(10.2, join(3))
    assert g.fail == set()


def test_a_node_left_out_by_f_plus_one_claims_parts_ways() -> None:
    e = engine()
    g = e.gather
    assert g is not None
    claim_us = {f"n{n}": join(n, fail=(1,), claims=(1,)) for n in (5, 6, 7)}
    hear_all(e, 10.1, **claim_us)
    assert g.fail == {5, 6, 7}
    assert 1 not in g.fail


def test_a_member_leaving_out_a_node_we_hear_gets_its_join() -> None:
    """Node 7 cannot hear node 3 (a lost direction, or node 3 silent to it
    alone): whoever hears node 3 sends node 7 node 3's latest join."""
    e = engine()
    for n in (2, 3, 4, 5, 7):  # node 6 not yet: no consensus
        e.receive(10.1, join(n))
    e.ready()
    e.receive(10.2, join(7, fail=(3,), claims=(3,)))
    sent = [d for d in e.ready().datagrams if d.dest == 7]
    assert [decode(d.data).sender for d in sent] == [3]
    # At most once per join timeout per pair.
    e.receive(10.21, join(7, fail=(3,), claims=(3, 4)))
    assert not [d for d in e.ready().datagrams if d.dest == 7 and decode(d.data).sender == 3]


def _frame(sender: int, proc: tuple[int, ...], claims: tuple[int, ...]) -> Frame:
    return sign_frame(KEYS, sender, RING, Join(8, proc, (), (), (), claims=claims))


def test_a_claim_of_a_node_not_proposed_or_of_itself_breaks_a_rule() -> None:
    cfg = EngineConfig()
    assert static_rule(_frame(2, (1, 2, 3), (3,)), cfg) is None
    assert static_rule(_frame(2, (1, 2), (3,)), cfg) == "join_claims"
    assert static_rule(_frame(2, (1, 2, 3), (2,)), cfg) == "join_claims"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(ROSTER[1:]), st.sets(st.sampled_from(ROSTER[1:]))),
        min_size=1,
        max_size=12,
    )
)
def test_the_fail_set_depends_on_the_claims_held_not_on_their_order(
    claims: list[tuple[int, set[int]]],
) -> None:
    """Members holding the same joins compute the same fail set, whatever
    order the joins came in (nobody copies another's fail set)."""
    latest: dict[int, set[int]] = {}
    raws = []
    for sender, more in claims:
        latest[sender] = (latest.get(sender, set()) | more) - {sender}
        raws.append(join(sender, claims=tuple(sorted(latest[sender]))))
    results = []
    for order in (raws, raws[::-1]):
        e = engine()
        hear_all(e, 10.05)
        for raw in order:
            e.receive(10.1, raw)
        for raw in raws:
            e.receive(10.1, raw)  # the latest of each sender last, in both
        g = e.gather
        if e.state is not State.GATHER or g is None:
            return  # a round formed: another story
        results.append(set(g.fail))
    assert results[0] == results[1]
