"""A signature proves who said something, never that it is true.

Regression tests for issue 14's findings 1-4, each on real engines with real
keys (tests/ring_harness.py): one member signs impossible integers with its
own genuine key. Before the validator (engine/validate.py) each of these
crashed, hung or burnt every correct node; now the liar is convicted by its
own statement, and the ring goes on without it. Every engine call runs under
a counted work budget, so a hang fails in milliseconds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from ring_harness import Cluster
from ringward.engine import EngineConfig
from ringward.engine.api import Delivered
from ringward.engine.membership import State
from ringward.engine.validate import RING_SEQ_LIMIT
from ringward.wire import CommitMember, CommitToken, Join, Token, TokenRequest, decode

U64_MAX = (1 << 64) - 1
CORRECT = (1, 2, 3)
LIAR = 4

pytestmark = pytest.mark.heavy  # seconds each: real engines under a traced work budget


def formed(n: int = 4, **kw: object) -> Cluster:
    c = Cluster(n, **kw)  # type: ignore[arg-type]
    c.run(0.6)
    for i in c.roster:
        assert c.regular_members(i) == c.roster, i
    return c


def still_delivers(c: Cluster, nodes: tuple[int, ...] = CORRECT) -> None:
    """The correct nodes share a ring without the liar and deliver."""
    c.run(2.5)
    for i in nodes:
        assert c.engines[i].state is State.OPERATIONAL, i
        assert c.regular_members(i) == nodes, (i, c.regular_members(i))
    c.submit(nodes[0], b"after the lie")
    c.run(1.0)
    for i in nodes:
        assert b"after the lie" in c.delivered(i), i


def convicted_by_proof(c: Cluster, liar: int = LIAR, nodes: tuple[int, ...] = CORRECT) -> None:
    for i in nodes:
        assert any(ev.target == liar and ev.proof for ev in c.evictions(i)), (i, c.evictions(i))


# ------------------------------------------------------------ finding 1


@pytest.mark.parametrize("ring_seq", [U64_MAX, U64_MAX - 3, RING_SEQ_LIMIT + 1])
def test_an_impossible_join_ring_seq_convicts_its_signer(ring_seq: int) -> None:
    """A join with ring_seq 2^64-1 was adopted by every node; the next
    representative's +4 raised OverflowError out of receive, and every node
    had persisted the value, so the cluster stayed dead."""
    c = formed()
    ring = c.engines[LIAR].ring
    assert ring is not None
    c.broadcast(LIAR, c.sign(LIAR, ring, Join(ring_seq, c.roster, (), (), ())))
    still_delivers(c)
    convicted_by_proof(c)
    for i in CORRECT:
        assert c.engines[i].ring_seq_max <= RING_SEQ_LIMIT


def test_a_far_ring_seq_jump_is_not_adopted() -> None:
    """Not impossible in itself (a node away for long may be far ahead),
    but beyond what anyone could have reached since we last heard: not
    adopted, so one liar cannot walk the cluster to the end of the space."""
    c = formed()
    ring = c.engines[LIAR].ring
    assert ring is not None
    before = c.engines[1].ring_seq_max
    c.broadcast(LIAR, c.sign(LIAR, ring, Join(before + (1 << 40), c.roster, (), (), ())))
    c.run(1.5)
    for i in CORRECT:
        assert c.engines[i].ring_seq_max < before + (1 << 33)
        assert c.engines[i].drops["invalid:ring_seq_jump"] >= 1


# ------------------------------------------------------------ finding 2


def _far_hop(jump: int) -> object:
    done: list[bool] = []

    def tamper(c: Cluster, node: int, data: bytes) -> list[bytes]:
        frame = decode(data)
        if done or c.now < 0.7 or not isinstance(frame.body, Token) or frame.sender != node:
            return [data]
        done.append(True)
        tk = dataclasses.replace(frame.body, hop=frame.body.hop + jump)
        return [c.sign(node, frame.ring, tk)]

    return tamper


@pytest.mark.parametrize("jump", [1 << 62, U64_MAX // 2, 10_000_000, 4, 8])
def test_a_far_hop_token_is_proven_not_walked(jump: int) -> None:
    """A token for the member's own turn, the right successor, and a hop
    near 2^62 made every member loop over each skipped hop. One or two
    turns ahead (4, 8 on 4 nodes) it was visited by the successor and
    forked the chain (issue 16 finding 5): no token passes a member's own
    next turn (validate._hop_ahead)."""
    c = formed(tamper={LIAR: _far_hop(jump)})
    still_delivers(c)
    convicted_by_proof(c)


def test_a_next_turn_token_for_the_successor_alone_forks_nothing() -> None:
    """Issue 16 finding 5: the member sends its real token to everyone and
    its successor, besides, a version for its own next turn. Visited, it
    started a second chain whose seqs overlapped the first's. It is dropped
    and convicts its maker; every correct node delivers every message, in
    one order."""
    succ = 1

    def fork(c: Cluster, node: int, data: bytes) -> list[bytes]:
        frame = decode(data)
        tk = frame.body
        if c.now >= 0.7 and isinstance(tk, Token) and frame.sender == node:
            c.broadcast(
                node, c.sign(node, frame.ring, dataclasses.replace(tk, hop=tk.hop + 4)), (succ,)
            )
        return [data]

    c = formed(tamper={LIAR: fork})
    sent = []
    for k in range(10):
        for i in CORRECT:
            sent.append(f"m{i}-{k}".encode())
            c.submit(i, sent[-1])
        c.run(0.05)
    still_delivers(c)
    convicted_by_proof(c)
    first = c.delivered(CORRECT[0])
    for i in CORRECT:
        assert c.delivered(i) == first, i
        assert not [m for m in sent if m not in c.delivered(i)], i


@pytest.mark.parametrize("jump", [1 << 62, 10_000_000])
def test_a_far_first_hop_of_a_ring_convicts_the_representative(jump: int) -> None:
    """The first token of a ring has no predecessor anyone holds, so a far
    hop there was refused as unprovable and its maker, the representative,
    was only ever evicted by accusation (Byzantine soak seed 2033). It names
    the ring's start as its predecessor: only hop 1 can."""
    rep = 1

    def tamper(c: Cluster, node: int, data: bytes) -> list[bytes]:
        frame = decode(data)
        tk = frame.body
        if c.now < 0.6 or not isinstance(tk, Token) or frame.sender != node or tk.hop != 1:
            return [data]
        return [c.sign(node, frame.ring, dataclasses.replace(tk, hop=1 + jump))]

    c = formed(tamper={rep: tamper})
    c.call(2, lambda: c.engines[2].enter_gather(c.now, reason="rekey"))
    others = (2, 3, 4)
    still_delivers(c, others)
    convicted_by_proof(c, rep, others)


# ------------------------------------------------------------ finding 3


def _commit_lie(**lie: int) -> Any:
    """The liar's own commit entry, each field in ``lie`` moved by a positive
    value or set to minus a negative one."""

    def move(mine: CommitMember) -> CommitMember:
        values: dict[str, Any] = {
            k: (getattr(mine, k) + v if v > 0 else -v) for k, v in lie.items()
        }
        return dataclasses.replace(mine, **values)

    return _commit_rewrite(move)


def _commit_rewrite(rewrite: Callable[[CommitMember], CommitMember]) -> Any:
    """The liar's own commit entry, as ``rewrite`` makes it."""

    def tamper(c: Cluster, node: int, data: bytes) -> list[bytes]:
        frame = decode(data)
        ct = frame.body
        if c.now < 0.6 or not isinstance(ct, CommitToken) or not ct.members:
            return [data]
        if ct.members[-1].node != node or ct.hop != len(ct.members):
            return [data]
        entry = rewrite(ct.members[-1])
        # The liar stands by its lie (its own engine would refuse a commit
        # that does not carry the entry it made).
        c.engines[node].my_entry = entry
        ct = dataclasses.replace(ct, members=(*ct.members[:-1], entry))
        return [c.sign(node, frame.ring, ct)]

    return tamper


@pytest.mark.parametrize(
    "lie",
    [
        {"high_seq": -U64_MAX},  # negative: an absolute value
        {"high_seq": 5_000_000},  # positive: added to the real value
        {"high_delivered": 5_000_000},
        {"aru": 5_000_000},
    ],
)
def test_an_impossible_commit_entry_convicts_its_signer(lie: dict[str, int]) -> None:
    """A commit entry claiming high_seq = 2^64-1 made every member of the old
    ring loop over range(low_aru+1, high_seq+1)."""
    c = formed(tamper={LIAR: _commit_lie(**lie)})
    c.submit(1, b"before")
    c.run(0.5)
    c.call(1, lambda: c.engines[1].enter_gather(c.now, reason="rekey"))
    still_delivers(c)
    convicted_by_proof(c)


def test_a_consistent_but_huge_commit_claim_costs_no_work() -> None:
    """aru = high_seq = 10^12 breaks no rule the entry alone can show; the
    recovery plan still works only over frames actually held."""
    c = formed(tamper={LIAR: _commit_lie(aru=-(10**12), high_seq=-(10**12))})
    c.submit(1, b"before")
    c.run(0.5)
    c.call(1, lambda: c.engines[1].enter_gather(c.now, reason="rekey"))
    still_delivers(c, c.roster)


# ------------------------------------------------------------ finding 4


@pytest.mark.parametrize("node", [1, 2, 3])
def test_self_conviction_in_the_visit_that_ends_recovery(node: int) -> None:
    """A node convicted of overload on its own report during the visit that
    completes recovery reached an assert in recovery.finish."""
    c = Cluster(3, config=EngineConfig(overload_reports=2))
    c.engines[node].note_receive_queue(10**6)
    c.run(3.0)
    assert c.rejected(node), node
    others = tuple(i for i in c.roster if i != node)
    for i in others:
        assert c.regular_members(i) == others, i


def test_harness_budget_is_generous_for_correct_work() -> None:
    """The counted budget is far above what a correct busy call needs."""
    c = formed()
    for k in range(200):
        c.submit(1 + k % 4, b"x" * 200)
    c.run(1.0)
    assert 0 < c.max_lines < c.budget // 5  # type: ignore[operator]


# ------------------------------------------------------------ finding 6


def test_a_replayed_token_request_is_answered_once() -> None:
    """Each copy of a recorded TOKEN_REQUEST used to be answered (2x
    amplification for anyone replaying them)."""
    c = formed()
    e1 = c.engines[1]
    ring = e1.ring
    assert ring is not None
    hop = max(h for h, (_, f) in e1.detector.tokens.raw_at.items() if f.sender == 1)
    request = c.sign(2, ring, TokenRequest(hop))
    answers = 0
    for _ in range(5):
        c.call(1, lambda: e1.receive(c.now, request))
        answers += sum(1 for out in e1.ready().datagrams if out.dest == 2)
    assert answers == 1
    assert e1.drops["token_request_repeat"] == 4
    # A genuine re-ask, a period later, is answered again.
    c.now += e1.config.token_retransmit_ms / 1000
    c.call(1, lambda: e1.receive(c.now, request))
    assert sum(1 for out in e1.ready().datagrams if out.dest == 2) == 1


def test_another_members_commit_entry_altered_on_the_way() -> None:
    """A forwarder changed the representative's entry (its old ring seq 4 ->
    5, no rule broken on its own): the representative planned recovery on
    it and installed a transitional view without itself (G6). Its own entry
    is its own statement: altered, the commit is not acted on."""

    def tamper(c: Cluster, node: int, data: bytes) -> list[bytes]:
        frame = decode(data)
        ct = frame.body
        if c.now < 0.6 or not isinstance(ct, CommitToken) or ct.hop != len(ct.members):
            return [data]
        first = ct.members[0]
        bumped = dataclasses.replace(
            first, old_ring=dataclasses.replace(first.old_ring, seq=first.old_ring.seq + 1)
        )
        return [
            c.sign(node, frame.ring, dataclasses.replace(ct, members=(bumped, *ct.members[1:])))
        ]

    c = formed(tamper={LIAR: tamper})
    c.call(1, lambda: c.engines[1].enter_gather(c.now, reason="rekey"))
    c.run(1.5)
    for i in CORRECT:
        for v in c.views(i):
            assert i in v.members, (i, v)
    assert c.engines[1].drops["commit_entry_altered"] >= 1


# -------------------------------- found by fuzz/fuzz_member.py and the property


def _token_lie(**change: object) -> object:
    done: list[bool] = []

    def tamper(c: Cluster, node: int, data: bytes) -> list[bytes]:
        frame = decode(data)
        if done or c.now < 0.7 or not isinstance(frame.body, Token) or frame.sender != node:
            return [data]
        done.append(True)
        values: dict[str, Any] = {
            k: (v(frame.body) if callable(v) else v) for k, v in change.items()
        }
        return [c.sign(node, frame.ring, dataclasses.replace(frame.body, **values))]

    return tamper


@pytest.mark.parametrize("jump", [1 << 40, U64_MAX])
def test_a_far_token_seq_is_judged_without_building_its_range(jump: int) -> None:
    """The frames rule compared the listed seqs with list(range(prev.seq+1,
    tk.seq+1)): 2^31 ints for seq + 2^31, OverflowError past 2^63."""
    lie = _token_lie(seq=lambda tk: min(tk.seq + jump, U64_MAX))
    c = formed(tamper={LIAR: lie})
    still_delivers(c)
    convicted_by_proof(c)


def test_a_token_behind_our_aru_is_not_visited() -> None:
    """seq 0 below the aru, prev linking to nothing: the successor visited it
    and its new frame's seq was refused by its own store (KeyError)."""
    c = formed(tamper={LIAR: _token_lie(seq=0, aru=0, prev=bytes(32))})
    for k in range(40):
        c.submit(1 + k % 3, b"busy")
    c.run(1.0)
    assert c.engines[1].drops["invalid:seq_behind"] >= 1
    still_delivers(c, c.roster)  # one unprovable lie: dropped, not evicted


def test_every_commit_entry_moved_to_another_old_ring() -> None:
    """A forwarder rewrote every entry's old ring: the next member found no
    member of its own old ring (ValueError in plan_recovery)."""

    def tamper(c: Cluster, node: int, data: bytes) -> list[bytes]:
        frame = decode(data)
        ct = frame.body
        if c.now < 0.6 or not isinstance(ct, CommitToken) or ct.hop != len(ct.members):
            return [data]
        moved = tuple(
            dataclasses.replace(e, old_ring=dataclasses.replace(e.old_ring, seq=e.old_ring.seq + 1))
            for e in ct.members
        )
        return [c.sign(node, frame.ring, dataclasses.replace(ct, members=moved))]

    c = formed(tamper={LIAR: tamper})
    c.call(3, lambda: c.engines[3].enter_gather(c.now, reason="rekey"))
    c.run(1.5)
    for i in CORRECT:
        assert all(i in v.members for v in c.views(i)), i


def test_join_sets_outside_the_roster_are_refused() -> None:
    """Ids outside the roster were unioned into the gather sets; 508 of them
    made our own next join unencodable (WireError out of receive)."""
    c = formed()
    ring = c.engines[LIAR].ring
    assert ring is not None
    for start in (100, 1000):
        proc = (*c.roster, *range(start, start + 252))
        c.broadcast(LIAR, c.sign(LIAR, ring, Join(ring.seq, proc, (), (), ())))
    c.run(1.0)
    for i in CORRECT:
        e = c.engines[i]
        assert e.drops["invalid:join_unknown_node"] == 2
        assert e.gather is None or e.gather.proc <= set(c.roster)


# ------------------------------------------ issue 16, finding 4 (second half)


def test_a_high_delivered_claim_does_not_make_a_frame_safe() -> None:
    """A member cut off before it received a safe message never signed an
    aru covering it, so the message was not safe in the old ring; the liar's
    commit entry claiming it delivered everything it holds raised the cut-off
    of recovery's regular-view deliveries, and the survivors delivered the
    message as safe in the old regular view (G5: a correct member of that
    view never delivers it)."""

    lie = _commit_rewrite(lambda mine: dataclasses.replace(mine, high_delivered=mine.aru))
    c = formed(tamper={LIAR: lie})
    old_view = c.views(1)[-1].view
    c.down.add(3)
    c.submit(1, b"safe, not in 3", safe=True)
    c.run(3.0)
    for i in (1, 2):
        assert c.regular_members(i) == (1, 2, LIAR), (i, c.views(i))
        homes = [
            e.view
            for e in c.events[i]
            if isinstance(e, Delivered) and e.payload == b"safe, not in 3"
        ]
        assert len(homes) == 1 and homes[0] != old_view, (i, homes, old_view)
