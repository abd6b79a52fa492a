"""What goes into and comes out of the engine: the sans-IO vocabulary.

The engine (``ringward.engine.Engine``) is driven by three verbs, each taking
``now`` (seconds, from the driver's clock — virtual in the simulator,
monotonic in the runtime):

* ``receive(now, datagram, source)`` — one datagram from the network;
* ``tick(now)`` — time passed; the driver calls it at ``Ready.deadline``;
* ``submit(now, payload, safe=False) -> MessageId`` — the application's message.

After any verb the driver calls ``ready()`` once and must, in this order:

1. if ``persist_ring_seq`` is set, store it durably (it is passed back as
   ``ring_seq`` when the node starts again, so ring ids never repeat even
   when every node restarts) — before sending anything;
2. send every ``Outgoing`` in ``datagrams`` (``dest`` None = every other
   member of the roster; the engine never sends to itself);
3. hand every event in ``events`` to the application, in order;
4. arrange a ``tick`` at ``deadline`` (None: no timer pending).

No verb raises for a peer's bad input: such datagrams are dropped and counted
in ``Engine.drops`` under the WireError/CryptoError reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NamedTuple

__all__ = [
    "Delivered",
    "EngineEvent",
    "Evicted",
    "MessageId",
    "Outgoing",
    "Ready",
    "Rejected",
    "Rejoined",
    "ViewInstalled",
]


class MessageId(NamedTuple):
    """A message's identity: its sender and the sender's message number.

    Message numbers start at ``incarnation << 32`` (the driver gives every
    start of a node a fresh incarnation), so ids never repeat across restarts.
    A named tuple, not a dataclass: one is made, hashed and compared per
    message at every node (docs/performance.md, "Where a node's CPU goes").
    """

    sender: int
    msg_no: int

    def __str__(self) -> str:
        return f"{self.sender}:{self.msg_no}"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One datagram to send: to node ``dest``, or to every other member
    (``dest`` None)."""

    dest: int | None
    data: bytes


# Its fields in the functional form, whose annotations are the classes
# themselves (the class form's are strings here, which the API reference
# cannot resolve in a named tuple's generated __new__).
_DeliveredFields = NamedTuple(  # noqa: UP014 (see above)
    "_DeliveredFields",
    [("view", str), ("seq", int), ("msg_id", MessageId), ("payload", bytes), ("safe", bool)],
)


class Delivered(_DeliveredFields):
    """A message delivered in agreed (or, if ``safe``, safe) order in view
    ``view``; ``seq`` is the ring sequence number of the frame that completed
    it (several messages of one frame share it). A named tuple: one is made
    per message at every node (docs/performance.md)."""

    __slots__ = ()

    @property
    def sender(self) -> int:
        return self.msg_id.sender


@dataclass(frozen=True, slots=True)
class ViewInstalled:
    """A configuration installed: ``kind`` transitional or regular.

    ``quorate`` is true when ``members`` hold at least ⌈(N+f+1)/2⌉ of the N
    roster nodes (f = ⌊(N-1)/3⌋), so two quorate views share a correct node.
    """

    view: str
    kind: Literal["transitional", "regular"]
    members: tuple[int, ...]
    quorate: bool


@dataclass(frozen=True, slots=True)
class Evicted:
    """The regular view just installed leaves out ``target`` (or it was
    already out when convicted: announced at the verdict) because of
    evidence every member checked: ``proof`` True when the target's own
    signed statements convict it (``reason`` ``equivocation``, ``overload``,
    ``rule:<name>``), False when f+1 members accused it (``accused``)."""

    target: int
    reason: str
    proof: bool


@dataclass(frozen=True, slots=True)
class Rejected:
    """This node was evicted (``reason`` as in :class:`Evicted`). It sends
    no ring traffic until its cool-down ends and it rejoins by itself."""

    reason: str
    cooldown_s: float


@dataclass(frozen=True, slots=True)
class Rejoined:
    """This node, once rejected, is a member of a regular view again."""

    view: str


EngineEvent = Delivered | ViewInstalled | Evicted | Rejected | Rejoined


@dataclass(slots=True)
class Ready:
    """Everything the engine produced since the previous ``ready()``."""

    datagrams: list[Outgoing] = field(default_factory=list)
    events: list[EngineEvent] = field(default_factory=list)
    deadline: float | None = None
    persist_ring_seq: int | None = None


def quorum_size(roster_size: int) -> int:
    """⌈(N+f+1)/2⌉ with f = ⌊(N-1)/3⌋ (DESIGN.md §1)."""
    f = (roster_size - 1) // 3
    return (roster_size + f + 1 + 1) // 2
