"""The control channel, the metrics endpoint and the appended event log,
on a one-node ring in this process (loopback; every wait bounded)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
from pathlib import Path
from typing import Any

import pytest

from ringward.crypto import Identity, KeyDir, ProtocolParams, Roster
from ringward.errors import ConfigError
from ringward.eventlog import (
    CrashEvent,
    DeliverEvent,
    RestartEvent,
    SendEvent,
    ViewEvent,
    read_log,
    to_json,
)
from ringward.runtime import Node, new_event_loop
from ringward.runtime.control import REQUEST_BYTES_MAX, ControlServer, request
from ringward.runtime.eventlog import EventLogWriter
from ringward.runtime.metrics import MetricsServer
from ringward.sim.checker import check

STEP_S = 30.0
FAST = ProtocolParams(token_timeout_ms=400, consensus_timeout_ms=800, join_timeout_ms=40)
pytestmark = pytest.mark.xdist_group("loopback")


def _solo(path: Path) -> tuple[Roster, Identity]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kd = KeyDir(path)
    roster = kd.init("ops", [("solo", f"127.0.0.1:{port}")], params=FAST)
    return roster, Identity.load(kd.node_key("solo"))


def _run(coro: Any) -> Any:
    loop = new_event_loop()
    try:
        return loop.run_until_complete(asyncio.wait_for(coro, STEP_S))
    finally:
        loop.close()


async def _raw(path: Path, data: bytes, *, close_write: bool = False) -> dict[str, Any]:
    reader, writer = await asyncio.open_unix_connection(os.fspath(path))
    writer.write(data)
    if close_write:
        writer.write_eof()
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    result: dict[str, Any] = json.loads(answer)
    return result


async def _delivered(node: Node, count: int) -> None:
    seen = 0
    async for event in node.events():
        seen += event.__class__.__name__ == "Delivered"
        if seen >= count:
            return


def test_control_channel(tmp_path: Path) -> None:
    roster, identity = _solo(tmp_path / "keys")
    sock = tmp_path / "control.sock"
    left: list[bool] = []

    async def main() -> None:
        async with Node(roster, identity) as node:
            server = ControlServer(node, sock, on_leave=lambda: left.append(True))
            await server.start()
            try:
                await node.ready()
                assert stat.S_IMODE(sock.stat().st_mode) == 0o600
                answer = await asyncio.to_thread(request, sock, "status")
                doc = answer["status"]
                assert answer["ok"] and doc["node"]["name"] == "solo"
                assert doc["quorate"] and doc["members"] == ["solo"] and doc["ring"]
                assert doc["nodes"] == [
                    {
                        "id": 1,
                        "name": "solo",
                        "address": roster.nodes[0].address,
                        "membership": "member",
                    }
                ]
                # Bad requests get an error answer, never kill the node.
                assert (await _raw(sock, b"garbage\n"))["error"] == "bad_request"
                assert (await _raw(sock, b"\xff\xfe\n"))["error"] == "bad_request"
                assert (await _raw(sock, b"[1]\n"))["error"] == "unknown_command"
                assert (await _raw(sock, b'{"cmd":"x"}\n'))["error"] == "unknown_command"
                big = b'{"cmd":"' + b"a" * REQUEST_BYTES_MAX + b'"}\n'
                assert (await _raw(sock, big))["error"] == "too_large"
                # No newline: closing the writing side ends the request.
                assert (await _raw(sock, b'{"cmd":"ping"}', close_write=True))["ok"]
                # Not loaded from a directory: nothing to re-read.
                reload = await asyncio.to_thread(request, sock, "reload")
                assert not reload["ok"] and reload["error"] == "no_roster_source"
                # Idle clients hold at most CLIENTS_MAX slots, and a new one
                # pushes out the oldest that sent nothing: they cannot keep
                # an operator out.
                idle = [await asyncio.open_unix_connection(os.fspath(sock)) for _ in range(8)]
                while len(server._clients) < len(idle):  # until the server serves them all
                    await asyncio.sleep(0.01)
                assert (await _raw(sock, b'{"cmd":"ping"}\n'))["ok"]
                for _, writer in idle:
                    writer.close()
                    await writer.wait_closed()
                assert (await asyncio.to_thread(request, sock, "leave"))["leaving"]
                assert left == [True]
                again = await asyncio.to_thread(request, sock, "status")
                assert again["ok"] and again["status"]["state"] == "operational"
            finally:
                await server.close()
        assert not sock.exists()

    _run(main())
    with pytest.raises(ConfigError) as err:
        request(sock, "status")
    assert err.value.reason == "no_control_socket"


def test_control_socket_refuses_to_replace_a_file(tmp_path: Path) -> None:
    roster, identity = _solo(tmp_path / "keys")
    target = tmp_path / "control.sock"
    target.write_text("not a socket")

    async def main() -> None:
        node = Node(roster, identity)
        with pytest.raises(ConfigError) as err:
            await ControlServer(node, target, on_leave=lambda: None).start()
        assert err.value.reason == "bad_control_socket"

    _run(main())
    assert target.read_text() == "not a socket"


async def _http(port: int, head: bytes) -> tuple[str, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    status, _, rest = data.decode().partition("\r\n")
    return status, rest.partition("\r\n\r\n")[2]


def _samples(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_metrics_endpoint(tmp_path: Path) -> None:
    roster, identity = _solo(tmp_path / "keys")

    async def main() -> None:
        async with Node(roster, identity) as node:
            server = MetricsServer(node, "127.0.0.1", 0)
            await server.start()
            try:
                await node.ready()
                for i in range(3):
                    await node.broadcast(b"m%d" % i)
                await _delivered(node, 3)
                port = server.address[1]
                status, body = await _http(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                assert status == "HTTP/1.1 200 OK"
                s = _samples(body)
                assert s["ringward_deliveries_total"] == 3
                assert s["ringward_delivered_bytes_total"] == 6
                assert s["ringward_self_delivery_latency_seconds_count"] == 3
                assert s['ringward_self_delivery_latency_seconds_bucket{le="+Inf"}'] == 3
                assert s['ringward_views_total{kind="regular"}'] >= 1
                assert s['ringward_state{state="operational"}'] == 1
                assert s["ringward_quorate"] == 1
                assert "# TYPE ringward_deliveries_total counter" in body
                assert (await _http(port, b"GET /x HTTP/1.1\r\n\r\n"))[0].endswith("404 Not Found")
                bad = await _http(port, b"POST /metrics HTTP/1.1\r\n\r\n")
                assert bad[0].endswith("405 Method Not Allowed")
                assert (await _http(port, b"nonsense\r\n\r\n"))[0].endswith("400 Bad Request")
            finally:
                await server.close()

    _run(main())


def test_event_log_appends_across_runs(tmp_path: Path) -> None:
    """Two runs of one node into one log: the second is a new incarnation
    (crash + restart), ``t`` keeps increasing, every line has ``wall``, and
    the guarantee checker accepts the whole file."""
    roster, identity = _solo(tmp_path / "keys")
    log = tmp_path / "solo.jsonl"

    async def once(tag: bytes) -> None:
        # ring.seq as a state directory keeps it: ring ids never repeat.
        seq = tmp_path / "ring.seq"
        async with Node(roster, identity, event_log=log, ring_seq_file=seq) as node:
            await node.ready()
            await node.broadcast(tag + b"1")
            await node.broadcast(tag + b"2")
            await _delivered(node, 2)

    _run(once(b"a"))
    first = read_log(log)
    _run(once(b"b"))
    events = read_log(log)
    assert events[: len(first)] == first  # appended, not truncated
    kinds = [type(e) for e in events[len(first) :]]
    assert kinds[:2] == [CrashEvent, RestartEvent] and ViewEvent in kinds
    assert sum(isinstance(e, DeliverEvent) for e in events) == 4
    assert sum(isinstance(e, SendEvent) for e in events) == 4
    times = [e.t for e in events]
    assert times == sorted(times)
    assert all(e.wall is not None and e.wall > 1e9 for e in events if not isinstance(e, CrashEvent))
    report = check(events, converge=False)
    assert report.ok, report.format()


def test_event_log_torn_or_foreign_tail(tmp_path: Path) -> None:
    log = tmp_path / "n.jsonl"
    line = to_json(SendEvent(t=5.0, node=1, id="1:1:1", digest="0" * 32, safe=False))
    log.write_text(line + "\n" + line[:20])  # a process killed mid-line
    EventLogWriter(log, 1).close()
    events = read_log(log)
    assert [type(e) for e in events] == [SendEvent, CrashEvent, RestartEvent]
    assert events[-1].t == 5.0
    # Another node's log: continue its clock, no restart of ours.
    EventLogWriter(log, 2).close()
    assert len(read_log(log)) == 3
    bad = tmp_path / "bad.jsonl"
    bad.write_text("this is not a log\n")
    with pytest.raises(ConfigError) as err:
        EventLogWriter(bad, 1)
    assert err.value.reason == "bad_event_log"
