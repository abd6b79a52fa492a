"""Blocking API for threaded applications: ``ringward.sync.Node``.

Same arguments and events as the asyncio ``ringward.runtime.Node``; the
node's event loop runs in a background thread (see
:mod:`ringward.runtime.sync`).
"""

from ringward.runtime.events import (
    Delivered,
    Event,
    Evicted,
    MessageId,
    NodeStatus,
    Rejected,
    ViewChanged,
)
from ringward.runtime.sync import Node

__all__ = [
    "Delivered",
    "Event",
    "Evicted",
    "MessageId",
    "Node",
    "NodeStatus",
    "Rejected",
    "ViewChanged",
]
