"""The JSON Lines event log: one vocabulary for every writer and reader.

The simulator (:mod:`ringward.sim`) and the runtime (:mod:`ringward.runtime`)
write each node's sends, deliveries, views, crashes and evictions in this
format; the guarantee checker (:mod:`ringward.sim.checker`) and third-party
checkers read it (docs/guarantees.md). It sits above the engine and below
both writers, so neither imports the other for it.

* here: the typed events, the strict parser (``parse_line``, ``parse_lines``,
  ``read_log``), the canonical writer ``to_json`` and ``payload_digest``;
  they depend on nothing but :mod:`ringward.errors`.
* :mod:`ringward.eventlog.translate`: engine events and submits to log
  events (``from_engine``, ``sent``); it imports the engine's event types.
"""

from __future__ import annotations

from ringward.eventlog._format import (
    DIGEST_HEX_CHARS,
    LINE_BYTES_MAX,
    NODE_ID_MAX,
    ByzantineEvent,
    CrashEvent,
    DeliverEvent,
    Event,
    EvictEvent,
    RejectedEvent,
    RejoinEvent,
    RestartEvent,
    SendEvent,
    ViewEvent,
    ViewKind,
    iter_lines,
    parse_line,
    parse_lines,
    payload_digest,
    read_log,
    to_json,
)

__all__ = [
    "DIGEST_HEX_CHARS",
    "LINE_BYTES_MAX",
    "NODE_ID_MAX",
    "ByzantineEvent",
    "CrashEvent",
    "DeliverEvent",
    "Event",
    "EvictEvent",
    "RejectedEvent",
    "RejoinEvent",
    "RestartEvent",
    "SendEvent",
    "ViewEvent",
    "ViewKind",
    "iter_lines",
    "parse_line",
    "parse_lines",
    "payload_digest",
    "read_log",
    "to_json",
]
