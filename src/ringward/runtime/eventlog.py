"""Writing the JSON Lines event log from a running node.

The format is the simulator's (``ringward.sim.eventlog``, docs/guarantees.md):
the same typed events, written by the same ``to_json``, so the guarantee
checker reads runtime logs and simulator logs alike. ``t`` is seconds since
the node started (monotonic clock), hence non-decreasing per node as the
format requires; this is also why a path is truncated when the node starts
(appending a second run would make ``t`` go backwards).
"""

from __future__ import annotations

import hashlib
import time
from os import PathLike
from typing import TextIO

from ringward.engine.api import EngineEvent, Evicted, MessageId, Rejected, Rejoined, ViewInstalled
from ringward.sim.eventlog import (
    DeliverEvent,
    Event,
    EvictEvent,
    RejectedEvent,
    RejoinEvent,
    SendEvent,
    ViewEvent,
    to_json,
)

__all__ = ["EventLogWriter", "payload_digest"]


def payload_digest(payload: bytes) -> str:
    """BLAKE2b-128 of ``payload``, lowercase hex (the log's ``digest``)."""
    return hashlib.blake2b(payload, digest_size=16).hexdigest()


class EventLogWriter:
    """Appends one node's events to a path (truncated first) or to an open
    text stream (shared by several nodes, left open)."""

    __slots__ = ("_dirty", "_file", "_node", "_owned", "_t0")

    def __init__(self, target: str | PathLike[str] | TextIO, node: int) -> None:
        if isinstance(target, str | PathLike):
            self._file: TextIO = open(target, "w", encoding="ascii")  # noqa: SIM115
            self._owned = True
        else:
            self._file = target
            self._owned = False
        self._node = node
        self._t0 = time.monotonic()
        self._dirty = False

    def _t(self) -> float:
        return time.monotonic() - self._t0

    def _write(self, event: Event) -> None:
        self._file.write(to_json(event) + "\n")
        self._dirty = True

    def send(self, msg_id: MessageId, payload: bytes, safe: bool) -> None:
        self._write(
            SendEvent(
                t=self._t(),
                node=self._node,
                id=str(msg_id),
                digest=payload_digest(payload),
                safe=safe,
            )
        )

    def engine_event(self, event: EngineEvent) -> None:
        if isinstance(event, Evicted):
            self._write(
                EvictEvent(
                    t=self._t(),
                    node=self._node,
                    target=event.target,
                    reason=event.reason,
                    proof=event.proof,
                )
            )
            return
        if isinstance(event, Rejected):
            self._write(RejectedEvent(t=self._t(), node=self._node, reason=event.reason))
            return
        if isinstance(event, Rejoined):
            self._write(RejoinEvent(t=self._t(), node=self._node))
            return
        if isinstance(event, ViewInstalled):
            self._write(
                ViewEvent(
                    t=self._t(),
                    node=self._node,
                    view=event.view,
                    kind=event.kind,
                    members=event.members,
                    quorate=event.quorate,
                )
            )
            return
        self._write(
            DeliverEvent(
                t=self._t(),
                node=self._node,
                view=event.view,
                seq=event.seq,
                id=str(event.msg_id),
                sender=event.msg_id.sender,
                digest=payload_digest(event.payload),
                safe=event.safe,
            )
        )

    def flush(self) -> None:
        """Flush what was written since the last flush (after each engine
        verb, so a killed process loses at most the lines of one verb)."""
        if self._dirty:
            self._file.flush()
            self._dirty = False

    def close(self) -> None:
        self.flush()
        if self._owned:
            self._file.close()
