"""The service pieces that need no running node: sd_notify, the state
directory, the metrics address, the readable status (all in-process)."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from ringward.cli.node_service import parse_metrics, prepare_state
from ringward.cli.status_cmd import format_status
from ringward.engine import Engine, MessageId, State
from ringward.errors import ConfigError
from ringward.runtime import Delivered, Evicted, Rejected, ViewChanged
from ringward.runtime.ringseq import load_ring_seq, store_ring_seq
from ringward.runtime.sdnotify import STATUS_CHARS_MAX, Notifier
from ringward.runtime.statedir import StateDir, default_state_dir
from ringward.runtime.stats import (
    LATENCY_BUCKETS_S,
    PENDING_SENDS_MAX,
    Exclusion,
    Telemetry,
    exclusions,
)


def _bound_datagram(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(os.fspath(path))
    sock.settimeout(5.0)
    return sock


def test_notifier_reads_the_environment() -> None:
    assert not Notifier.from_env({}).enabled
    assert not Notifier.from_env({"NOTIFY_SOCKET": "relative"}).enabled
    n = Notifier.from_env({"NOTIFY_SOCKET": "@abstract", "WATCHDOG_USEC": "4000000"})
    assert n.enabled and n.watchdog_interval_s == 2.0
    other = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1"}
    assert os.getpid() != 1 and Notifier.from_env(other).watchdog_interval_s is None
    bad = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "soon"}
    assert Notifier.from_env(bad).watchdog_interval_s is None
    assert not Notifier.from_env({}).ready()  # a no-op outside systemd


def test_notifier_sends_datagrams(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with _bound_datagram(path) as sock:
        n = Notifier.from_env({"NOTIFY_SOCKET": str(path)})
        assert n.ready("ring R1.4,\n3 members")
        assert sock.recv(4096) == b"READY=1\nSTATUS=ring R1.4, 3 members"
        assert n.watchdog() and sock.recv(4096) == b"WATCHDOG=1"
        assert n.stopping() and sock.recv(4096) == b"STOPPING=1"
        assert n.status("x" * 1000) and len(sock.recv(4096)) == len("STATUS=") + STATUS_CHARS_MAX
    # The supervisor went away: no exception, just False.
    assert not n.watchdog()


def test_notifier_abstract_namespace() -> None:
    name = f"ringward-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5.0)
        assert Notifier.from_env({"NOTIFY_SOCKET": "@" + name}).ready()
        assert sock.recv(4096) == b"READY=1"


def test_default_state_dir_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_state_dir("n1", {"STATE_DIRECTORY": "/var/lib/x:/var/lib/y"}) == Path(
        "/var/lib/x"
    )
    assert default_state_dir("n1", {"XDG_STATE_HOME": "/s"}) == Path("/s/ringward/n1")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert default_state_dir("n1", {"XDG_STATE_HOME": "rel"}) == Path("/var/lib/ringward/n1")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("HOME", "/home/u")
    assert default_state_dir("n1", {}) == Path("/home/u/.local/state/ringward/n1")


def test_state_dir_is_private_and_locked(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "a" / "b")
    state.prepare()
    assert stat.S_IMODE(state.path.stat().st_mode) == 0o700
    fd = state.lock()
    try:
        with pytest.raises(ConfigError) as err:
            StateDir(state.path).lock()
        assert err.value.reason == "state_dir_in_use"
    finally:
        os.close(fd)
    os.close(state.lock())  # free again once the holder is gone
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o700)
    loose.chmod(0o777)
    with pytest.raises(ConfigError) as err:
        StateDir(loose).prepare()
    assert err.value.reason == "bad_state_dir"
    readable = tmp_path / "readable"
    readable.mkdir()
    readable.chmod(0o755)
    StateDir(readable).prepare()  # ours, not writable by others: tightened
    assert stat.S_IMODE(readable.stat().st_mode) == 0o700
    with pytest.raises(ConfigError) as err:
        StateDir(tmp_path / ("x" * 120)).check_socket_path()
    assert err.value.reason == "socket_path_too_long"


def test_metrics_address() -> None:
    assert parse_metrics("9100") == ("127.0.0.1", 9100)
    assert parse_metrics(":9100") == ("127.0.0.1", 9100)
    assert parse_metrics("0.0.0.0:9100") == ("0.0.0.0", 9100)
    assert parse_metrics("[::1]:0") == ("::1", 0)
    with pytest.raises(ConfigError) as err:
        parse_metrics("nowhere")
    assert err.value.reason == "bad_metrics"


def test_readable_status() -> None:
    doc = {
        "cluster": "prod",
        "roster_version": 3,
        "node": {"id": 1, "name": "node1", "address": "127.0.0.1:7400", "pid": 7, "uptime_s": 90},
        "state": "operational",
        "ring": "R1.8",
        "quorate": True,
        "members": ["node1", "node2"],
        "nodes": [
            {"id": 1, "name": "node1", "address": "127.0.0.1:7400", "membership": "member"},
            {"id": 2, "name": "node2", "address": "127.0.0.1:7401", "membership": "member"},
            {"id": 3, "name": "node3", "address": "127.0.0.1:7402", "membership": "evicted"},
        ],
        "scores": {"node2": {"slow_hold": 35.0}},
        "excluded": [
            {
                "id": 3,
                "name": "node3",
                "reason": "equivocation",
                "proof": True,
                "cooldown_left_s": 42.0,
                "self": False,
            }
        ],
        "token_rotations_per_s": 12.5,
        "backlog": 0,
        "event_backlog": 0,
        "reading_paused": False,
        "broadcasts": 4,
        "deliveries": 9,
        "datagrams_received": 100,
        "datagrams_sent": 90,
        "drops": {"bad_signature": 2},
        "metrics": None,
    }
    text = format_status(doc)
    assert "roster version 3" in text
    assert "ring              R1.8, quorate, 2 of 3 nodes" in text
    assert "node3 (id 3): equivocation (proof), cool-down 42.0 s left" in text
    assert "slow_hold=35.0" in text and "bad_signature=2" in text
    assert "up 1.5 min" in text


def test_notifier_never_blocks(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with _bound_datagram(path):  # bound, never read: its buffer fills up
        n = Notifier.from_env({"NOTIFY_SOCKET": str(path)})
        results = [n.watchdog() for _ in range(10_000)]
    assert results[0] and not results[-1]


def test_exclusions_from_the_detector() -> None:
    """Verdicts with their cool-down left; this node while rejected."""
    verdicts = {
        3: SimpleNamespace(reason="equivocation", proof=True, at=10.0),
        4: SimpleNamespace(reason="accused", proof=False, at=0.0),
    }
    cooldowns = {3: 300.0, 4: 3.0}
    engine = SimpleNamespace(
        node_id=1,
        state=State.OPERATIONAL,
        detector=SimpleNamespace(verdicts=verdicts, cooldown_s=cooldowns.__getitem__),
        timer_due=lambda name: None,
    )
    got = exclusions(cast("Engine", engine), 20.0)
    assert got == (
        Exclusion(3, "equivocation", True, 290.0, False),
        Exclusion(4, "accused", False, 0.0, False),  # over: it may rejoin
    )
    engine.state = State.REJECTED
    engine.timer_due = lambda name: 22.5 if name == "rejoin" else None
    mine = exclusions(cast("Engine", engine), 20.0, "overload")
    assert mine[0] == Exclusion(1, "overload", False, 2.5, True)
    assert exclusions(None, 1.0) == ()


def test_telemetry_counts_and_latency() -> None:
    tele = Telemetry()
    own = MessageId(1, 7)
    tele.sent(own, 5, 10.0)

    def delivered(sender: int, payload: bytes, msg_id: MessageId) -> Delivered:
        return Delivered(
            sender=sender,
            payload=payload,
            seq=3,
            safe=False,
            view="R1.4",
            msg_id=msg_id,
            sender_name=f"node{sender}",
        )

    tele.event(delivered(1, b"hello", own), 10.003)
    tele.event(delivered(2, b"x", MessageId(2, 1)), 10.004)
    view = ViewChanged(
        view_id="R1.8",
        kind="regular",
        members=(1, 2),
        joined=(2,),
        left=(),
        quorate=True,
        member_names=("node1", "node2"),
        roster_version=1,
    )
    tele.event(view, 11.0)
    tele.event(Evicted(3, "equivocation", True), 11.0)
    tele.event(Rejected("overload", 3.0), 12.0)
    assert (tele.deliveries, tele.delivered_bytes, tele.broadcast_bytes) == (2, 6, 5)
    assert tele.views["regular"] == 1 and tele.evictions["equivocation"] == 1
    assert tele.last_rejected == "overload"
    # Only our own message is timed: 3 ms, in the (2.5 ms, 5 ms] bucket.
    assert sum(tele.latency_counts) == 1
    assert tele.latency_counts[LATENCY_BUCKETS_S.index(0.005)] == 1
    for i in range(PENDING_SENDS_MAX + 10):  # never delivered: bounded table
        tele.sent(MessageId(1, 100 + i), 1, 0.0)
    assert len(tele._pending) == PENDING_SENDS_MAX


def test_ring_seq_moves_from_the_keys_to_the_state_dir(tmp_path: Path) -> None:
    legacy = tmp_path / "bundle" / "ring.seq"
    legacy.parent.mkdir()
    store_ring_seq(legacy, 42)
    state = StateDir(tmp_path / "state")
    os.close(prepare_state(state, legacy))
    assert load_ring_seq(state.ring_seq) == 42
    store_ring_seq(state.ring_seq, 50)  # the node moved on: never overwritten again
    os.close(prepare_state(state, legacy))
    assert load_ring_seq(state.ring_seq) == 50
