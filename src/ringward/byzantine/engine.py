"""``ByzantineEngine``: a real engine, with its real keys, that misbehaves.

The wrapper runs the honest ``Engine`` unchanged and puts a behaviour
between it and the network: every datagram ``ready()`` returns passes
through the behaviour from ``start_s`` on (before that the node is
correct), the behaviour's own deadline joins the engine's, and every
received datagram and timer is shown to it after the engine handled it.
Whoever drives an ``Engine`` (the simulator, the runtime) drives this the
same way.
"""

from __future__ import annotations

from collections.abc import Callable

from ringward.byzantine._base import Behaviour
from ringward.byzantine._table import CLASSES
from ringward.engine import Engine, EngineConfig, FrameSecurity, Outgoing, Ready
from ringward.wire import Frame, RingId

__all__ = ["ByzantineEngine"]


class ByzantineEngine(Engine):
    """A real engine whose behaviour alters what it sends.

    ``behaviour`` is a name of ``BEHAVIOURS`` but ``overload`` (KeyError
    otherwise: validate with ``parse_spec`` first); ``arg`` its argument
    (``frame``: the target node). Misbehaviour starts at ``start_s`` (engine
    time). The other arguments are ``Engine``'s.
    """

    def __init__(
        self,
        node_id: int,
        roster: tuple[int, ...],
        *,
        behaviour: str,
        arg: int | None,
        start_s: float,
        config: EngineConfig,
        incarnation: int,
        ring_seq: int,
        now: float,
        security: FrameSecurity | None,
        cluster_id: bytes = bytes(8),
        decoder: Callable[[bytes], Frame] | None = None,
    ) -> None:
        self.incarnation = incarnation
        self.start_s = start_s
        # Datagrams a behaviour releases from its timers: sent with the next
        # ready().
        self.extra: list[Outgoing] = []
        self.behaviour: Behaviour | None = None
        super().__init__(
            node_id,
            roster,
            config=config,
            cluster_id=cluster_id,
            incarnation=incarnation,
            ring_seq=ring_seq,
            now=now,
            security=security,
            decoder=decoder,
        )
        self.behaviour = CLASSES[behaviour](self, arg)

    def receive(self, now: float, datagram: bytes, source: object = None) -> None:
        super().receive(now, datagram, source)
        if self.behaviour is not None:
            self.behaviour.received(datagram)

    def tick(self, now: float) -> None:
        super().tick(now)
        if self.behaviour is not None:
            self.behaviour.tick(now)

    def sign_frame(self, ring: RingId, body: object) -> tuple[Frame, bytes]:
        # A lie told before signing is the engine's own statement: it links,
        # retransmits and answers requests with it like any token it made.
        if self.behaviour is not None and self.now >= self.start_s:
            body = self.behaviour.signing(ring, body)
        return super().sign_frame(ring, body)

    def ready(self) -> Ready:
        out = super().ready()
        if self.behaviour is None or self.now < self.start_s:
            return out
        out.datagrams = self.behaviour.outgoing(out.datagrams) + self.extra
        self.extra = []
        own = self.behaviour.deadline()
        if own is not None:
            out.deadline = own if out.deadline is None else min(out.deadline, own)
        return out
