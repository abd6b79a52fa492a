"""Behaviours around the ring's traffic: what is withheld, added or replayed.

``withhold`` keeps back retransmissions (accused by the members that asked);
``frame`` adds false accusations (its target must never be evicted);
``flood-junk`` and ``replay`` add datagrams that fail checks or are stale
(harmless: dropped and counted).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from ringward.byzantine._base import Behaviour, decoded, kind_of
from ringward.engine import Outgoing
from ringward.wire import Accusation, DataFrame, Kind, Token, decode

if TYPE_CHECKING:
    from ringward.byzantine.engine import ByzantineEngine

__all__ = ["FloodJunk", "FrameTarget", "Replay", "Withhold"]


class Withhold(Behaviour):
    """``withhold``: never re-sends a frame once it was broadcast (its
    engine still takes the served requests out of the token, as a correct
    originator whose copies were all lost would)."""

    def __init__(self, engine: ByzantineEngine, arg: int | None) -> None:
        super().__init__(engine, arg)
        self.sent: set[tuple[object, int]] = set()

    def outgoing(self, out: list[Outgoing]) -> list[Outgoing]:
        res = []
        for o in out:
            frame = decoded(o.data)
            if frame is not None and isinstance(frame.body, DataFrame):
                key = (frame.ring, frame.body.seq)
                if key in self.sent:
                    continue  # a retransmission: withheld
                self.sent.add(key)
            res.append(o)
        return res


class FrameTarget(Behaviour):
    """``frame:TARGET``: accuses TARGET (``arg``) at every visit."""

    def outgoing(self, out: list[Outgoing]) -> list[Outgoing]:
        res = list(out)
        e = self.engine
        target = self.arg
        assert target is not None
        for o in out:
            if o.dest is None and kind_of(o.data) is Kind.TOKEN and e.ring is not None:
                tk = decode(o.data).body
                assert isinstance(tk, Token)
                acc = Accusation(target, tk.hop, "token_loss", 1000)
                res.append(Outgoing(None, e.sign_frame(e.ring, acc)[1]))
        return res


class FloodJunk(Behaviour):
    """``flood-junk``: ten datagrams that fail checks per real one."""

    def outgoing(self, out: list[Outgoing]) -> list[Outgoing]:
        res = list(out)
        for o in out:
            for _ in range(10):
                junk = bytearray(o.data)
                # Past the 27-byte header: a DATA frame whose AEAD fails, or a
                # signed frame whose signature does not match.
                for _flip in range(4):
                    pos = self.rng.randrange(27, len(junk)) if len(junk) > 27 else 0
                    junk[pos] ^= 1 << self.rng.randrange(8)
                res.append(Outgoing(None, bytes(junk)))
        return res


class Replay(Behaviour):
    """``replay``: re-sends other members' frames captured a second earlier."""

    def __init__(self, engine: ByzantineEngine, arg: int | None) -> None:
        super().__init__(engine, arg)
        self.captured: deque[tuple[float, bytes]] = deque(maxlen=2000)

    def received(self, datagram: bytes) -> None:
        self.captured.append((self.engine.now, datagram))

    def outgoing(self, out: list[Outgoing]) -> list[Outgoing]:
        res = list(out)
        old = [d for t, d in self.captured if t <= self.engine.now - 1.0]
        if out and old:
            for _ in range(3):
                res.append(Outgoing(None, self.rng.choice(old)))
        return res
