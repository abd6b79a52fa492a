"""The asyncio runtime: a ringward node on UDP, driving the sans-IO engine.

``Node`` (asyncio) and ``ringward.sync.Node`` (blocking, for threaded code)
run one cluster member (``Node.from_dir`` loads one from a key directory;
``await node.ready()`` waits for its first view); ``events()`` yields
``Delivered``, ``ViewChanged``, ``Evicted`` and ``Rejected``. Logs go to
the ``ringward.runtime`` logger, silent unless the application configures
logging.
"""

import logging

from ringward.engine.api import MessageId
from ringward.runtime.config import engine_config
from ringward.runtime.events import (
    Delivered,
    Event,
    Evicted,
    NodeStatus,
    Rejected,
    ViewChanged,
)
from ringward.runtime.loop import new_event_loop, run
from ringward.runtime.node import Node
from ringward.runtime.options import EVENT_QUEUE_MAX, NodeOptions, SecurityFactory

# A library stays quiet unless the application configures logging (without
# a handler, Python's last-resort handler would print warnings to stderr).
logging.getLogger("ringward.runtime").addHandler(logging.NullHandler())

__all__ = [
    "EVENT_QUEUE_MAX",
    "Delivered",
    "Event",
    "Evicted",
    "MessageId",
    "Node",
    "NodeOptions",
    "NodeStatus",
    "Rejected",
    "SecurityFactory",
    "ViewChanged",
    "engine_config",
    "new_event_loop",
    "run",
]
