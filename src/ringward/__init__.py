"""ringward: Byzantine-tolerant, secure group messaging over a Totem ring.

The application API is the runtime's: ``ringward.Node`` (asyncio) and
``ringward.sync.Node`` (threads), yielding ``Delivered``, ``ViewChanged``,
``Evicted`` and ``Rejected`` events (``Event`` is their union)::

    async with ringward.Node.from_dir("node1/") as node:
        await node.ready()
        await node.broadcast(b"hello")
 Those names are imported lazily, so
``import ringward.wire`` (say, in a fuzz target) does not pull in asyncio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ringward.errors import (
    ConfigError,
    CryptoError,
    EventLogError,
    KeyFileError,
    RingwardError,
    RosterError,
    StateError,
    WireError,
)

if TYPE_CHECKING:
    from ringward.engine.api import MessageId
    from ringward.runtime import (
        Delivered,
        Event,
        Evicted,
        Node,
        NodeStatus,
        Rejected,
        ViewChanged,
    )

__version__ = "0.1.0"

_RUNTIME = frozenset(
    {
        "Delivered",
        "Event",
        "Evicted",
        "MessageId",
        "Node",
        "NodeStatus",
        "Rejected",
        "ViewChanged",
    }
)

__all__ = [
    "ConfigError",
    "CryptoError",
    "Delivered",
    "Event",
    "EventLogError",
    "Evicted",
    "KeyFileError",
    "MessageId",
    "Node",
    "NodeStatus",
    "Rejected",
    "RingwardError",
    "RosterError",
    "StateError",
    "ViewChanged",
    "WireError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    if name in _RUNTIME:
        from ringward import runtime

        return getattr(runtime, name)
    raise AttributeError(f"module 'ringward' has no attribute {name!r}")
