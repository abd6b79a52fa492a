"""``--misbehave``: a node that attacks its own cluster, for demonstrations
and tests only (loudly logged).

A behaviour of :mod:`ringward.byzantine` wraps the engine; ``overload``
keeps a correct engine and starves the process instead, for OVERLOAD_FOR_S:
each datagram read costs OVERLOAD_SLEEP_S of blocked time, and each wake-up
to read at least OVERLOAD_STALL_S. The floor makes it an overload whatever
the ring sends: with a cost per datagram alone, the 10 hops a second of an
idle ring (docs/protocol.md, "The idle ring") left a process that reads 50
datagrams a second on time, and nothing overloaded it.
"""

from __future__ import annotations

import logging
from typing import Final, NamedTuple

from ringward.byzantine import BEHAVIOURS, TARGETED, ByzantineEngine
from ringward.engine import Engine, EngineConfig, FrameSecurity
from ringward.errors import ConfigError

__all__ = [
    "OVERLOAD_FOR_S",
    "OVERLOAD_SLEEP_S",
    "OVERLOAD_STALL_S",
    "Misbehaviour",
    "OverloadWindow",
    "make_engine",
    "parse",
]

logger = logging.getLogger("ringward.runtime")

OVERLOAD_SLEEP_S: Final = 0.02
# What a full batch (64 datagrams) cost: the regime a spinning ring kept it
# in before the idle ring, 1.2-1.3 s late at every probe.
OVERLOAD_STALL_S: Final = 64 * OVERLOAD_SLEEP_S
OVERLOAD_FOR_S: Final = 8.0


class Misbehaviour(NamedTuple):
    """A behaviour's name and, for ``frame``, the node it frames."""

    name: str
    target: int | None


class OverloadWindow(NamedTuple):
    """When an ``overload`` node starves itself (loop time, seconds)."""

    start_s: float
    end_s: float

    def covers(self, now_s: float) -> bool:
        return self.start_s <= now_s < self.end_s


def parse(spec: str | None, ids: list[int]) -> Misbehaviour | None:
    """``BEHAVIOUR``, ``frame:TARGET`` or ``fail-live:TARGET``
    (ringward.byzantine), or ``overload``;
    ConfigError ``bad_misbehave`` otherwise."""
    if spec is None:
        return None
    name, _, arg = spec.partition(":")
    target = int(arg) if arg.isdigit() else None
    if (
        name not in BEHAVIOURS
        or (name in TARGETED) != (target is not None)
        or (arg and target is None)
    ):
        raise ConfigError(
            "bad_misbehave",
            f"{spec!r}: one of {', '.join(BEHAVIOURS)} (TARGET: {'/'.join(sorted(TARGETED))})",
        )
    if target is not None and target not in ids:
        raise ConfigError("bad_misbehave", f"{spec!r}: node {target} is not in the roster")
    return Misbehaviour(name, target)


def make_engine(
    node_id: int,
    ids: list[int],
    how: Misbehaviour,
    start_s: float,
    *,
    name: str,
    after_s: float,
    config: EngineConfig,
    cluster_id: bytes,
    incarnation: int,
    ring_seq: int,
    now: float,
    security: FrameSecurity,
) -> tuple[Engine, OverloadWindow | None]:
    """The misbehaving node's engine, and its overload window if any."""
    logger.warning(
        "node %s: MISBEHAVING (%s) from %.1f s on: this node attacks its own cluster, "
        "for demonstrations and tests only",
        name,
        how.name if how.target is None else f"{how.name}:{how.target}",
        after_s,
    )
    common = {
        "config": config,
        "cluster_id": cluster_id,
        "incarnation": incarnation,
        "ring_seq": ring_seq,
        "now": now,
        "security": security,
    }
    if how.name == "overload":
        window = OverloadWindow(start_s, start_s + OVERLOAD_FOR_S)
        return Engine(node_id, ids, **common), window  # type: ignore[arg-type]
    engine = ByzantineEngine(
        node_id,
        tuple(ids),
        behaviour=how.name,
        arg=how.target,
        start_s=start_s,
        **common,  # type: ignore[arg-type]
    )
    return engine, None
