"""Prometheus metrics over HTTP, written by hand on the node's loop.

``ringward node --metrics HOST:PORT`` serves ``GET /metrics`` in the
Prometheus text exposition format (version 0.0.4, which OpenMetrics
scrapers read too). Why not ``prometheus_client``: its HTTP server runs in a
thread, and the node's state belongs to its event loop; reading it from
another thread would need locks in the hot path. Serving from the loop
itself needs no lock and no dependency, in one short module: a scrape is a snapshot
taken between two engine verbs, hence consistent.

Bounds: a request head is at most ``REQUEST_BYTES_MAX`` bytes and must
arrive within ``REQUEST_TIMEOUT_S``; at most ``CLIENTS_MAX`` scrapes are
served at once, and a new one pushes out the one that has waited longest
without sending its request (:class:`ClientSlots`): an endpoint bound
beyond loopback cannot be kept from Prometheus by idle connections.
Only GET (and HEAD) of ``/metrics`` (and ``/``) answer 200.

The metric names are listed in docs/operations.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Final

from ringward.errors import ConfigError
from ringward.runtime.stats import LATENCY_BUCKETS_S

if TYPE_CHECKING:
    from ringward.runtime.node import Node

__all__ = [
    "CLIENTS_MAX",
    "CONTENT_TYPE",
    "REQUEST_BYTES_MAX",
    "REQUEST_TIMEOUT_S",
    "ClientSlots",
    "MetricsServer",
    "exposition",
]

logger = logging.getLogger("ringward.runtime")

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
# A scrape request is a request line and a few headers.
REQUEST_BYTES_MAX: Final = 8192
REQUEST_TIMEOUT_S: Final = 5.0
# Prometheus scrapes one target with one connection at a time; a few spare.
CLIENTS_MAX: Final = 4

_STATES: Final = ("operational", "gather", "commit", "recovery", "rejected")


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: Mapping[str, str]) -> str:
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in pairs.items()) + "}"


def _num(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


class _Out:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def metric(
        self, name: str, kind: str, help_text: str, samples: Iterable[tuple[dict[str, str], float]]
    ) -> None:
        # Text format 0.0.4 names a counter's family with its _total suffix
        # (prometheus_client does the same); OpenMetrics parsers accept it.
        full = f"{name}_total" if kind == "counter" else name
        self.lines.append(f"# HELP {full} {help_text}")
        self.lines.append(f"# TYPE {full} {kind}")
        for labels, value in samples:
            self.lines.append(f"{full}{_labels(labels)} {_num(value)}")

    def one(self, name: str, kind: str, help_text: str, value: float) -> None:
        self.metric(name, kind, help_text, [({}, value)])


def exposition(node: Node) -> str:
    """Every metric of ``node``, in the text exposition format."""
    status = node.status()
    tele = node.telemetry
    roster = node.roster
    names = {n.id: n.name for n in roster.nodes}
    out = _Out()
    out.metric(
        "ringward_node_info",
        "gauge",
        "This node: cluster, name and id (value 1).",
        [({"cluster": roster.cluster, "node": node.name, "id": str(node.node_id)}, 1)],
    )
    out.one("ringward_roster_version", "gauge", "Version of the roster in use.", roster.version)
    out.metric(
        "ringward_state",
        "gauge",
        "1 for the Totem state the node is in, 0 for the others.",
        [({"state": s}, 1 if status.state == s else 0) for s in _STATES],
    )
    out.one("ringward_quorate", "gauge", "1 if the current view is quorate.", int(status.quorate))
    out.one("ringward_members", "gauge", "Members of the current view.", len(status.members))
    out.one(
        "ringward_excluded_nodes",
        "gauge",
        "Nodes kept out by the fault detector (this node too while rejected).",
        len(node.exclusions()),
    )
    out.one("ringward_deliveries", "counter", "Messages delivered.", tele.deliveries)
    out.one("ringward_delivered_bytes", "counter", "Payload bytes delivered.", tele.delivered_bytes)
    out.one("ringward_broadcasts", "counter", "Messages this node broadcast.", status.broadcasts)
    out.one(
        "ringward_broadcast_bytes",
        "counter",
        "Payload bytes this node broadcast.",
        tele.broadcast_bytes,
    )
    out.metric(
        "ringward_views",
        "counter",
        "Configurations installed, by kind.",
        [({"kind": k}, tele.views[k]) for k in ("regular", "transitional")],
    )
    out.metric(
        "ringward_evictions",
        "counter",
        "Evictions this node installed, by reason.",
        [({"reason": r}, n) for r, n in sorted(tele.evictions.items())],
    )
    out.metric(
        "ringward_rejections",
        "counter",
        "Times this node was evicted, by reason.",
        [({"reason": r}, n) for r, n in sorted(tele.rejections.items())],
    )
    out.metric(
        "ringward_drops",
        "counter",
        "Datagrams or frames discarded, by reason (docs/protocol.md, Counters).",
        [({"reason": r}, n) for r, n in sorted(status.drops.items())],
    )
    out.one(
        "ringward_datagrams_received", "counter", "UDP datagrams read.", status.datagrams_received
    )
    out.one("ringward_datagrams_sent", "counter", "UDP datagrams sent.", status.datagrams_sent)
    out.one(
        "ringward_token_rotations_per_second",
        "gauge",
        "Token rotations per second since the previous status reading.",
        status.token_rotations_per_s,
    )
    out.one(
        "ringward_backlog_messages", "gauge", "Messages queued, not yet broadcast.", status.backlog
    )
    out.one(
        "ringward_event_backlog",
        "gauge",
        "Events waiting for the application.",
        status.event_backlog,
    )
    out.one(
        "ringward_receive_paused",
        "gauge",
        "1 while the node stops reading the network.",
        int(status.reading_paused),
    )
    out.metric(
        "ringward_suspicion_score",
        "gauge",
        "The fault detector's suspicion of each peer, by signal (accused at 100).",
        [
            ({"peer": names.get(peer, str(peer)), "signal": sig}, score)
            for peer, signals in sorted(status.scores.items())
            for sig, score in sorted(signals.items())
        ],
    )
    name = "ringward_self_delivery_latency_seconds"
    out.lines.append(f"# HELP {name} From broadcast to delivery of this node's own messages.")
    out.lines.append(f"# TYPE {name} histogram")
    cumulative = 0
    for bound, count in zip((*LATENCY_BUCKETS_S, float("inf")), tele.latency_counts, strict=True):
        cumulative += count
        le = "+Inf" if bound == float("inf") else repr(bound)
        out.lines.append(f'{name}_bucket{{le="{le}"}} {cumulative}')
    out.lines.append(f"{name}_sum {_num(tele.latency_sum_s)}")
    out.lines.append(f"{name}_count {cumulative}")
    return "\n".join(out.lines) + "\n"


class ClientSlots:
    """At most ``limit`` connections served at once. When all slots are
    taken, a new connection takes the slot of the one that has waited
    longest without sending its request, which is closed: clients that
    connect and send nothing (slowloris) cannot keep a prompt client out,
    they only push each other out. Full of clients whose requests are
    being answered, a new one is refused (``enter`` False)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._idle: dict[asyncio.StreamWriter, None] = {}  # oldest first
        self._working: set[asyncio.StreamWriter] = set()

    def __len__(self) -> int:
        return len(self._idle) + len(self._working)

    def enter(self, writer: asyncio.StreamWriter) -> bool:
        """Take a slot for a new connection (False: none free)."""
        if len(self) >= self._limit:
            if not self._idle:
                return False
            oldest = next(iter(self._idle))
            del self._idle[oldest]
            oldest.transport.abort()  # its reader sees the end: it finishes at once
        self._idle[writer] = None
        return True

    def working(self, writer: asyncio.StreamWriter) -> bool:
        """The connection's request arrived: it can no longer be pushed
        out. False if it already was (its slot is gone)."""
        if writer not in self._idle:
            return False
        del self._idle[writer]
        self._working.add(writer)
        return True

    def leave(self, writer: asyncio.StreamWriter) -> None:
        self._idle.pop(writer, None)
        self._working.discard(writer)


class MetricsServer:
    """Serves :func:`exposition` of ``node`` over HTTP at (host, port)."""

    def __init__(self, node: Node, host: str, port: int) -> None:
        self._node = node
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self._clients = ClientSlots(CLIENTS_MAX)

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); useful with port 0."""
        if self._server is None or not self._server.sockets:
            return self._host, self._port
        name = self._server.sockets[0].getsockname()
        return name[0], name[1]

    async def start(self) -> None:
        """Listen. ConfigError ``bad_metrics`` when the bind fails."""
        try:
            self._server = await asyncio.start_server(
                self._serve, self._host, self._port, limit=REQUEST_BYTES_MAX
            )
        except OSError as exc:
            raise ConfigError(
                "bad_metrics", f"cannot listen on {self._host}:{self._port}: {exc}"
            ) from None
        host, port = self.address
        logger.info("node %s: metrics on http://%s:%d/metrics", self._node.name, host, port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if not self._clients.enter(writer):
                status, body = "503 Service Unavailable", "too many scrapes at once\n"
                method = "GET"
            else:
                method, status, body = await self._handle(reader, writer)
            data = body.encode("utf-8")
            ctype = CONTENT_TYPE if status.startswith("200") else "text/plain; charset=utf-8"
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
            )
            if writer.transport.is_closing():
                return  # pushed out (ClientSlots) or gone: nobody to answer
            writer.write(head.encode("ascii") + (b"" if method == "HEAD" else data))
            await asyncio.wait_for(writer.drain(), REQUEST_TIMEOUT_S)
        except (OSError, TimeoutError, RuntimeError):
            pass  # the client went away (uvloop raises RuntimeError on a closed transport)
        finally:
            self._clients.leave(writer)
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), REQUEST_TIMEOUT_S)

    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[str, str, str]:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT_S)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            return "GET", "400 Bad Request", "bad request\n"
        if not self._clients.working(writer):
            return "GET", "503 Service Unavailable", "pushed out by newer clients\n"
        parts = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return "GET", "400 Bad Request", "bad request\n"
        method, target = parts[0], parts[1].split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            return "GET", "405 Method Not Allowed", "only GET\n"
        if target not in ("/metrics", "/"):
            return method, "404 Not Found", "see /metrics\n"
        started = time.perf_counter()
        body = exposition(self._node)
        logger.debug("metrics scrape in %.1f ms", (time.perf_counter() - started) * 1000)
        return method, "200 OK", body
