"""`ringward node` as a service, with real processes on 127.0.0.1: the
state directory and its control socket, `ringward status`, metrics over
HTTP, systemd notification on a fake notify socket, signals, and the event
log appended across a restart. One 3-node cluster serves every check, so
the file costs one cluster start; every wait is bounded, nothing is timed."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from test_runtime_cli import STEP_S, Proc, _cluster, _free_ports, full_view_after, marks, until

from ringward.cli import main
from ringward.eventlog import CrashEvent, DeliverEvent, RestartEvent, ViewEvent, read_log
from ringward.runtime.control import request
from ringward.sim.checker import check

pytestmark = [pytest.mark.heavy, pytest.mark.xdist_group("loopback")]

EVERYONE = ["node1", "node2", "node3"]


def _ringward(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The CLI in this process (a client, or a node refused before it
    starts): exit code, stdout, stderr."""
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class FakeSystemd:
    """A notify socket read by a thread, as systemd reads it (a queue of
    unread datagrams is short: the node would lose later messages)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: list[str] = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(os.fspath(path))
        self._sock.settimeout(0.2)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._done.is_set():
            try:
                self.seen.append(self._sock.recv(4096).decode())
            except TimeoutError:
                continue
            except OSError:
                return

    def wait_for(self, want: str) -> None:
        deadline = time.monotonic() + STEP_S
        while not any(want in m for m in self.seen):
            if time.monotonic() > deadline:
                pytest.fail(f"no {want} among the notifications {self.seen[-20:]}")
            time.sleep(0.05)

    def close(self) -> None:
        self._done.set()
        self._thread.join(STEP_S)
        self._sock.close()


def _raw_request(path: Path, data: bytes) -> dict[str, object]:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(STEP_S)
        s.connect(os.fspath(path))
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        answer: dict[str, object] = json.loads(s.makefile("rb").read())
        return answer


def test_node_as_a_service(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    _private_state_home: Path,
) -> None:
    bundles = _cluster(tmp_path, "svc", _free_ports(3))
    state1 = tmp_path / "s1"
    metrics_port = _free_tcp_port()
    log3 = tmp_path / "node3.jsonl"
    notify_path = tmp_path / "notify"
    systemd = FakeSystemd(notify_path)
    # node1 as systemd would run it: a notify socket and a 0.2 s watchdog.
    monkeypatch.setenv("NOTIFY_SOCKET", str(notify_path))
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    p1 = Proc(
        tmp_path,
        "node1",
        "--keys",
        str(bundles[0]),
        "--state-dir",
        str(state1),
        "--metrics",
        str(metrics_port),
        "--event-log",
        str(tmp_path / "node1.jsonl"),
    )
    monkeypatch.delenv("NOTIFY_SOCKET")
    monkeypatch.delenv("WATCHDOG_USEC")
    # node2 and node3 in their default state directories.
    p2 = Proc(
        tmp_path, "node2", "--keys", str(bundles[1]), "--event-log", str(tmp_path / "node2.jsonl")
    )
    p3 = Proc(tmp_path, "node3", "--keys", str(bundles[2]), "--event-log", str(log3))
    procs = [p1, p2, p3]
    try:
        until(procs, full_view_after({}, EVERYONE), "the first full view")
        systemd.wait_for("READY=1")
        systemd.wait_for("WATCHDOG=1")

        # The state directory: private, with ring.seq and the socket.
        sock1 = state1 / "control.sock"
        assert stat.S_IMODE(state1.stat().st_mode) == 0o700
        assert stat.S_ISSOCK(sock1.stat().st_mode)
        assert stat.S_IMODE(sock1.stat().st_mode) == 0o600
        assert (state1 / "ring.seq").exists() and not (bundles[0] / "ring.seq").exists()
        default2 = _private_state_home / "ringward" / "node2"
        assert (default2 / "control.sock").exists()

        # A second process on the same state directory is refused.
        code, _, err = _ringward(
            capsys, "node", "--keys", str(bundles[0]), "--state-dir", str(state1)
        )
        assert code == 2 and "[state_dir_in_use]" in err, err

        # `ringward status`, readable and JSON, by state dir and by name.
        code, out, err = _ringward(capsys, "status", "--state-dir", str(state1))
        assert code == 0, err
        assert "node node1 (id 1)" in out and "quorate, 3 of 3 nodes" in out
        assert "state             operational" in out
        for i in (1, 2, 3):
            assert f"node{i}" in out and "127.0.0.1:" in out
        assert f"http://127.0.0.1:{metrics_port}/metrics" in out
        code, out, err = _ringward(capsys, "status", "node2", "--json")
        assert code == 0, err
        doc = json.loads(out)
        assert doc["members"] == EVERYONE and doc["quorate"] and doc["node"]["name"] == "node2"
        assert [n["membership"] for n in doc["nodes"]] == ["member"] * 3
        assert doc["excluded"] == [] and doc["roster_version"] == 1
        code, _, err = _ringward(capsys, "status", "--state-dir", str(tmp_path / "nowhere"))
        assert code == 2 and "[no_control_socket]" in err

        # A malformed request gets an error; the node runs on.
        assert _raw_request(sock1, b"\x00{{{")["error"] == "bad_request"
        assert _raw_request(sock1, b'{"cmd": "status"}')["ok"] is True

        # Metrics over HTTP.
        p1.send("hello")
        until(procs, lambda p: p.data("hello") == ["hello"], "hello delivered")
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=STEP_S) as reply:
            assert reply.status == 200
            body = reply.read().decode()
        assert "ringward_members 3" in body and "ringward_quorate 1" in body
        assert "ringward_self_delivery_latency_seconds_count 1" in body

        # SIGHUP re-reads the roster (unchanged here) instead of killing.
        p2.p.send_signal(signal.SIGHUP)
        p1.send("after-hup")
        until(procs, lambda p: p.data("after-hup") == ["after-hup"], "a line after SIGHUP")
        assert p2.p.poll() is None
        # The same through the control socket.
        reload = request(sock1, "reload")
        assert reload == {"ok": True, "reloaded": False, "roster_version": 1}

        # node3 restarts on the same event log: appended, a new incarnation.
        seen = marks([p1, p2])
        assert p3.stop(signal.SIGTERM) == 0
        p3 = Proc(tmp_path, "node3", "--keys", str(bundles[2]), "--event-log", str(log3))
        procs = [p1, p2, p3]
        until([p1, p2], full_view_after(seen, EVERYONE), "node3 back")
        until([p3], full_view_after({}, EVERYONE), "node3 in a full view")
        p3.send("again")
        until(procs, lambda p: p.data("again") == ["again"], "a line from node3")
        assert p3.stop(signal.SIGINT) == 0
        events = read_log(log3)
        kinds = [type(e) for e in events]
        restart = kinds.index(RestartEvent)
        assert kinds[restart - 1] is CrashEvent and ViewEvent in kinds[:restart]
        assert ViewEvent in kinds[restart:]
        assert {e.t for e in events} and [e.t for e in events] == sorted(e.t for e in events)
        assert all(e.wall for e in events if not isinstance(e, CrashEvent))
        ids = [e.id for e in events if isinstance(e, DeliverEvent)]
        assert len(ids) == len(set(ids)) >= 3

        # SIGTERM: STOPPING=1, a graceful exit, the socket removed.
        assert p1.stop(signal.SIGTERM) == 0
        systemd.wait_for("STOPPING=1")
        assert not sock1.exists()
        # `leave` through the control socket: a graceful exit.
        assert request(default2 / "control.sock", "leave")["ok"] is True
        assert p2.p.wait(STEP_S) == 0
        for p in procs:
            assert "Traceback" not in p.stderr(), p.stderr()
        # The three logs together (each node's lines in its order) pass the
        # guarantee checker, node3's restart included.
        logs = [tmp_path / "node1.jsonl", tmp_path / "node2.jsonl", log3]
        report = check([e for log in logs for e in read_log(log)], converge=False)
        assert report.ok, report.format()
    finally:
        systemd.close()
        for p in procs:
            p.close()
