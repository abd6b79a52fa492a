"""From what a node does to log events: the one translation, for every writer.

A node's log records the messages its application submitted and the events
its engine reported (engine/api.py: ``Delivered``, ``ViewInstalled``,
``Evicted``, ``Rejected``, ``Rejoined``). The simulator (sim/world.py,
virtual time) and the runtime (runtime/eventlog.py, monotonic seconds)
both turn them into log events here, so a delivery, a view or an eviction
reads the same in either log. Only ``t``, ``line`` and ``wall`` come from the
writer: ``line`` is where the event will stand in the written file (the
checker quotes it), 0 when the writer does not know; ``wall`` is the
wall-clock time, which the runtime records and the simulator does not.

This module imports the engine's event types; the format itself
(``ringward.eventlog``) does not, so a checker can read logs without loading
the engine.
"""

from __future__ import annotations

from dataclasses import replace
from typing import assert_never

from ringward.engine.api import (
    Delivered,
    EngineEvent,
    Evicted,
    MessageId,
    Rejected,
    Rejoined,
    ViewInstalled,
)
from ringward.eventlog._format import (
    DeliverEvent,
    Event,
    EvictEvent,
    RejectedEvent,
    RejoinEvent,
    SendEvent,
    ViewEvent,
    payload_digest,
)

__all__ = ["from_engine", "sent"]


def sent(
    msg_id: MessageId,
    payload: bytes,
    safe: bool,
    *,
    t: float,
    node: int,
    line: int = 0,
    wall: float | None = None,
) -> SendEvent:
    """``node`` submitted ``payload`` (safe delivery or not) as ``msg_id``."""
    return SendEvent(
        t=t,
        node=node,
        line=line,
        wall=wall,
        id=str(msg_id),
        digest=payload_digest(payload),
        safe=safe,
    )


def from_engine(
    event: EngineEvent, *, t: float, node: int, line: int = 0, wall: float | None = None
) -> Event:
    """The log event for ``event``, which ``node``'s engine reported at ``t``
    (``wall``: the wall-clock time, when the writer records it)."""
    logged = _translate(event, t=t, node=node, line=line)
    return logged if wall is None else replace(logged, wall=wall)


def _translate(event: EngineEvent, *, t: float, node: int, line: int) -> Event:
    match event:
        case Delivered():
            return DeliverEvent(
                t=t,
                node=node,
                line=line,
                view=event.view,
                seq=event.seq,
                id=str(event.msg_id),
                sender=event.msg_id.sender,
                digest=payload_digest(event.payload),
                safe=event.safe,
            )
        case ViewInstalled():
            return ViewEvent(
                t=t,
                node=node,
                line=line,
                view=event.view,
                kind=event.kind,
                # A tuple whatever the engine handed over: views are compared
                # with rosters (sim/world.py) and hashed.
                members=tuple(event.members),
                quorate=event.quorate,
            )
        case Evicted():
            return EvictEvent(
                t=t,
                node=node,
                line=line,
                target=event.target,
                reason=event.reason,
                proof=event.proof,
            )
        case Rejected():
            return RejectedEvent(t=t, node=node, line=line, reason=event.reason)
        case Rejoined():
            return RejoinEvent(t=t, node=node, line=line)
        case _:
            assert_never(event)
