"""Monotonic rings: a node never enters the commit or recovery of a ring
twice (issue 16, finding 6).

A network attacker recorded a ring's commit tokens and tokens, cut one
member off during the ring's recovery so that it timed out to gather, and
replayed them to it. A commit was stale only against the *installed* ring,
so the member entered the same ring again: it re-opened the same group key,
restarted its DATA counter at 0 and sealed its recovery frames again under
(key, nonce) pairs it had used already (AES-GCM nonce reuse, no key needed),
and it signed the token of its turn again with other content, so every
member that saw both evicted it for equivocation (300 s). A member can do
the same to a correct node by re-sending that node's commits and tokens.

Driven here on real engines with real keys (ring_harness.Cluster), every
seal logged by (data key, nonce) (nonce_log.py): node 3 holds an old-ring
frame the others lack, so recovery of the next ring makes it seal one.
"""

from __future__ import annotations

from collections.abc import Callable

from nonce_log import RecordingSecurity, SealLog
from ring_harness import LATENCY_S, Cluster
from ringward.engine import Engine
from ringward.engine.api import Ready
from ringward.engine.membership import State
from ringward.engine.reasons import Drop
from ringward.wire import CommitToken, Kind, RingId, Token, decode, encode

VICTIM = 3


class DiskEngine(Engine):
    """An engine whose driver keeps ``Ready.persist_ring_seq`` on disk."""

    disk = 0

    def ready(self) -> Ready:
        out = super().ready()
        if out.persist_ring_seq is not None:
            self.disk = out.persist_ring_seq
        return out


class Net(Cluster):
    """A cluster whose engines log every seal, with a network attacker: it
    can keep a node's DATA from the others (``hide``), cut nodes off
    (``cut``) and deliver recorded datagrams (``inject``)."""

    def __init__(self) -> None:
        super().__init__(4, budget=None)
        self.log = SealLog()
        self.hide: set[int] = set()
        self.cut: set[int] = set()
        self.engines = {i: self.make(i) for i in self.roster}

    def make(self, node: int, incarnation: int = 0, ring_seq: int = 0) -> Engine:
        security = RecordingSecurity(self.keys, node, self.log, incarnation)
        return DiskEngine(
            node,
            self.roster,
            config=self.config,
            incarnation=incarnation,
            ring_seq=ring_seq,
            now=self.now,
            security=security,
        )

    def broadcast(self, src: int, data: bytes, dests: tuple[int, ...] | None = None) -> None:
        if src in self.hide and decode(data).kind is Kind.DATA:
            return
        for dest in dests or self.roster:
            if dest != src and not {src, dest} & self.cut:
                self._queue.append((self.now + LATENCY_S, src, dest, data))

    def inject(self, dest: int, data: bytes) -> None:
        self._queue.append((self.now + LATENCY_S, 0, dest, data))

    def run_until(self, done: Callable[[], bool], limit_s: float = 3.0) -> None:
        end = self.now + limit_s
        while not done():
            assert self.now < end, "never happened"
            self.run(0.001)

    def recorded(self, kind: Kind, ring: RingId) -> list[bytes]:
        """What was sent of ``kind`` in ``ring``, in order, without copies."""
        out: list[bytes] = []
        for _, data in self.sent:
            frame = decode(data)
            if frame.kind is kind and frame.ring == ring and data not in out:
                out.append(data)
        return out

    def tokens_of(self, node: int, ring: RingId) -> dict[int, set[bytes]]:
        """hop -> every token of ``ring`` that ``node`` signed for it."""
        out: dict[int, set[bytes]] = {}
        for src, data in self.sent:
            frame = decode(data)
            if src == node and isinstance(frame.body, Token) and frame.ring == ring:
                out.setdefault(frame.body.hop, set()).add(data)
        return out


def commit_dest(data: bytes) -> int:
    ct = decode(data).body
    assert isinstance(ct, CommitToken)
    members = sorted(j.sender for j in ct.cert)
    return members[ct.hop % len(members)]


def into_recovery() -> tuple[Net, RingId]:
    """A ring of 4 whose next ring (R) is in recovery, node 3 having sealed
    its old-ring frame there (its DATA was kept from the others); node 3
    is then cut off. Returns the cluster and R."""
    c = Net()
    c.run(2.0)
    assert all(e.state is State.OPERATIONAL for e in c.engines.values())
    c.hide.add(VICTIM)
    c.submit(VICTIM, b"only node 3 holds this")
    c.run(0.1)
    c.engines[1].enter_gather(c.now, reason="test")
    victim = c.engines[VICTIM]
    c.run_until(lambda: victim.state is State.RECOVERY and victim.data_counter > 0)
    assert victim.pending is not None
    ring = victim.pending.ring
    c.cut.add(VICTIM)
    return c, ring


def test_a_node_cut_off_during_recovery_does_not_reenter_the_ring_on_replay() -> None:
    c, ring = into_recovery()
    victim = c.engines[VICTIM]
    c.run_until(lambda: victim.state is State.GATHER)
    counter, sealed = victim.data_counter, len(c.log)
    # The attacker replays every commit token and token of the ring to it.
    replayed = c.recorded(Kind.COMMIT, ring) + c.recorded(Kind.TOKEN, ring)
    for data in replayed:
        c.inject(VICTIM, data)
        c.run(0.002)
    assert victim.state is State.GATHER
    assert victim.pending is None or victim.pending.ring != ring
    assert victim.data_counter == counter
    assert len(c.log) == sealed and c.log.repeats() == []
    assert victim.drops[Drop.COMMIT_REENTRY] > 0
    assert all(len(raws) == 1 for raws in c.tokens_of(VICTIM, ring).values())


def test_replaying_a_failed_rings_traffic_to_every_member_evicts_nobody() -> None:
    """After the ring failed everywhere, the attacker replays its commits to
    their holders and its tokens to everyone: nobody enters it again, no
    correct member is convicted, and the members form a new ring."""
    c, ring = into_recovery()
    c.run_until(lambda: all(e.state is State.GATHER for e in c.engines.values()))
    c.cut.clear()
    c.hide.clear()
    for data in c.recorded(Kind.COMMIT, ring):
        c.inject(commit_dest(data), data)
        c.run(0.001)
    for data in c.recorded(Kind.TOKEN, ring):
        for dest in c.roster:
            if dest != decode(data).sender:
                c.inject(dest, data)
        c.run(0.001)
    c.run(3.0)
    assert c.log.repeats() == []
    for node in c.roster:
        assert c.evictions(node) == [] and c.rejected(node) == []
        assert not c.engines[node].detector.verdicts
        assert all(len(raws) == 1 for raws in c.tokens_of(node, ring).values())
    rings = {e.ring for e in c.engines.values()}
    assert len(rings) == 1 and all(e.state is State.OPERATIONAL for e in c.engines.values())
    (new,) = rings
    assert new is not None and new.seq > ring.seq


def test_a_restarted_node_does_not_reenter_a_ring_it_entered_before_the_restart() -> None:
    """Node 3, cut off, crashes in the ring's recovery and restarts with the
    ring seq it persisted. The attacker replays the ring's joins (so that
    its sets match the certificate again) and its commits: it must not
    enter the ring, nor open its key, again."""
    c, ring = into_recovery()
    victim = c.engines[VICTIM]
    assert isinstance(victim, DiskEngine)
    # Persisted before anything of the ring was sent or sealed.
    assert victim.disk >= ring.seq
    restarted = c.make(VICTIM, incarnation=1, ring_seq=victim.disk)
    c.engines[VICTIM] = restarted
    commits = c.recorded(Kind.COMMIT, ring)
    first = decode(commits[0]).body
    assert isinstance(first, CommitToken)
    for join in first.cert:
        if join.sender != VICTIM:
            c.inject(VICTIM, encode(join))
    c.run(0.01)
    g = restarted.gather
    assert g is not None and g.proc == {1, 2, 3, 4} and not g.fail
    for data in commits:
        if commit_dest(data) == VICTIM:
            c.inject(VICTIM, data)
            c.run(0.002)
    assert restarted.state is State.GATHER
    assert restarted.pending is None
    assert restarted.drops[Drop.COMMIT_REENTRY] > 0
    assert c.log.repeats() == []
