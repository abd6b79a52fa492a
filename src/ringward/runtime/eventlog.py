"""Writing the JSON Lines event log from a running node.

The format is :mod:`ringward.eventlog` (docs/guarantees.md), the
simulator's too: the same typed events, translated from the engine's by the
same :mod:`ringward.eventlog.translate` and written by the same ``to_json``,
so the guarantee checker reads runtime logs and simulator logs alike. ``t``
is seconds since the node started (monotonic clock), hence non-decreasing
per node as the format requires; this is also why a path is truncated when
the node starts (appending a second run would make ``t`` go backwards).
"""

from __future__ import annotations

import time
from os import PathLike
from typing import TextIO

from ringward.engine.api import EngineEvent, MessageId
from ringward.eventlog import Event, to_json
from ringward.eventlog.translate import from_engine, sent

__all__ = ["EventLogWriter"]


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
        self._write(sent(msg_id, payload, safe, t=self._t(), node=self._node))

    def engine_event(self, event: EngineEvent) -> None:
        self._write(from_engine(event, t=self._t(), node=self._node))

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
