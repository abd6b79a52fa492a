"""Parsing ``ID:BEHAVIOUR[,ID:BEHAVIOUR...]``: which nodes misbehave, and how."""

from __future__ import annotations

from ringward.byzantine.expect import BEHAVIOURS, EXPECT, TARGETED
from ringward.errors import ConfigError

__all__ = ["parse_spec"]


def parse_spec(spec: str, nodes: int) -> dict[int, tuple[str, int | None]]:
    """``ID:BEHAVIOUR[,ID:BEHAVIOUR...]`` (``frame:TARGET`` and
    ``fail-live:TARGET`` take a node id)
    on a roster of nodes 1..``nodes``: node -> (behaviour, argument or None).

    Raises ``ConfigError('bad_byzantine')`` (the caller's input is to blame)
    for an item that is not ``ID:BEHAVIOUR``, an unknown behaviour, a
    ``frame`` without a target (or a target for another behaviour), a node
    or target out of range, or a node named twice.
    """
    out: dict[int, tuple[str, int | None]] = {}
    for item in spec.split(","):
        parts = item.strip().split(":")
        try:
            node = int(parts[0])
            name = parts[1]
            arg = int(parts[2]) if len(parts) > 2 else None
        except (IndexError, ValueError):
            raise ConfigError("bad_byzantine", f"{item!r}: want ID:BEHAVIOUR") from None
        if name not in EXPECT or (name in TARGETED) != (arg is not None) or len(parts) > 3:
            targeted = "/".join(sorted(TARGETED))
            raise ConfigError(
                "bad_byzantine",
                f"{item!r}: behaviours are {', '.join(BEHAVIOURS)} (TARGET: {targeted})",
            )
        if not 1 <= node <= nodes or (arg is not None and not 1 <= arg <= nodes) or node in out:
            raise ConfigError("bad_byzantine", f"{item!r}: node out of range or repeated")
        out[node] = (name, arg)
    return out
