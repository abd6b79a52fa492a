"""A running node as one JSON document: what ``ringward status`` shows.

Built on the node's loop from :meth:`Node.status`, :meth:`Node.exclusions`
and the roster, with names next to every node id, so a reader needs neither
the roster nor the engine's vocabulary. The keys are a contract of the
control channel (docs/operations.md); new keys may be added, none removed.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, Final

from ringward.errors import StateError

if TYPE_CHECKING:
    from ringward.runtime.node import Node

__all__ = ["SNAPSHOT_FORMAT", "snapshot"]

# Bumped when a key changes meaning or goes away.
SNAPSHOT_FORMAT: Final = 1


def snapshot(node: Node, started_s: float) -> dict[str, Any]:
    """The status document of ``node`` (``started_s``: its start on the
    ``time.monotonic`` clock, for the uptime)."""
    status = node.status()
    roster = node.roster
    names = {n.id: n.name for n in roster.nodes}
    members = set(status.members)
    excluded = {e.node_id: e for e in node.exclusions()}
    address = None
    try:
        host, port = node.address
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    except StateError:  # closed: no socket any more
        address = None
    nodes = []
    for entry in roster.nodes:
        if entry.id in excluded:
            where = "rejected" if excluded[entry.id].is_self else "evicted"
        elif entry.id in members:
            where = "member"
        else:
            where = "absent"
        nodes.append(
            {"id": entry.id, "name": entry.name, "address": entry.address, "membership": where}
        )
    return {
        "format": SNAPSHOT_FORMAT,
        "cluster": roster.cluster,
        "roster_version": roster.version,
        "node": {
            "id": status.node_id,
            "name": status.name,
            "address": address,
            "pid": os.getpid(),
            "uptime_s": round(max(0.0, time.monotonic() - started_s), 3),
        },
        "state": status.state,
        "ring": status.view,
        "quorate": status.quorate,
        "members": [names.get(m, str(m)) for m in status.members],
        "nodes": nodes,
        "scores": {
            names.get(peer, str(peer)): {k: round(v, 3) for k, v in signals.items()}
            for peer, signals in status.scores.items()
            if signals
        },
        "excluded": [
            {
                "id": e.node_id,
                "name": names.get(e.node_id, str(e.node_id)),
                "reason": e.reason,
                "proof": e.proof,
                "cooldown_left_s": round(e.cooldown_left_s, 3),
                "self": e.is_self,
            }
            for e in excluded.values()
        ],
        "token_rotations_per_s": round(status.token_rotations_per_s, 3),
        "backlog": status.backlog,
        "event_backlog": status.event_backlog,
        "reading_paused": status.reading_paused,
        "pressure": status.pressure,
        "broadcasts": status.broadcasts,
        "deliveries": status.deliveries,
        "datagrams_received": status.datagrams_received,
        "datagrams_sent": status.datagrams_sent,
        "drops": dict(sorted(status.drops.items())),
        "notes": dict(sorted(status.notes.items())),
    }
