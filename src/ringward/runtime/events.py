"""What a running node hands the application: typed, immutable events.

The engine speaks in ``Delivered`` / ``ViewInstalled`` (engine/api.py); the
runtime turns them into the public vocabulary below. ``ViewChanged`` adds
``joined`` and ``left`` (relative to the previous configuration this node
installed, transitional or regular), which the engine does not compute.
``Evicted`` and ``Rejected`` come from the fault detector
(docs/fault-detector.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from ringward.engine.api import MessageId

__all__ = [
    "Delivered",
    "Event",
    "Evicted",
    "MessageId",
    "NodeStatus",
    "Rejected",
    "ViewChanged",
]


@dataclass(frozen=True, slots=True)
class Delivered:
    """A message delivered in the agreed total order.

    ``seq`` is the ring sequence number of the frame that completed the
    message (several small messages of one frame share it); ``view`` is the
    id of the configuration it was delivered in; ``safe`` is true when it was
    delivered as safe (every member of ``view`` holds it). ``msg_id`` equals
    what :meth:`Node.broadcast` returned to the sender. ``sender_name`` is
    the sender's name in the roster in use (``#ID`` if it lists no such node).
    """

    sender: int
    payload: bytes
    seq: int
    safe: bool
    view: str
    msg_id: MessageId
    sender_name: str


@dataclass(frozen=True, slots=True)
class ViewChanged:
    """A configuration installed (extended virtual synchrony).

    ``kind`` is ``transitional`` (the survivors of the previous regular
    configuration, delivered before the remaining old messages) or
    ``regular``. ``members``, ``joined`` and ``left`` are ascending node ids;
    ``joined`` / ``left`` compare with the previous configuration this node
    installed (on the first view ``joined`` is every member). ``quorate`` is
    true when ``members`` hold a quorum of the roster (DESIGN.md §1).
    ``member_names`` are the roster names of ``members``, in the same order;
    ``roster_version`` is the version of the roster this node runs on
    (it changes with a live roster reload).
    """

    view_id: str
    kind: Literal["transitional", "regular"]
    members: tuple[int, ...]
    joined: tuple[int, ...]
    left: tuple[int, ...]
    quorate: bool
    member_names: tuple[str, ...]
    roster_version: int


@dataclass(frozen=True, slots=True)
class Evicted:
    """``target`` was evicted from the group for ``reason`` (``equivocation``,
    ``rule:<name>``, ``overload``: its own signed statements convict it,
    ``proof`` True; ``accused``: f+1 members accused it, ``proof`` False).
    Emitted by every member installing the view that leaves it out, or,
    if it was already out of the view when convicted, at the verdict."""

    target: int
    reason: str
    proof: bool


@dataclass(frozen=True, slots=True)
class Rejected:
    """This node was evicted for ``reason``; it sends no ring traffic for
    ``cooldown_s`` and then rejoins by itself once healthy (a
    :class:`ViewChanged` with it as a member follows)."""

    reason: str
    cooldown_s: float


Event = Delivered | ViewChanged | Evicted | Rejected


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """A snapshot of one running node (:meth:`Node.status`).

    ``state`` is the engine's Totem state (operational, gather, commit,
    recovery). ``token_rotations_per_s`` is averaged since the previous
    ``status()`` call or view change. ``backlog`` counts messages queued in
    the engine and not yet broadcast; ``event_backlog`` events waiting for
    the application. ``reading_paused`` is true while the runtime stops
    reading the socket because the application is behind; ``pressure`` counts
    how often that happened. ``drops`` counts discarded datagrams by reason:
    the engine's reasons as they are, the runtime's prefixed ``runtime.``;
    ``notes`` counts what else the engine did (membership rounds and why,
    accusations, proofs, relayed tokens): docs/protocol.md, "Counters".
    ``scores`` is the fault detector's suspicion of each peer (node id ->
    signal -> score, decayed to the engine's latest time; a peer is accused
    when a score reaches the threshold, docs/fault-detector.md).
    ``roster_version`` is the version of the roster in use and
    ``member_names`` the roster names of ``members``.
    """

    node_id: int
    name: str
    state: str
    view: str | None
    members: tuple[int, ...]
    quorate: bool
    token_rotations_per_s: float
    backlog: int
    event_backlog: int
    reading_paused: bool
    pressure: int
    broadcasts: int
    deliveries: int
    datagrams_received: int
    datagrams_sent: int
    drops: Mapping[str, int]
    notes: Mapping[str, int]
    scores: Mapping[int, Mapping[str, float]]
    roster_version: int
    member_names: tuple[str, ...]
