"""The sans-IO protocol engine: Totem ordering and membership.

``Engine`` is driven by ``receive`` / ``tick`` / ``submit`` and drained by
``ready()``; the simulator and the runtime drive the same object.
"""

from ringward.engine.api import (
    Delivered,
    EngineEvent,
    MessageId,
    Outgoing,
    Ready,
    ViewInstalled,
    quorum_size,
)
from ringward.engine.config import EngineConfig
from ringward.engine.engine import Engine
from ringward.engine.membership import State
from ringward.engine.security import FrameSecurity, NullSecurity

__all__ = [
    "Delivered",
    "Engine",
    "EngineConfig",
    "EngineEvent",
    "FrameSecurity",
    "MessageId",
    "NullSecurity",
    "Outgoing",
    "Ready",
    "State",
    "ViewInstalled",
    "quorum_size",
]
