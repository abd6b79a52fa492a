"""`ringward node` as real processes on 127.0.0.1.

One scenario walks a 3-process cluster through agreement, a kill -9, a
restart and an intruder from another cluster, then checks that every way of
stopping a node exits 0 without a traceback. Timers are short (roster
params) so the whole file runs in well under a minute; every wait is bounded
by a generous functional timeout and nothing asserts on timing.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ringward.crypto import KeyDir, ProtocolParams
from ringward.eventlog import DeliverEvent, read_log

# Generous: a loaded 2-CPU machine starting Python processes is slow.
STEP_S = 30.0
# Short timers so that a kill is noticed in about a second, yet not so short
# that a busy machine splits the ring spuriously.
PARAMS = ProtocolParams(token_timeout_ms=500, consensus_timeout_ms=1000, join_timeout_ms=50)

Line = dict[str, Any]
NODE = [sys.executable, "-m", "ringward", "node"]
# Clusters on loopback with wall-clock timers: one at a time (tests/conftest.py).
pytestmark = [pytest.mark.heavy, pytest.mark.xdist_group("loopback")]


def _free_ports(count: int) -> list[int]:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _cluster(
    path: Path, name: str, ports: list[int], params: ProtocolParams = PARAMS
) -> list[Path]:
    """A cluster in ``path`` and one exported bundle per node."""
    kd = KeyDir(path / name)
    kd.init(name, [(f"node{i}", f"127.0.0.1:{p}") for i, p in enumerate(ports, 1)], params=params)
    return [kd.export_node(f"node{i}", path / f"{name}-node{i}") for i in range(1, len(ports) + 1)]


class Proc:
    """One `ringward node` process; stdout lines parsed as they come."""

    def __init__(self, tmp: Path, label: str, *args: str) -> None:
        self.label = label
        self.err_path = tmp / f"{label}-{time.monotonic_ns()}.err"
        self._err = self.err_path.open("wb")
        self.p = subprocess.Popen(
            [*NODE, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._err,
        )
        self.lines: list[Line] = []
        self._queue: queue.Queue[Line | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        for raw in self.p.stdout:
            self._queue.put(json.loads(raw))
        self._queue.put(None)

    def send(self, *texts: str) -> None:
        assert self.p.stdin is not None
        self.p.stdin.write("".join(t + "\n" for t in texts).encode())
        self.p.stdin.flush()

    def pump(self, timeout: float) -> bool:
        """Move arrived lines into ``lines``; False once stdout ended."""
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return True
        while True:
            if item is None:
                return False
            self.lines.append(item)
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return True

    def data(self, prefix: str) -> list[str]:
        return [
            x["data"]
            for x in self.lines
            if x["event"] == "deliver" and x["data"].startswith(prefix)
        ]

    def views(self) -> list[Line]:
        return [x for x in self.lines if x["event"] == "view" and x["kind"] == "regular"]

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def stop(self, sig: int) -> int:
        self.p.send_signal(sig)
        try:
            return self.p.wait(STEP_S)
        finally:
            self.close()

    def close(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(STEP_S)
        for stream in (self.p.stdin, self.p.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self._err.close()


def until(procs: list[Proc], cond: Callable[[Proc], bool], what: str) -> None:
    """Wait (bounded) until ``cond`` holds for every process."""
    deadline = time.monotonic() + STEP_S
    while True:
        pending = [p for p in procs if not cond(p)]
        if not pending:
            return
        if time.monotonic() > deadline:
            detail = "\n".join(
                f"--- {p.label}: {p.lines[-5:]}\n{p.stderr()[-2000:]}" for p in pending
            )
            pytest.fail(f"timed out waiting for {what}\n{detail}")
        for p in pending:
            p.pump(0.05)


def full_view_after(marks: dict[str, int], members: list[str]) -> Callable[[Proc], bool]:
    """A regular view with exactly ``members``, beyond the views a process
    had printed when ``marks`` was taken (by label; none: from the start)."""
    return lambda p: any(v["members"] == members for v in p.views()[marks.get(p.label, 0) :])


def marks(procs: list[Proc]) -> dict[str, int]:
    return {p.label: len(p.views()) for p in procs}


def test_cluster_of_processes(tmp_path: Path) -> None:
    ports = _free_ports(4)
    bundles = _cluster(tmp_path, "prod", ports[:3])
    log = tmp_path / "node1.jsonl"
    p1 = Proc(tmp_path, "node1", "--keys", str(bundles[0]), "--event-log", str(log))
    p2 = Proc(tmp_path, "node2", "--keys", str(bundles[1]))
    p3 = Proc(tmp_path, "node3", "--keys", str(bundles[2]))
    procs = [p1, p2, p3]
    everyone = ["node1", "node2", "node3"]
    intruder: Proc | None = None
    try:
        until(procs, full_view_after({}, everyone), "the first full view")

        # Lines written to one node are delivered everywhere, in order.
        lines = [f"a{i}" for i in range(20)]
        p1.send(*(f"!safe {t}" if t == "a5" else t for t in lines))
        until(procs, lambda p: len(p.data("a")) >= 20, "the a-lines")
        for p in procs:
            assert p.data("a") == lines
            safe = [x["safe"] for x in p.lines if x["event"] == "deliver"]
            assert safe.count(True) == 1
            assert {x["sender"] for x in p.lines if x["event"] == "deliver"} == {"node1"}

        # kill -9: the survivors install a view without it and carry on.
        seen = marks(procs)
        p3.p.kill()
        p3.close()
        survivors = [p1, p2]
        until(survivors, full_view_after(seen, ["node1", "node2"]), "a view without node3")
        p2.send(*(f"b{i}" for i in range(10)))
        until(survivors, lambda p: len(p.data("b")) >= 10, "the b-lines")
        assert p1.data("b") == p2.data("b") == [f"b{i}" for i in range(10)]

        # Restarted, it rejoins: a view with all three, and it talks again.
        seen = marks(survivors)
        p3 = Proc(tmp_path, "node3", "--keys", str(bundles[2]))
        procs = [p1, p2, p3]
        until(survivors, full_view_after(seen, everyone), "a full view again")
        until([p3], full_view_after({}, everyone), "node3 back in a full view")
        p3.send(*(f"c{i}" for i in range(10)))
        until(procs, lambda p: len(p.data("c")) >= 10, "the c-lines")
        assert p1.data("c") == p2.data("c") == p3.data("c") == [f"c{i}" for i in range(10)]

        # An intruder from another cluster, aimed at the same ports, never
        # joins: its lines never show up, it never appears in a view.
        views_before = [len(p.views()) for p in procs]
        other = _cluster(tmp_path, "other", ports[:3])
        intruder = Proc(
            tmp_path,
            "intruder",
            "--keys",
            str(other[0]),
            "--bind",
            f"127.0.0.1:{ports[3]}",
            # Also called node1: its own state directory, not prod node1's.
            "--state-dir",
            str(tmp_path / "intruder-state"),
            "--exit-on-eof",
        )
        intruder.send(*(f"evil{i}" for i in range(5)))
        # It forms a ring of its own and delivers its lines there...
        until([intruder], lambda p: len(p.data("evil")) >= 5, "the intruder's own ring")
        assert all(v["members"] == ["node1"] for v in intruder.views())
        # ...while its joins keep reaching our ports for a few token
        # timeouts; then a marker shows that our nodes moved on without it.
        time.sleep(4 * PARAMS.token_timeout_ms / 1000)
        p1.send("d-end")
        until(procs, lambda p: p.data("d-end") == ["d-end"], "the marker")
        for p in procs:
            assert p.data("evil") == []
            assert len(p.views()) == views_before[procs.index(p)], "the intruder caused a view"
        assert intruder.data("a") == intruder.data("d") == []

        # Every way out exits 0 without a traceback.
        assert intruder.p.stdin is not None
        intruder.p.stdin.close()  # --exit-on-eof
        assert intruder.p.wait(STEP_S) == 0
        assert p3.p.stdin is not None
        p3.p.stdin.close()  # without --exit-on-eof it keeps running
        time.sleep(0.3)
        assert p3.p.poll() is None
        assert p3.stop(signal.SIGINT) == 0
        assert p2.stop(signal.SIGTERM) == 0
        assert p1.stop(signal.SIGINT) == 0
        for p in [*procs, intruder]:
            assert "Traceback" not in p.stderr(), p.stderr()

        # Each node keeps its ring sequence for the next start, in its state
        # directory (tests/cli/conftest.py), not in its key bundle.
        state = Path(os.environ["XDG_STATE_HOME"]) / "ringward"
        assert all(int((state / f"node{i}" / "ring.seq").read_text()) > 0 for i in (1, 2, 3))
        assert not any((b / "ring.seq").exists() for b in bundles)
        events = read_log(log)
        ids = [e.id for e in events if isinstance(e, DeliverEvent)]
        assert len(ids) == len(set(ids)) >= 20 + 10 + 10 + 1
    finally:
        for p in [*procs, *([intruder] if intruder else [])]:
            p.close()


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*NODE, *args],
        capture_output=True,
        text=True,
        timeout=STEP_S,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_keys_errors_are_one_line(tmp_path: Path) -> None:
    ports = _free_ports(3)
    bundles = _cluster(tmp_path, "prod", ports)
    admin = tmp_path / "prod"
    for args, reason in [
        (["--keys", str(admin)], "name_required"),
        (["--keys", str(admin), "--name", "nobody"], "unknown_node"),
        (["--keys", str(bundles[0]), "--name", "node2"], "wrong_name"),
        (["--keys", str(tmp_path / "missing")], "missing_dir"),
    ]:
        done = _run_cli(*args)
        assert done.returncode == 2, done
        assert done.stderr.count("\n") == 1 and f"[{reason}]" in done.stderr, done.stderr
        assert done.stdout == ""


def test_exit_on_eof_from_an_admin_dir(tmp_path: Path) -> None:
    """A lone node of a 1-node cluster: a pipeline in, JSON lines out."""
    kd = KeyDir(tmp_path / "solo")
    port = _free_ports(1)[0]
    kd.init("solo", [("only", f"127.0.0.1:{port}")], params=PARAMS)
    done = subprocess.run(
        [*NODE, "--keys", str(kd.path), "--name", "only", "--exit-on-eof"],
        input="one\n\n!safe two\nthree",
        capture_output=True,
        text=True,
        timeout=STEP_S,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "error::ResourceWarning"},
    )
    assert done.returncode == 0, done.stderr
    out = [json.loads(x) for x in done.stdout.splitlines()]
    assert out[0] == {
        "event": "view",
        "view": out[0]["view"],
        "kind": "regular",
        "members": ["only"],
        "quorate": True,
    }
    delivered = [(x["data"], x["safe"], x["sender"]) for x in out if x["event"] == "deliver"]
    assert delivered == [("one", False, "only"), ("two", True, "only"), ("three", False, "only")]


@pytest.mark.parametrize(
    ("behaviour", "reason", "back"),
    [("equivocate", "equivocation", False), ("overload", "overload", True)],
)
def test_misbehaving_process_is_evicted(
    tmp_path: Path, behaviour: str, reason: str, back: bool
) -> None:
    """`ringward node --misbehave`: real processes on loopback evict an
    equivocating node with a proof, and an overloaded one by its own signed
    load reports, which then rejoins by itself once healthy."""
    ports = _free_ports(4)
    bundles = _cluster(tmp_path, "mb", ports)
    procs = [Proc(tmp_path, f"node{i}", "--keys", str(bundles[i - 1])) for i in (1, 2, 3)]
    bad = Proc(
        tmp_path,
        "node4",
        "--keys",
        str(bundles[3]),
        "--misbehave",
        behaviour,
        "--misbehave-after",
        "2",
    )
    everyone = ["node1", "node2", "node3", "node4"]
    try:
        until([*procs, bad], full_view_after({}, everyone), "the first full view")
        seen = marks(procs)
        for i in range(40):
            procs[i % 3].send(f"m{i}")
            for p in procs:
                p.pump(0.05)

        def evicted(p: Proc) -> bool:
            return any(
                x["event"] == "evict" and x["target"] == "node4" and x["reason"] == reason
                for x in p.lines
            )

        until(procs, evicted, f"node4 evicted for {reason}")
        until(procs, full_view_after(seen, everyone[:3]), "a view without node4")
        until([bad], lambda p: any(x["event"] == "rejected" for x in p.lines), "node4 rejected")
        if back:
            seen = marks(procs)
            until(procs, full_view_after(seen, everyone), "node4 back in a full view")
        until(procs, lambda p: len(p.data("m")) >= 40, "the m-lines")
        assert procs[0].data("m") == procs[1].data("m") == procs[2].data("m")
    finally:
        for p in [*procs, bad]:
            p.close()


def test_status_every_prints_state_view_and_scores(tmp_path: Path) -> None:
    """`--status-every`: a periodic status line (state, view, scores by peer
    name); a bad period is a one-line usage error."""
    kd = KeyDir(tmp_path / "solo")
    kd.init("solo", [("only", f"127.0.0.1:{_free_ports(1)[0]}")], params=PARAMS)
    keys = ["--keys", str(kd.path), "--name", "only"]
    done = _run_cli(*keys, "--status-every", "0")
    assert done.returncode == 2 and "[bad_status_every]" in done.stderr, done.stderr
    node = Proc(tmp_path, "only", *keys, "--status-every", "0.1")
    try:

        def operational(p: Proc) -> bool:
            return any(
                x["event"] == "status" and x["state"] == "operational" and x["view"]
                for x in p.lines
            )

        until([node], operational, "an operational status line")
        status = next(x for x in node.lines if x["event"] == "status")
        assert set(status) == {"event", "state", "view", "scores"}
        assert status["scores"] == {}  # alone: nobody to suspect
        assert node.stop(signal.SIGTERM) == 0
    finally:
        node.close()


def test_one_pause_shorter_than_the_token_timeout_is_not_overload(tmp_path: Path) -> None:
    """A node stopped for 0.75 s (a long GC pause; SIGSTOP here) with the
    default 1 s token timeout stays in the ring. Its event loop ran late by
    the whole pause at one probe and on time at the next: not behind, so no
    overloaded report (docs/fault-detector.md, "Overload"), although a ring
    with messages to order visits it many times between two probes (an idle
    ring holds the token, one visit per node every few hundred
    milliseconds: node1 keeps it busy)."""
    params = ProtocolParams(token_timeout_ms=1000, consensus_timeout_ms=1200, join_timeout_ms=50)
    bundles = _cluster(tmp_path, "pause", _free_ports(3), params)
    procs = [Proc(tmp_path, f"node{i}", "--keys", str(bundles[i - 1])) for i in (1, 2, 3)]
    try:
        until(procs, full_view_after({}, ["node1", "node2", "node3"]), "the first full view")
        for _ in range(3):
            procs[2].p.send_signal(signal.SIGSTOP)
            time.sleep(0.75)
            procs[2].p.send_signal(signal.SIGCONT)
            resumed = time.monotonic()
            for k in range(30):  # its next visits' reports
                procs[0].send(f"busy {k}")
                for p in procs:
                    p.pump(0.05)
            # One pause at a time: pump returns at the first line, and the
            # 30 sends took 0.1 s, so the next pause began at the next probe
            # and the loop was late at two in a row (behind, rightly).
            while time.monotonic() - resumed < 1.5:
                for p in procs:
                    p.pump(0.05)
        evictions = [x for p in procs for x in p.lines if x["event"] in ("evict", "rejected")]
        assert evictions == [], evictions
    finally:
        for p in procs:
            p.close()
