"""Behaviours that abuse membership: restarts and lies in joins and commits.

``join-churn`` and ``join-phantom`` restart membership after every install
(an accusation must follow); the value liars (``poison-ring-seq``,
``commit-lie``) restart it once (``RestartOnce``) so that they have joins
and a commit entry to lie in, then sign impossible or unprovable numbers.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from typing import TYPE_CHECKING

from ringward.byzantine._base import U64_MAX, Behaviour, SwapCache, decoded
from ringward.engine import Outgoing, State
from ringward.wire import (
    CommitMember,
    CommitToken,
    FrameRef,
    Join,
    LoadReport,
    RingId,
    SealedKey,
    Token,
)

if TYPE_CHECKING:
    from ringward.byzantine.engine import ByzantineEngine

__all__ = [
    "AlterCert",
    "AlterCommit",
    "AlterKeyNext",
    "BadKeyNext",
    "CommitLie",
    "CommitLieJump",
    "DropCommit",
    "FloodRecovery",
    "FloodRecoveryRepeat",
    "JoinChurn",
    "JoinPhantom",
    "PoisonRingSeq",
    "PoisonRingSeqJump",
    "RecoverFork",
    "RestartOnce",
    "StarveCommit",
]


class JoinChurn(Behaviour):
    """``join-churn``: restarts membership ``PERIOD_S`` after every install."""

    PERIOD_S = 0.3

    def __init__(self, engine: ByzantineEngine, arg: int | None) -> None:
        super().__init__(engine, arg)
        self.due: float | None = None
        self.view: object = None

    def outgoing(self, out: list[Outgoing]) -> list[Outgoing]:
        e = self.engine
        if e.state is State.OPERATIONAL and e.ring != self.view:
            self.view = e.ring
            self.due = e.now + self.PERIOD_S
        return out

    def deadline(self) -> float | None:
        return self.due

    def tick(self, now: float) -> None:
        if self.due is not None and now >= self.due:
            self.due = None
            if self.engine.state is State.OPERATIONAL:
                self.engine.enter_gather(now, reason="churn", add=self.phantom())

    def phantom(self) -> tuple[int, ...]:
        """The nodes each restart proposes to add (none)."""
        return ()


class JoinPhantom(JoinChurn):
    """``join-phantom``: join-churn that proposes a roster node absent from
    the ring and silent (a merge proposal was exempt from churn). A node
    outside the ring that is heard is no phantom: proposing it is a merge,
    judged by its pace (accusations.on_restart_by_join); with no silent
    node to propose it is join-churn."""

    def phantom(self) -> tuple[int, ...]:
        e = self.engine
        recent_s = e.timing.consensus_timeout_s
        absent = [
            n
            for n in e.roster
            if n not in e.members and not e.detector.heard_lately(n, e.now, recent_s)
        ]
        return tuple(absent[:1])


class RestartOnce(Behaviour):
    """Restarts membership once misbehaviour starts (retrying every
    ``RETRY_S`` until it is operational): one round to lie in. One restart
    is far below what ``churn`` scores to an accusation."""

    RETRY_S = 0.3

    def __init__(self, engine: ByzantineEngine, arg: int | None) -> None:
        super().__init__(engine, arg)
        self.due: float | None = engine.start_s

    def deadline(self) -> float | None:
        return self.due

    def tick(self, now: float) -> None:
        if self.due is None or now < self.due:
            return
        if self.engine.state is State.OPERATIONAL:
            self.due = None
            self.engine.enter_gather(now, reason="byzantine")
        else:
            self.due = now + self.RETRY_S


class PoisonRingSeq(RestartOnce):
    """``poison-ring-seq``: every join it signs carries ring_seq 2^64-1."""

    JUMP: int | None = None  # None: 2^64-1

    def outgoing(self, out: list[Outgoing]) -> list[Outgoing]:
        res = []
        for o in out:
            frame = decoded(o.data)
            if frame is None or not isinstance(frame.body, Join):
                res.append(o)
                continue
            j = frame.body
            seq = U64_MAX if self.JUMP is None else min(U64_MAX, j.ring_seq + self.JUMP)
            res.append(
                Outgoing(o.dest, self.resign_body(frame, dataclasses.replace(j, ring_seq=seq)))
            )
        return res


class PoisonRingSeqJump(PoisonRingSeq):
    """``poison-ring-seq-jump``: its real ring_seq + 2^40 in every join."""

    JUMP = 1 << 40


class CommitLie(RestartOnce):
    """``commit-lie``: its own entry in every commit token it forwards lies
    about its old ring: aru, high_seq and high_delivered."""

    JUMP: int | None = None  # None: 2^64-1
    # Lies remembered, so that an entry that comes back round is not lied
    # about twice.
    KEPT = 64

    def __init__(self, engine: ByzantineEngine, arg: int | None) -> None:
        super().__init__(engine, arg)
        # The lies told: an entry that comes back round (second rotation)
        # is forwarded as it is, so the lie stays one statement per round.
        self.told: deque[CommitMember] = deque(maxlen=self.KEPT)

    def lie(self, m: CommitMember) -> CommitMember:
        """The entry ``m`` (its own) as it claims it."""
        if m in self.told:
            return m
        if self.JUMP is None:
            out = dataclasses.replace(
                m, aru=U64_MAX, high_seq=U64_MAX, high_delivered=U64_MAX, received_flg=True
            )
        else:
            out = dataclasses.replace(
                m,
                aru=min(U64_MAX, m.aru + self.JUMP),
                high_seq=min(U64_MAX, m.high_seq + self.JUMP),
                high_delivered=min(U64_MAX, m.high_delivered + self.JUMP),
            )
        self.told.append(out)
        return out

    def outgoing(self, out: list[Outgoing]) -> list[Outgoing]:
        res = []
        me = self.engine.node_id
        for o in out:
            frame = decoded(o.data)
            if frame is None or not isinstance(frame.body, CommitToken) or frame.sender != me:
                res.append(o)
                continue
            ct = frame.body
            members = tuple(self.lie(m) if m.node == me else m for m in ct.members)
            if members == ct.members:
                res.append(o)
            else:
                body = dataclasses.replace(ct, members=members)
                res.append(Outgoing(o.dest, self.resign_body(frame, body)))
                # It stands by its lie: its own engine would otherwise refuse
                # the second rotation (its entry came back "altered") and the
                # lie would never reach anyone's recovery plan.
                self.engine.my_entry = next(m for m in members if m.node == me)
        return res


class CommitLieJump(CommitLie):
    """``commit-lie-jump``: aru, high_seq and high_delivered each + 5,000,000."""

    JUMP = 5_000_000


class DropCommit(RestartOnce):
    """``drop-commit``: restarts membership once, then never forwards a
    commit token (it still answers joins, and holds the token when a ring
    forms without it)."""

    def outgoing(self, out: list[Outgoing]) -> list[Outgoing]:
        res = []
        for o in out:
            frame = decoded(o.data)
            if frame is not None and isinstance(frame.body, CommitToken):
                continue
            res.append(o)
        return res


class AlterCommit(RestartOnce):
    """``alter-commit``: restarts membership once, then every commit token
    it forwards names another key commitment than the one it received
    (retransmissions repeat the same altered forward): the next holder
    refuses it, and the round dies at the alterer."""

    def __init__(self, engine: ByzantineEngine, arg: int | None) -> None:
        super().__init__(engine, arg)
        self.swap = SwapCache()

    def outgoing(self, out: list[Outgoing]) -> list[Outgoing]:
        return [self._one(o) for o in out]

    def _one(self, o: Outgoing) -> Outgoing:
        frame = decoded(o.data)
        ct = frame.body if frame is not None else None
        if frame is None or not isinstance(ct, CommitToken) or frame.sender != self.engine.node_id:
            return o  # not a commit, or a relay of another member's forward
        altered = self.alter(frame.ring, ct)
        if altered is None:
            return o
        return Outgoing(o.dest, self.swap.get(o.data, lambda: self.resign_body(frame, altered)))

    def alter(self, ring: RingId, ct: CommitToken) -> CommitToken | None:
        """The forward it sends instead of ``ct`` (None: ``ct`` itself)."""
        return dataclasses.replace(ct, key_commit=bytes(b ^ 0xFF for b in ct.key_commit))


class BadKeyNext(AlterCommit):
    """``bad-key-next``: restarts membership once, then, as the
    representative, seals the first member after it a key that does not
    open (every other member gets the real one): only that member can tell,
    and the round dies there."""

    def alter(self, ring: RingId, ct: CommitToken) -> CommitToken | None:
        if ring.rep != self.engine.node_id or ct.hop != 1:
            return None
        members = _commit_members(ct)
        return dataclasses.replace(ct, keys=_spoiled(ct, *members[1:2]))


class AlterKeyNext(AlterCommit):
    """``alter-key-next``: restarts membership once, then the commit token
    it forwards in the first rotation seals the next holder a key that does
    not open (the key commitment and every other key unchanged): the next
    holder refuses it, and the round dies at the alterer. As the
    representative it spoils every member's key (the next member's alone
    is ``bad-key-next``, which only that member can tell)."""

    def alter(self, ring: RingId, ct: CommitToken) -> CommitToken | None:
        members = _commit_members(ct)
        if not members or ct.hop > len(members):
            return None
        rep = ct.hop == 1 and ring.rep == self.engine.node_id
        spoil = members if rep else (members[ct.hop % len(members)],)
        return dataclasses.replace(ct, keys=_spoiled(ct, *spoil))


class AlterCert(AlterCommit):
    """``alter-cert``: restarts membership once, then every commit token it
    forwards in the first rotation carries the certificate with its last
    join's signature spoiled (its sets unchanged): the next holder refuses
    it, and the round dies at the alterer."""

    def alter(self, ring: RingId, ct: CommitToken) -> CommitToken | None:
        if not ct.cert or ct.hop > len(_commit_members(ct)):
            return None
        last = ct.cert[-1]
        spoiled = dataclasses.replace(last, signature=bytes(len(last.signature)))
        return dataclasses.replace(ct, cert=(*ct.cert[:-1], spoiled))


class StarveCommit(RestartOnce):
    """``starve-commit``: restarts membership once, then sends every commit
    token it forwards to every member but the next holder (the correct
    holder must not be blamed: members relay a late commit)."""

    def outgoing(self, out: list[Outgoing]) -> list[Outgoing]:
        res = []
        for o in out:
            frame = decoded(o.data)
            ct = frame.body if frame is not None else None
            if not isinstance(ct, CommitToken) or frame is None:
                res.append(o)
                continue
            if frame.sender != self.engine.node_id:
                res.append(o)
                continue
            members = _commit_members(ct)
            holder = members[ct.hop % len(members)] if members else None
            if o.dest is None:
                res.extend(Outgoing(d, o.data) for d in self.others() if d != holder)
            elif o.dest != holder:
                res.append(o)  # retransmissions to the holder are dropped too
        return res


class FloodRecovery(RestartOnce):
    """``flood-recovery``: restarts membership once, then, in every
    recovery, keeps re-broadcasting "recovered" frames of junk, so that
    the new ring's seq never stops moving (recovery ends after two quiet
    rotations); it reports no load in its tokens."""

    def received(self, datagram: bytes) -> None:
        e = self.engine
        if e.now < e.start_s or e.state is not State.RECOVERY or e.recq is None or len(e.recq):
            return
        item = self.item()
        if item is not None:
            e.recq.push(e.next_msg_no(), item, safe=False, recovered=True)

    def item(self) -> bytes | None:
        """What it re-broadcasts next: bytes no member can absorb (each
        still takes a seq of the new ring)."""
        return self.rng.randbytes(200)

    def signing(self, ring: RingId, body: object) -> object:
        # Reports no load: the stall must not be caught as its overload.
        if isinstance(body, Token) and self.engine.now >= self.engine.start_s:
            return dataclasses.replace(body, backlog=0, load=LoadReport(0, 0, 0, 0))
        return body


class FloodRecoveryRepeat(FloodRecovery):
    """``flood-recovery-repeat``: the same, with a genuine item: one of the
    old ring's signed tokens it holds, again and again (every member can
    absorb it; only its repetition is wrong)."""

    def item(self) -> bytes | None:
        store = self.engine.store
        if store is None or not store.vouched:
            return None
        return min(store.vouched.items())[1].raw


class RecoverFork(RestartOnce):
    """``recover-fork``: restarts membership right after a visit in which
    it listed frames (in every ring), then, in the recovery that follows,
    re-broadcasts after its genuine items a second signed version of that
    token, naming other digests for its frames: a member that missed the
    first version would confirm the second."""

    def __init__(self, engine: ByzantineEngine, arg: int | None) -> None:
        super().__init__(engine, arg)
        self.due = None  # set by the first visit that lists frames
        self.last: tuple[RingId, Token] | None = None  # its last token with frames
        self.forked: RingId | None = None  # the old ring forked last
        self.restarted: RingId | None = None  # the ring it restarted last

    def signing(self, ring: RingId, body: object) -> object:
        if isinstance(body, Token) and body.frames and self.engine.state is State.OPERATIONAL:
            self.last = (ring, body)
            if self.due is None and ring != self.restarted:
                # Restart with these frames unsafe: once per ring, so a
                # recovery that died (loss, another liar) is tried again.
                self.restarted = ring
                self.due = self.engine.now
        return body

    def received(self, datagram: bytes) -> None:
        e = self.engine
        if e.state is not State.RECOVERY or e.recq is None or e.store is None:
            return
        ring = e.store.ring
        if self.last is None or self.last[0] != ring or ring == self.forked:
            return
        self.forked = ring
        tk = self.last[1]
        other = tuple(FrameRef(r.seq, bytes(b ^ 0xFF for b in r.digest)) for r in tk.frames)
        _, raw = e.sign_frame(ring, dataclasses.replace(tk, frames=other))
        e.recq.push(e.next_msg_no(), raw, safe=False, recovered=True)


def _spoiled(ct: CommitToken, *nodes: int) -> tuple[SealedKey, ...]:
    """``ct``'s sealed keys, those of ``nodes`` replaced by keys that do not open."""
    return tuple(SealedKey(k.node, bytes(len(k.sealed))) if k.node in nodes else k for k in ct.keys)


def _commit_members(ct: CommitToken) -> tuple[int, ...]:
    sets = {(j.body.proc, j.body.fail) for j in ct.cert if isinstance(j.body, Join)}
    if len(sets) != 1:
        return ()
    proc, fail = sets.pop()
    return tuple(sorted(set(proc) - set(fail)))


class FailLive(RestartOnce):
    """``fail-live:TARGET``: restarts membership once, then lists TARGET, a
    live correct member, in the fail set of every join it signs."""

    def signing(self, ring: RingId, body: object) -> object:
        e = self.engine
        if isinstance(body, Join) and e.now >= e.start_s and self.arg is not None:
            fail = tuple(sorted({*body.fail, self.arg}))
            return dataclasses.replace(body, fail=fail)
        return body
