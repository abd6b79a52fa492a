"""Regression tests from an adversarial review of the operations code
(issue #18): what a wrong path, a hostile local user or a careless
operator could do to the event log, the state directory, the control
socket and the metrics endpoint (all in-process)."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
from pathlib import Path

import pytest

from ringward.cli.node_service import prepare_state
from ringward.crypto import Identity, KeyDir, ProtocolParams, Roster
from ringward.errors import ConfigError
from ringward.eventlog import LINE_BYTES_MAX, SendEvent, to_json
from ringward.runtime import Node, metrics, new_event_loop
from ringward.runtime.bundle import KeySource
from ringward.runtime.control import ControlServer, request
from ringward.runtime.eventlog import EventLogWriter
from ringward.runtime.metrics import MetricsServer
from ringward.runtime.ringseq import load_ring_seq, store_ring_seq
from ringward.runtime.sdnotify import Notifier
from ringward.runtime.statedir import StateDir, default_state_dir

FAST = ProtocolParams(token_timeout_ms=400, consensus_timeout_ms=800, join_timeout_ms=40)

# -- event log: a wrong --event-log path loses nothing ----------------------


@pytest.mark.parametrize(
    "content",
    [
        b"some notes, no newline at the end",
        b"line one\nline two without newline",
        b"x" * (LINE_BYTES_MAX + 10),  # one huge line: no newline in the tail read
        b'{"ev":"send"}\n' + b"\x00\x01binary",
    ],
)
def test_event_log_never_truncates_a_file_that_is_not_a_log(tmp_path: Path, content: bytes) -> None:
    other = tmp_path / "notes.txt"
    other.write_bytes(content)
    with pytest.raises(ConfigError) as err:
        EventLogWriter(other, 1)
    assert err.value.reason == "bad_event_log"
    assert other.read_bytes() == content


def test_event_log_still_cuts_a_torn_line_of_its_own(tmp_path: Path) -> None:
    log = tmp_path / "n.jsonl"
    line = to_json(SendEvent(t=5.0, node=1, id="1:1:1", digest="0" * 32, safe=False))
    log.write_text(line + "\n" + line[:20])
    EventLogWriter(log, 1).close()
    assert log.read_text().splitlines()[0] == line
    assert log.read_text().endswith("\n")
    # A log that is one torn line only (killed during its first write).
    first = tmp_path / "first.jsonl"
    first.write_text(line[:30])
    EventLogWriter(first, 1).close()
    assert first.read_text() == ""


# -- state directory ---------------------------------------------------------


def test_state_dir_never_changes_the_mode_of_a_shared_directory(tmp_path: Path) -> None:
    # `--state-dir /var/lib` (or STATE_DIRECTORY=/srv) must not chmod 0700 a
    # directory that holds other programs' files.
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    (shared / "postgresql").mkdir()
    StateDir(shared).prepare()
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755


@pytest.mark.parametrize("parent_mode", [0o777, 0o770])
def test_state_dir_under_a_parent_others_can_write_is_refused(
    tmp_path: Path, parent_mode: int
) -> None:
    # Whoever can write the parent can swap the state directory for a
    # symlink between the check and the use (node.lock, control.sock and
    # ring.seq would then be created wherever the link points).
    parent = tmp_path / "parent"
    parent.mkdir()
    parent.chmod(parent_mode)
    with pytest.raises(ConfigError) as err:
        StateDir(parent / "node1").prepare()
    assert err.value.reason == "bad_state_dir"
    assert "writable by others" in err.value.message
    # ... and so is one further down, below such a directory.
    with pytest.raises(ConfigError) as err:
        StateDir(parent / "a" / "node1").prepare()
    assert err.value.reason == "bad_state_dir"


def test_state_dir_under_a_sticky_shared_parent_is_fine(tmp_path: Path) -> None:
    parent = tmp_path / "tmp"
    parent.mkdir()
    parent.chmod(0o1777)  # like /tmp: others cannot rename what is ours
    StateDir(parent / "node1").prepare()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown")
def test_state_dir_under_a_parent_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    parent = tmp_path / "var-lib-ringward"
    parent.mkdir(mode=0o755)
    os.chown(parent, 54321, 54321)
    with pytest.raises(ConfigError) as err:
        StateDir(parent / "node1").prepare()
    assert err.value.reason == "bad_state_dir"
    parent.chmod(0o1777)  # sticky: its owner can still replace what is in it
    with pytest.raises(ConfigError) as err:
        StateDir(parent / "node1").prepare()
    assert err.value.reason == "bad_state_dir"


# -- metrics: idle connections cannot keep Prometheus out --------------------


def _solo(path: Path) -> tuple[Roster, Identity]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kd = KeyDir(path)
    roster = kd.init("ops", [("solo", f"127.0.0.1:{port}")], params=FAST)
    return roster, Identity.load(kd.node_key("solo"))


async def _scrape(port: int) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    return data.decode().partition("\r\n")[0]


def test_metrics_idle_connections_cannot_keep_a_scrape_out(tmp_path: Path) -> None:
    # An endpoint bound beyond loopback (for a remote Prometheus) must not
    # be blinded by anyone who opens CLIENTS_MAX connections and waits.
    roster, identity = _solo(tmp_path / "keys")

    async def main() -> None:
        async with Node(roster, identity) as node:
            server = MetricsServer(node, "127.0.0.1", 0)
            await server.start()
            try:
                port = server.address[1]
                idle = [
                    await asyncio.open_connection("127.0.0.1", port)
                    for _ in range(metrics.CLIENTS_MAX * 3)
                ]
                while len(server._clients) < metrics.CLIENTS_MAX:
                    await asyncio.sleep(0.01)
                for _ in range(3):
                    assert await _scrape(port) == "HTTP/1.1 200 OK"
                for _, writer in idle:
                    writer.close()
                    await writer.wait_closed()
                while len(server._clients):  # the server saw them go
                    await asyncio.sleep(0.01)
            finally:
                await server.close()

    loop = new_event_loop()
    try:
        loop.run_until_complete(asyncio.wait_for(main(), 30.0))
    finally:
        loop.close()


# -- state directory: where, and ring.seq carried over ----------------------


def test_a_relative_state_directory_variable_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    # systemd sets absolute paths; a relative one would follow the cwd.
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert default_state_dir("n1", {"STATE_DIRECTORY": "rel/x"}) == Path("/var/lib/ringward/n1")


def test_ring_seq_carried_over_never_goes_down(tmp_path: Path) -> None:
    legacy = tmp_path / "bundle" / "ring.seq"
    legacy.parent.mkdir()
    state = StateDir(tmp_path / "state")
    state.prepare()
    store_ring_seq(state.ring_seq, 7)  # e.g. a fresh state directory, after a wipe
    store_ring_seq(legacy, 42)  # what the node reached before the upgrade
    os.close(prepare_state(state, legacy))
    assert load_ring_seq(state.ring_seq) == 42
    legacy.write_text("garbage\n")  # a damaged old file no longer blocks the start
    os.close(prepare_state(state, legacy))
    assert load_ring_seq(state.ring_seq) == 42


def test_a_new_event_log_is_private(tmp_path: Path) -> None:
    # Payload digests are unkeyed BLAKE2b: a short payload can be found by
    # trying candidates, so other local users must not read the log.
    log = tmp_path / "n.jsonl"
    EventLogWriter(log, 1).close()
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    shared = tmp_path / "shared.jsonl"
    shared.touch(mode=0o640)
    shared.chmod(0o640)
    EventLogWriter(shared, 1).close()
    assert stat.S_IMODE(shared.stat().st_mode) == 0o640  # the operator's choice stays


def test_a_status_that_is_not_json_still_gets_an_answer(tmp_path: Path) -> None:
    # A NaN (a rate over no time) or a value JSON lacks must give the
    # client an error answer, not a closed connection and a logged traceback.
    roster, identity = _solo(tmp_path / "keys")
    sock = tmp_path / "control.sock"

    async def main() -> None:
        async with Node(roster, identity) as node:
            server = ControlServer(
                node, sock, on_leave=lambda: None, extra=lambda: {"rate": float("nan")}
            )
            await server.start()
            try:
                answer = await asyncio.to_thread(request, sock, "status")
                assert answer == {
                    "ok": False,
                    "error": "internal",
                    "message": "the answer is not JSON",
                }
                assert (await asyncio.to_thread(request, sock, "ping"))["ok"]
            finally:
                await server.close()

    loop = new_event_loop()
    try:
        loop.run_until_complete(asyncio.wait_for(main(), 30.0))
    finally:
        loop.close()


def test_a_key_source_never_shows_its_passphrase() -> None:
    # Node.from_dir keeps the passphrase to open a rotated key later; a
    # repr in a log line or a traceback must not carry it.
    source = KeySource(Path("/etc/ringward/node1"), "node1", "correct horse battery")
    assert "correct horse" not in repr(source) and "correct horse" not in str(source)


@pytest.mark.parametrize(
    "value",
    ["relative/notify.sock", "/" + "x" * 200, "@" + "y" * 200, "@", "vsock:2:1234", "\0bad"],
)
def test_odd_notify_sockets_never_raise(value: str) -> None:
    notifier = Notifier.from_env({"NOTIFY_SOCKET": value, "WATCHDOG_USEC": "-5"})
    assert notifier.watchdog_interval_s is None
    assert notifier.ready("up") is False  # not sent, and no exception
    assert notifier.stopping() is False
