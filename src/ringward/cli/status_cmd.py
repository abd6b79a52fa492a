"""``ringward status``: ask a running node how it and its ring are doing.

Asks the node through the control socket in its state directory and prints
its ring, members and their addresses, quorum, suspicion scores, evicted
nodes with their cool-downs and counters, readable (like corosync-cfgtool
-s) or as JSON (--json). Name the node by its state directory, its socket,
or its name (then that name's default state directory); with none of them,
the one node found under the default state directories. See
docs/operations.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from ringward.errors import ConfigError
from ringward.runtime.control import request
from ringward.runtime.statedir import CONTROL_SOCKET, default_state_dir

__all__ = ["format_status", "register"]

_EPILOG: Final = """\
examples:
  ringward status                         # the one node under the default state directory
  ringward status node1                   # node1's default state directory
  ringward status --state-dir /var/lib/ringward/node1
  ringward status --json | jq .excluded
"""

# The drop and note counters are many; the readable output shows this many
# of the largest, --json all of them.
_COUNTERS_SHOWN: Final = 8


def register(sub: Any) -> None:
    p = sub.add_parser(
        "status",
        help="show a running node's ring, members, suspicion scores and counters",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", nargs="?", help="the node's name (its default state directory)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--state-dir", metavar="DIR", help="the node's --state-dir")
    where.add_argument("--socket", metavar="PATH", help="the node's control socket")
    p.add_argument("--json", action="store_true", help="print the status document as JSON")
    p.set_defaults(func=run_status)


def _socket(args: argparse.Namespace) -> Path:
    if args.socket:
        return Path(args.socket)
    if args.state_dir:
        return Path(args.state_dir) / CONTROL_SOCKET
    if args.name:
        return default_state_dir(args.name) / CONTROL_SOCKET
    own = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    if os.path.isabs(own):
        # Run from the unit itself (ExecReload=, ExecStartPost=): its node.
        return Path(own) / CONTROL_SOCKET
    base = default_state_dir("-").parent
    found = sorted(base.glob(f"*/{CONTROL_SOCKET}")) if base.is_dir() else []
    if len(found) == 1:
        return found[0]
    if not found:
        raise ConfigError(
            "no_control_socket",
            f"no node found under {base}: name one (ringward status NAME, --state-dir DIR)",
        )
    names = ", ".join(p.parent.name for p in found)
    raise ConfigError("which_node", f"several nodes under {base} ({names}): name one")


def run_status(args: argparse.Namespace) -> int:
    answer = request(_socket(args), "status")
    if not answer.get("ok"):
        raise ConfigError(
            str(answer.get("error", "bad_answer")), str(answer.get("message", answer))
        )
    doc = answer.get("status")
    if not isinstance(doc, dict):
        raise ConfigError("bad_answer", "the node's answer holds no status")
    if args.json:
        sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(format_status(doc))
    return 0


def _seconds(value: object) -> str:
    s = float(value) if isinstance(value, int | float) else 0.0
    if s >= 3600:
        return f"{s / 3600:.1f} h"
    if s >= 60:
        return f"{s / 60:.1f} min"
    return f"{s:.1f} s"


def _counters(counts: object) -> str:
    if not isinstance(counts, Mapping) or not counts:
        return "none"
    top = sorted(counts.items(), key=lambda kv: (-int(kv[1]), str(kv[0])))
    shown = ", ".join(f"{k}={v}" for k, v in top[:_COUNTERS_SHOWN])
    more = len(top) - _COUNTERS_SHOWN
    return shown + (f", ... ({more} more: --json)" if more > 0 else "")


def _scores(scores: object) -> str:
    if not isinstance(scores, Mapping) or not scores:
        return "-"
    return " ".join(f"{k}={float(v):.1f}" for k, v in sorted(scores.items()))


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]


def format_status(doc: Mapping[str, Any]) -> str:
    """The readable form of a status document (see docs/operations.md)."""
    me = doc.get("node") or {}
    lines = [
        f"node {me.get('name')} (id {me.get('id')}) on {me.get('address') or '-'}, "
        f"pid {me.get('pid')}, up {_seconds(me.get('uptime_s'))}",
        f"cluster {doc.get('cluster')}, roster version {doc.get('roster_version')}",
        "",
    ]
    nodes = doc.get("nodes") or []
    members = doc.get("members") or []
    ring = doc.get("ring")
    quorate = "quorate" if doc.get("quorate") else "NOT quorate"
    lines.append(f"state             {doc.get('state')}")
    if ring:
        stale = " (before this node was evicted)" if doc.get("state") == "rejected" else ""
        lines.append(
            f"ring              {ring}, {quorate}, {len(members)} of {len(nodes)} nodes{stale}"
        )
    else:
        lines.append("ring              none yet")
    lines.append(f"token rotations   {float(doc.get('token_rotations_per_s', 0.0)):.1f}/s")
    lines.append(
        f"backlog           {doc.get('backlog')} messages to send, "
        f"{doc.get('event_backlog')} events for the application"
        + (" (network reading paused)" if doc.get("reading_paused") else "")
    )
    lines.append(
        f"traffic           {doc.get('broadcasts')} sent, {doc.get('deliveries')} delivered, "
        f"{doc.get('datagrams_received')} datagrams in, {doc.get('datagrams_sent')} out"
    )
    lines.append(f"drops             {_counters(doc.get('drops'))}")
    if doc.get("metrics"):
        lines.append(f"metrics           {doc['metrics']}")
    scores = doc.get("scores") or {}
    rows = [["ID", "NAME", "ADDRESS", "MEMBERSHIP", "SUSPICION"]]
    for n in nodes:
        this = n.get("name") == me.get("name")
        rows.append(
            [
                str(n.get("id")),
                str(n.get("name")) + (" *" if this else ""),
                str(n.get("address")),
                str(n.get("membership")),
                "(this node)" if this else _scores(scores.get(n.get("name"))),
            ]
        )
    lines += ["", "nodes (* this node; suspicion: score by signal, accused at 100):"]
    lines += _table(rows)
    excluded = doc.get("excluded") or []
    lines += ["", "evicted or rejected:" if excluded else "evicted or rejected: none"]
    for e in excluded:
        who = "this node (rejected)" if e.get("self") else f"{e.get('name')} (id {e.get('id')})"
        proof = "proof" if e.get("proof") else "accused"
        left = float(e.get("cooldown_left_s", 0.0))
        wait = f"cool-down {_seconds(left)} left" if left > 0 else "cool-down over, may rejoin"
        lines.append(f"  {who}: {e.get('reason')} ({proof}), {wait}")
    return "\n".join(lines) + "\n"
