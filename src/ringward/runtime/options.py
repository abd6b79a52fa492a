"""The options of a runtime node: :class:`NodeOptions` (the keyword
arguments of ``ringward.runtime.Node``, for wrappers that forward them) and
their types and defaults."""

from __future__ import annotations

from collections.abc import Callable
from os import PathLike
from typing import Final, TextIO, TypedDict

from ringward.crypto.identity import Identity
from ringward.crypto.roster import Roster
from ringward.engine import EngineConfig, FrameSecurity

__all__ = ["EVENT_QUEUE_MAX", "NodeOptions", "SecurityFactory"]

# Events waiting for the application before the node stops reading: about
# ten seconds of a busy ring's deliveries at a few hundred per second, and a
# few megabytes at typical payload sizes.
EVENT_QUEUE_MAX: Final = 10_000

SecurityFactory = Callable[[Roster, Identity, int], FrameSecurity]
"""Builds the engine's FrameSecurity from (roster, identity, node id)."""


class NodeOptions(TypedDict, total=False):
    """The keyword arguments of :class:`Node` (its docstring says what each
    does; its signature holds the defaults), for wrappers that forward them:
    ``ringward.sync.Node`` takes ``**NodeOptions``. mypy checks that each key
    is a parameter of ``Node.__init__`` of the same type, and
    tests/runtime/test_runtime_sync.py that each such parameter is a key."""

    bind: str | tuple[str, int] | None
    config: EngineConfig | None
    event_log: str | PathLike[str] | TextIO | None
    security: SecurityFactory | None
    event_queue_max: int
    ring_seq_file: str | PathLike[str] | None
    misbehave: str | None
    misbehave_after_s: float
    leave_on_close: bool
