"""Behaviours that lie with, or about, the token.

``equivocate``, ``lie-aru``, ``break-link``, ``flood-signed`` and ``far-hop``
sign tokens no correct member would (each is one signed statement the
detector can prove); ``drop-token``, ``starve-successor`` and ``slow-token``
only send the real token wrongly (too late, to the wrong members, or not at
all). The package docstring says what each does and what must follow.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from functools import partial
from typing import TYPE_CHECKING

from ringward.byzantine._base import U64_MAX, Behaviour, SwapCache, decoded, kind_of
from ringward.engine import Outgoing
from ringward.engine.evidence import backlog_step_max
from ringward.wire import Kind, RingId, Token, decode

if TYPE_CHECKING:
    from ringward.byzantine.engine import ByzantineEngine

__all__ = [
    "BreakLink",
    "CreepFlow",
    "DropToken",
    "Equivocate",
    "EquivocateSuccessor",
    "FarHop",
    "FarHopJump",
    "FloodSigned",
    "FrameAru",
    "HoldAru",
    "LieAru",
    "LieBacklog",
    "LieFcc",
    "ResignAru",
    "SlowToken",
    "StarveSuccessor",
]


class Equivocate(Behaviour):
    """``equivocate``: two signed versions of each token, one to each half."""

    def outgoing(self, out: list[Outgoing]) -> list[Outgoing]:
        res: list[Outgoing] = []
        for o in out:
            if o.dest is not None or kind_of(o.data) is not Kind.TOKEN:
                res.append(o)
                continue
            frame = decode(o.data)
            tk = frame.body
            assert isinstance(tk, Token)
            other = self.resign(o.data, lambda t: dataclasses.replace(t, backlog=t.backlog + 1))
            # The successor gets the version its own token will link to; the
            # others alternate, the first of them getting the other version
            # (on 4 nodes the old alternation by roster index sent the other
            # version to nobody when node 2 equivocated: Byzantine soak seed
            # 1005).
            res.append(Outgoing(tk.succ, o.data))
            rest = [d for d in self.others() if d != tk.succ]
            for i, dest in enumerate(rest):
                res.append(Outgoing(dest, other if i % 2 == 0 else o.data))
        return res


class EquivocateSuccessor(Behaviour):
    """``equivocate-successor``: the successor gets the real token, every
    other member another version: only the successor can show the version
    the chain continues from."""

    def outgoing(self, out: list[Outgoing]) -> list[Outgoing]:
        res: list[Outgoing] = []
        for o in out:
            frame = decoded(o.data)
            if frame is None or frame.kind is not Kind.TOKEN or o.dest is not None:
                res.append(o)
                continue
            if frame.sender != self.engine.node_id:
                res.append(o)  # a relay or an answer of another member's token
                continue
            tk = frame.body
            assert isinstance(tk, Token)
            other = self.resign(o.data, lambda t: dataclasses.replace(t, backlog=t.backlog + 1))
            res.append(Outgoing(tk.succ, o.data))
            res.extend(Outgoing(d, other) for d in self.others() if d != tk.succ)
        return res


class LieAru(Behaviour):
    """``lie-aru``: each token it makes claims aru = seq (aru_id 0), a lie
    whenever some member lacks a frame; it keeps telling the same lie (its
    retransmissions, links and answers carry it)."""

    def signing(self, ring: RingId, body: object) -> object:
        if isinstance(body, Token):
            return dataclasses.replace(body, aru=body.seq, aru_id=0)
        return body


class ResignAru(Behaviour):
    """``resign-aru``: every token it sends, its relays of other members'
    tokens included, re-signed by itself with aru = seq (aru_id 0), after its
    engine recorded the original: a relay is then a token out of its turn,
    and its own successor links to a version its engine never made."""

    def outgoing(self, out: list[Outgoing]) -> list[Outgoing]:
        return [
            Outgoing(
                o.dest, self.resign(o.data, lambda t: dataclasses.replace(t, aru=t.seq, aru_id=0))
            )
            if kind_of(o.data) is Kind.TOKEN
            else o
            for o in out
        ]


U32_MAX = (1 << 32) - 1


class LieFcc(Behaviour):
    """``lie-fcc``: each token's fcc set to 2^32-1 (a window used up)."""

    def signing(self, ring: RingId, body: object) -> object:
        return dataclasses.replace(body, fcc=U32_MAX) if isinstance(body, Token) else body


class LieBacklog(Behaviour):
    """``lie-backlog``: each token's backlog set to 2^32-1."""

    def signing(self, ring: RingId, body: object) -> object:
        return dataclasses.replace(body, backlog=U32_MAX) if isinstance(body, Token) else body


class CreepFlow(Behaviour):
    """``creep-flow``: each token's fcc and backlog raised as far as the
    transition rules allow over the token it received (one visit's frames,
    a full queue), every visit: a lie no rule shows."""

    def signing(self, ring: RingId, body: object) -> object:
        recent = self.engine.detector.tokens.raw_at
        held = recent.get(body.hop - 1) if isinstance(body, Token) else None
        prev = held[1].body if held is not None else None
        if not isinstance(body, Token) or not isinstance(prev, Token):
            return body
        cfg = self.engine.config
        return dataclasses.replace(
            body,
            fcc=min(U32_MAX, max(body.fcc, prev.fcc + cfg.max_messages)),
            backlog=min(U32_MAX, prev.backlog + backlog_step_max(cfg)),
        )


class HoldAru(Behaviour):
    """``hold-aru``: every token it makes keeps the aru at most where it was
    at its first visit of the ring, naming itself as the member that lacks
    the next frame (what a member that cannot receive does). No rule shows
    it; the ring stops moving past the receive window."""

    def __init__(self, engine: ByzantineEngine, arg: int | None) -> None:
        super().__init__(engine, arg)
        self.held: dict[RingId, int] = {}

    def signing(self, ring: RingId, body: object) -> object:
        if not isinstance(body, Token):
            return body
        if ring not in self.held and len(self.held) >= 64:
            self.held.pop(next(iter(self.held)))
        cap = self.held.setdefault(ring, body.aru)
        if body.aru <= cap:
            return body
        return dataclasses.replace(body, aru=cap, aru_id=self.blamed(body))

    def blamed(self, tk: Token) -> int:
        return self.engine.node_id


class FrameAru(HoldAru):
    """``frame-aru``: hold-aru naming another member as the one that holds
    it: the previous setter when there is one, else its predecessor."""

    def blamed(self, tk: Token) -> int:
        held = self.engine.detector.tokens.raw_at.get(tk.hop - 1)
        prev = held[1] if held is not None else None
        if prev is None or not isinstance(prev.body, Token):
            return self.engine.node_id
        if prev.body.aru_id not in (0, self.engine.node_id):
            return prev.body.aru_id
        return prev.sender


class BreakLink(Behaviour):
    """``break-link``: resign-aru with random bytes for ``prev``, in every copy
    of its tokens it sends (and it never serves another member's token)."""

    def __init__(self, engine: ByzantineEngine, arg: int | None) -> None:
        super().__init__(engine, arg)
        # Its real tokens -> the altered ones it sends instead, so that no
        # honest copy (a retransmission, an answer to a request) escapes.
        self.swap = SwapCache()

    def outgoing(self, out: list[Outgoing]) -> list[Outgoing]:
        res = []
        for o in out:
            frame = decoded(o.data)
            if frame is None or frame.kind is not Kind.TOKEN:
                res.append(o)
                continue
            if frame.sender != self.engine.node_id:
                continue  # never serves another member's token either
            res.append(Outgoing(o.dest, self.swap.get(o.data, partial(self._unlinked, o.data))))
        return res

    def _unlinked(self, data: bytes) -> bytes:
        return self.resign(data, partial(_unlinked, junk=self.rng.randbytes(32)))


class DropToken(Behaviour):
    """``drop-token``: never forwards the token (still answers joins)."""

    def outgoing(self, out: list[Outgoing]) -> list[Outgoing]:
        return [o for o in out if kind_of(o.data) is not Kind.TOKEN]


class StarveSuccessor(Behaviour):
    """``starve-successor``: each token to every member but its successor."""

    def outgoing(self, out: list[Outgoing]) -> list[Outgoing]:
        res = []
        for o in out:
            frame = decoded(o.data)
            if frame is None or not isinstance(frame.body, Token):
                res.append(o)
            elif o.dest is None:
                succ = frame.body.succ
                res.extend(Outgoing(d, o.data) for d in self.others() if d != succ)
            elif o.dest != frame.body.succ:
                res.append(o)
        return res


class SlowToken(Behaviour):
    """``slow-token``: holds each token 90% of the token timeout."""

    def __init__(self, engine: ByzantineEngine, arg: int | None) -> None:
        super().__init__(engine, arg)
        self.held: deque[tuple[float, Outgoing]] = deque()

    def outgoing(self, out: list[Outgoing]) -> list[Outgoing]:
        delay = self.engine.config.token_timeout_ms * 0.9 / 1000
        res = []
        for o in out:
            if kind_of(o.data) is Kind.TOKEN:
                self.held.append((self.engine.now + delay, o))
            else:
                res.append(o)
        return res

    def deadline(self) -> float | None:
        return self.held[0][0] if self.held else None

    def tick(self, now: float) -> None:
        while self.held and self.held[0][0] <= now:
            self.engine.extra.append(self.held.popleft()[1])


class FloodSigned(Behaviour):
    """``flood-signed``: signs and broadcasts tokens that are not its turn."""

    def outgoing(self, out: list[Outgoing]) -> list[Outgoing]:
        res = list(out)
        for o in out:
            if o.dest is None and kind_of(o.data) is Kind.TOKEN:
                for i in range(1, 6):
                    res.append(Outgoing(None, self.resign(o.data, partial(_off_turn, i=i))))
        return res


def _unlinked(tk: Token, junk: bytes) -> Token:
    return dataclasses.replace(tk, aru=tk.seq, aru_id=0, prev=junk)


def _off_turn(tk: Token, i: int) -> Token:
    return dataclasses.replace(tk, hop=tk.hop + i, frames=(), seq=tk.seq)


class FarHop(Behaviour):
    """``far-hop``: every token it makes jumps far ahead in hops, still on
    its own turn (hop h is made by members[(h-1) mod n]) and naming the right
    successor."""

    JUMP = 1 << 62
    # Altered tokens remembered, so that a retransmission repeats the lie.
    KEPT = 256

    def __init__(self, engine: ByzantineEngine, arg: int | None) -> None:
        super().__init__(engine, arg)
        # Its real tokens -> the altered ones (retransmissions and answers
        # to token requests are the same lie).
        self.swap: dict[bytes, bytes] = {}

    def outgoing(self, out: list[Outgoing]) -> list[Outgoing]:
        res = []
        e = self.engine
        for o in out:
            frame = decoded(o.data)
            if frame is None or not isinstance(frame.body, Token) or frame.sender != e.node_id:
                res.append(o)  # another member's token it serves: unchanged
                continue
            if o.data not in self.swap:
                if len(self.swap) >= self.KEPT:
                    self.swap.pop(next(iter(self.swap)))
                n = max(1, len(e.known_rings.get(frame.ring, e.members)))
                jump = max(n, self.JUMP // n * n)
                tk = frame.body
                far = dataclasses.replace(tk, hop=min(U64_MAX, tk.hop + jump))
                self.swap[o.data] = self.resign_body(frame, far)
            res.append(Outgoing(o.dest, self.swap[o.data]))
        return res


class FarHopJump(FarHop):
    """``far-hop-jump``: far-hop by 10^7 hops."""

    JUMP = 10**7
