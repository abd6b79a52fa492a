"""What every behaviour is: a hook on one engine's output, timers and input.

A behaviour sees the datagrams its engine is about to send (``outgoing``)
and returns what is sent instead; it may hold some back and release them
later through its own deadline (``deadline`` / ``tick``, which put them in
``ByzantineEngine.extra``), and it may watch what the engine receives
(``received``). Lies are signed with the engine's real key
(``Engine.sign_frame``): a Byzantine member is a real member.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from ringward.engine import Outgoing
from ringward.errors import RingwardError
from ringward.wire import Body, Frame, Kind, RingId, Token, decode

if TYPE_CHECKING:
    from ringward.byzantine.engine import ByzantineEngine

__all__ = ["U64_MAX", "Behaviour", "decoded", "kind_of"]

# The largest value of a 64-bit wire field.
U64_MAX: Final = (1 << 64) - 1


class Behaviour:
    """Alters what one engine sends (and may act on timers).

    ``arg`` is the behaviour's argument (``frame:TARGET``: the target), or
    None. ``rng`` is seeded by node and incarnation: the same world
    misbehaves the same way every time.
    """

    def __init__(self, engine: ByzantineEngine, arg: int | None) -> None:
        self.engine = engine
        self.arg = arg
        # Not for secrets: reproducible misbehaviour (S311).
        self.rng = random.Random(f"{engine.node_id}:{engine.incarnation}")  # noqa: S311

    def outgoing(self, out: list[Outgoing]) -> list[Outgoing]:
        """What is sent instead of ``out`` (the engine's datagrams)."""
        return out

    def signing(self, ring: RingId, body: object) -> object:
        """What the engine signs in ``ring`` instead of ``body`` (a lie it
        then keeps telling: its retransmissions, links and answers carry it)."""
        return body

    def deadline(self) -> float | None:
        """When ``tick`` wants to run next, or None."""
        return None

    def tick(self, now: float) -> None:
        """A timer, after the engine's own ``tick``."""
        return None

    def received(self, datagram: bytes) -> None:
        """A datagram the engine received (after it handled it)."""
        return None

    # helpers
    def resign(self, raw: bytes, change: Callable[[Token], Token]) -> bytes:
        """The token frame ``raw`` (one of ours) changed, signed by us."""
        frame = decode(raw)
        assert isinstance(frame.body, Token)
        return self.engine.sign_frame(frame.ring, change(frame.body))[1]

    def resign_body(self, frame: Frame, body: Body) -> bytes:
        """``frame`` (one of ours) with another body, signed by us."""
        return self.engine.sign_frame(frame.ring, body)[1]

    def others(self) -> list[int]:
        """Every roster node but this one."""
        return [n for n in self.engine.roster if n != self.engine.node_id]


class SwapCache:
    """The altered datagram sent for each original, so that a
    retransmission or an answer repeats the same lie (the oldest forgotten
    past ``KEPT``)."""

    KEPT = 256

    def __init__(self) -> None:
        self._swap: dict[bytes, bytes] = {}

    def get(self, data: bytes, make: Callable[[], bytes]) -> bytes:
        got = self._swap.get(data)
        if got is None:
            if len(self._swap) >= self.KEPT:
                self._swap.pop(next(iter(self._swap)))
            got = self._swap[data] = make()
        return got


def kind_of(data: bytes) -> Kind | None:
    """The kind of the frame ``data``, or None when it does not decode."""
    try:
        return decode(data).kind
    except RingwardError:
        return None


def decoded(data: bytes) -> Frame | None:
    """The frame ``data``, or None when it does not decode."""
    try:
        return decode(data)
    except RingwardError:
        return None
