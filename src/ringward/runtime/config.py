"""From the roster's cluster-wide protocol parameters to an EngineConfig.

Every ``ProtocolParams`` field has an ``EngineConfig`` field of the same name
and meaning, so the mapping is by name. The roster is authoritative for those
values: every node of a cluster reads the same signed roster, so they agree
on the timers without any further coordination. ``EngineConfig`` fields the
roster does not carry (datagram size, queue bounds) keep their defaults or
take the caller's overrides.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ringward.crypto.roster import ProtocolParams, Roster
from ringward.engine.config import EngineConfig

__all__ = ["engine_config"]

_ENGINE_FIELDS = frozenset(f.name for f in dataclasses.fields(EngineConfig))


def engine_config(source: Roster | ProtocolParams, **overrides: Any) -> EngineConfig:
    """The EngineConfig for a node of ``source``'s cluster, with ``overrides``
    (EngineConfig field names) applied last. ConfigError when a value is out
    of the engine's range."""
    params = source.params if isinstance(source, Roster) else source
    values: dict[str, Any] = {
        f.name: getattr(params, f.name)
        for f in dataclasses.fields(ProtocolParams)
        if f.name in _ENGINE_FIELDS
    }
    values.update(overrides)
    defaults = EngineConfig()
    token_ms = int(values.get("token_timeout_ms", defaults.token_timeout_ms))
    if "token_hold_idle_ms" not in overrides:
        # The engine requires the idle hold below half the token timeout; a
        # roster with a very short token (tests, LANs) would otherwise be
        # refused over a value the roster cannot even express.
        values["token_hold_idle_ms"] = min(defaults.token_hold_idle_ms, token_ms // 2 - 1)
    return EngineConfig(**values)
