"""Simulation support: the event log format and the guarantee checker.

``eventlog`` reads and writes the JSON Lines event log that the simulator and
the runtime produce; ``checker`` verifies a log against the guarantees of
docs/guarantees.md (also as ``python -m ringward.sim.checker LOG.jsonl``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ringward.sim.eventlog import (
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
    parse_line,
    parse_lines,
    read_log,
    to_json,
)
from ringward.sim.report import Report, Violation

if TYPE_CHECKING:
    from ringward.sim.checker import check

__all__ = [
    "ByzantineEvent",
    "CrashEvent",
    "DeliverEvent",
    "Event",
    "EvictEvent",
    "RejectedEvent",
    "RejoinEvent",
    "Report",
    "RestartEvent",
    "SendEvent",
    "ViewEvent",
    "Violation",
    "check",
    "parse_line",
    "parse_lines",
    "read_log",
    "to_json",
]


def __getattr__(name: str) -> Any:
    # Imported lazily so that `python -m ringward.sim.checker` does not find
    # the module already imported by its own package (runpy warns about that).
    if name == "check":
        from ringward.sim.checker import check

        return check
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
