"""A throw-away cluster of real ``ringward node`` processes on loopback.

Shared by ``ringward demo`` and ``ringward bench``: provision a key
directory in a temporary directory, find free consecutive UDP ports, and
(for the demo) run each node as ``python -m ringward node`` in its own
process group, reading its JSON Lines stdout in a thread (deliveries, views,
evictions, and a status line with suspicion scores every
:data:`STATUS_EVERY_S`) and writing the lines it should broadcast to its
stdin.

Every child is started with ``start_new_session=True`` so that a Ctrl-C in
the terminal reaches only the parent, which then stops the children in an
order of its choosing (see :meth:`LocalCluster.stop_all`), and so that
``os.killpg`` can always remove a child together with anything it spawned.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from ringward.crypto.keydir import KeyDir
from ringward.crypto.roster import ProtocolParams, Roster
from ringward.errors import ConfigError

__all__ = [
    "NODES_MAX",
    "NODES_MIN",
    "STATUS_EVERY_S",
    "ClusterEvent",
    "LocalCluster",
    "NodeProcess",
    "free_port_block",
    "provision",
]

NODES_MIN: Final = 3
NODES_MAX: Final = 9
# Port blocks are drawn from this range: above the usual registered services,
# below Linux's default ephemeral range (32768+) where the kernel picks
# source ports for other programs' sockets.
_PORT_LOW: Final = 20000
_PORT_HIGH: Final = 32000
# Random blocks tried before giving up: a busy machine rarely needs two.
_PORT_ATTEMPTS: Final = 200
# How long a node may take to exit after SIGTERM before it is killed.
_STOP_GRACE_S: Final = 10.0
# Each node prints its state and suspicion scores this often (--status-every).
STATUS_EVERY_S: Final = 0.5


def free_port_block(count: int, host: str = "127.0.0.1") -> int:
    """The first of ``count`` consecutive UDP ports that are free on
    ``host`` right now (bind-tested together). Another program may still
    take one before the nodes bind it; the window is short."""
    rng = random.Random()  # noqa: S311 - spreading port choices, not secrecy
    for _ in range(_PORT_ATTEMPTS):
        base = rng.randrange(_PORT_LOW, _PORT_HIGH - count)
        socks: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind((host, port))
        except OSError:
            continue
        else:
            return base
        finally:
            for s in socks:
                s.close()
    raise ConfigError("no_free_ports", f"no {count} consecutive free UDP ports on {host}")


def provision(
    directory: Path, nodes: int, *, cluster: str = "demo", params: ProtocolParams | None = None
) -> Roster:
    """``nodes`` nodes (``node1``...) on 127.0.0.1 and free consecutive
    ports, keys unencrypted (they live only as long as the temp dir)."""
    base = free_port_block(nodes)
    addresses = [(f"node{i}", f"127.0.0.1:{base + i - 1}") for i in range(1, nodes + 1)]
    return KeyDir(directory).init(cluster, addresses, params=params)


@dataclass(frozen=True, slots=True)
class ClusterEvent:
    """Something the demo shows on its timeline. ``t`` is monotonic time."""

    t: float
    kind: str  # view, evict, rejected, rejoin, or a timeline note's (equivocate, overload)
    node: str
    text: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class _Incarnation:
    """One process of one node: when it started and where it logs."""

    number: int
    log: Path
    started: float
    killed: float | None = None


class NodeProcess:
    """One node slot of the cluster; restarts make new incarnations.

    The reader thread updates the counters under ``lock``; the parent reads
    them for display. ``on_event`` is called from the reader thread.
    """

    def __init__(
        self,
        name: str,
        node_id: int,
        keydir: Path,
        logdir: Path,
        on_event: Callable[[ClusterEvent], None],
    ) -> None:
        self.name = name
        self.node_id = node_id
        self._keydir = keydir
        self._logdir = logdir
        self._on_event = on_event
        self.lock = threading.Lock()
        self.incarnations: list[_Incarnation] = []
        self.proc: subprocess.Popen[bytes] | None = None
        self._err: IO[bytes] | None = None
        self._extra_args: tuple[str, ...] = ()
        # Display state (reset per incarnation where it says so).
        self.view: str | None = None
        self.members: tuple[str, ...] = ()
        self.deliveries = 0  # all incarnations
        self.last_seq: int | None = None
        self.written = 0  # lines written to stdin, all incarnations
        self.last_written: str | None = None
        self.own_delivered: str | None = None  # last own payload delivered
        self.last_delivery: tuple[str, int] | None = None
        # From the node's status, evict and rejected lines (per incarnation).
        self.state: str | None = None
        self.status_at: float | None = None  # monotonic time of the last status line
        self.status_gap = 0.0  # seconds between the last two status lines
        self.scores: dict[str, dict[str, float]] = {}
        self.rejected: str | None = None  # the reason, while it is out
        self.rejections = 0  # all incarnations

    @property
    def up(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def ready(self) -> bool:
        """Up, not rejected, and in a regular configuration (so its stdin is
        broadcast promptly rather than queued behind a forming ring or a
        cool-down)."""
        with self.lock:
            return self.up and self.view is not None and self.rejected is None

    def start(self, extra_args: tuple[str, ...] | None = None) -> None:
        """Start a new incarnation (the previous one must be gone), with
        ``extra_args`` for ``ringward node`` (default: the previous ones)."""
        if extra_args is not None:
            self._extra_args = extra_args
        number = len(self.incarnations) + 1
        log = self._logdir / f"{self.name}.{number}.jsonl"
        self._err = (self._logdir / f"{self.name}.{number}.err").open("wb")
        cmd = [
            sys.executable,
            "-m",
            "ringward",
            "node",
            "--keys",
            str(self._keydir),
            "--name",
            self.name,
            "--event-log",
            str(log),
            # The demo's own state, apart from any real node of that name.
            "--state-dir",
            str(self._logdir / f"{self.name}.state"),
            # If the demo dies without cleaning up, stdin closes and the
            # node exits by itself instead of running on as an orphan.
            "--exit-on-eof",
            "--status-every",
            str(STATUS_EVERY_S),
            # stop_all freezes and stops the whole cluster at once: a leave
            # announcement would make the last survivors log smaller views.
            "--no-leave",
            *self._extra_args,
        ]
        started = time.monotonic()
        # Own session: Ctrl-C reaches only the demo, and killpg reaches the
        # whole child.
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._err,
            start_new_session=True,
        )
        self.incarnations.append(_Incarnation(number, log, started))
        with self.lock:
            self.view, self.members, self.last_seq = None, (), None
            self.own_delivered = self.last_written = None
            self.last_delivery = None
            self.state, self.scores, self.rejected = None, {}, None
            self.status_at, self.status_gap = None, 0.0
        threading.Thread(
            target=self._read, args=(self.proc,), name=f"demo-{self.name}", daemon=True
        ).start()

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(line, dict):
                continue
            self._line(line)
        proc.wait()

    def _line(self, line: dict[str, Any]) -> None:
        event = line.get("event")
        if event == "status":
            self._status(line)
        elif event == "evict":
            target, reason = str(line.get("target")), str(line.get("reason"))
            how = "proof" if line.get("proof") else "accusations"
            self._on_event(
                ClusterEvent(
                    time.monotonic(),
                    "evict",
                    self.name,
                    f"{target} EVICTED for {reason} ({how})",
                    {"target": target, "reason": reason, "proof": bool(line.get("proof"))},
                )
            )
        elif event == "rejected":
            reason = str(line.get("reason"))
            with self.lock:
                self.rejected = reason
                self.rejections += 1
            self._on_event(
                ClusterEvent(
                    time.monotonic(),
                    "rejected",
                    self.name,
                    f"{self.name} learns it was evicted ({reason}), "
                    f"cool-down {line.get('cooldown_s')} s",
                    {"reason": reason},
                )
            )
        elif event == "deliver":
            with self.lock:
                self.deliveries += 1
                self.last_seq = line.get("seq")
                self.last_delivery = (str(line.get("view")), int(line.get("seq", 0)))
                if line.get("sender") == self.name:
                    self.own_delivered = str(line.get("data"))
        elif event == "view":
            members = tuple(str(m) for m in line.get("members", ()))
            kind = str(line.get("kind"))
            rejoined = False
            if kind == "regular":
                with self.lock:
                    self.view, self.members = str(line.get("view")), members
                    # Back among the others, not merely alone in a ring of
                    # its own.
                    if self.rejected is not None and len(members) > 1:
                        self.rejected, rejoined = None, True
            self._on_event(
                ClusterEvent(
                    time.monotonic(),
                    "view",
                    self.name,
                    f"{kind} view {line.get('view')}: {','.join(members)}",
                    {"view": line.get("view"), "kind": kind, "members": members},
                )
            )
            if rejoined:
                self._on_event(
                    ClusterEvent(
                        time.monotonic(),
                        "rejoin",
                        self.name,
                        f"{self.name} rejoined: view {line.get('view')}: {','.join(members)}",
                        {"view": line.get("view"), "members": members},
                    )
                )

    def _status(self, line: dict[str, Any]) -> None:
        raw = line.get("scores")
        scores: dict[str, dict[str, float]] = {}
        if isinstance(raw, dict):
            for peer, signals in raw.items():
                if isinstance(signals, dict):
                    scores[str(peer)] = {
                        str(k): float(v) for k, v in signals.items() if isinstance(v, int | float)
                    }
        now = time.monotonic()
        with self.lock:
            self.state = str(line.get("state"))
            self.scores = scores
            if self.status_at is not None:
                self.status_gap = now - self.status_at
            self.status_at = now

    def status_lag(self, now: float) -> float | None:
        """How late this node's status lines run: the longer of the last
        gap between two and the time since the last (None before the
        first). About STATUS_EVERY_S for a healthy process; more for one
        that is blocked or starved of CPU."""
        with self.lock:
            if self.status_at is None:
                return None
            return max(self.status_gap, now - self.status_at)

    def write(self, text: str) -> bool:
        """Write one line for the node to broadcast; False if it is gone."""
        proc = self.proc
        if proc is None or proc.stdin is None or proc.poll() is not None:
            return False
        try:
            proc.stdin.write(text.encode("utf-8") + b"\n")
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return False
        with self.lock:
            self.written += 1
            self.last_written = text
        return True

    def kill(self) -> None:
        """kill -9: the crash fault."""
        proc = self.proc
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(_STOP_GRACE_S)
        self.incarnations[-1].killed = time.monotonic()
        self._close_pipes()
        with self.lock:
            self.view, self.members = None, ()

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the node's process group, if it is running."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)

    def wait_exit(self, timeout: float) -> bool:
        """Wait for the current process to exit; True if it did."""
        proc = self.proc
        if proc is None:
            return True
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def _close_pipes(self) -> None:
        proc = self.proc
        if proc is not None and proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        if self._err is not None:
            self._err.close()
            self._err = None

    def cleanup(self) -> None:
        """Kill whatever is left (idempotent); used in ``finally``."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(_STOP_GRACE_S)
        self._close_pipes()


class LocalCluster:
    """N ``ringward node`` processes sharing one admin key directory."""

    def __init__(self, workdir: Path, nodes: int, params: ProtocolParams | None = None) -> None:
        if not NODES_MIN <= nodes <= NODES_MAX:
            raise ConfigError("bad_nodes", f"--nodes must be {NODES_MIN}..{NODES_MAX}")
        self.workdir = workdir
        keydir = workdir / "keys"
        logdir = workdir / "logs"
        logdir.mkdir(parents=True)
        self.roster = provision(keydir, nodes, params=params)
        self.events: list[ClusterEvent] = []
        self._events_lock = threading.Lock()
        self.nodes = [
            NodeProcess(n.name, n.id, keydir, logdir, self._record) for n in self.roster.nodes
        ]

    def _record(self, event: ClusterEvent) -> None:
        with self._events_lock:
            self.events.append(event)

    def note(self, kind: str, node: str, text: str) -> None:
        """Add an event of the parent's own (crash, restart, notes)."""
        self._record(ClusterEvent(time.monotonic(), kind, node, text))

    def events_since(self, index: int) -> list[ClusterEvent]:
        """Events recorded from position ``index`` on."""
        with self._events_lock:
            return self.events[index:]

    def by_name(self, name: str) -> NodeProcess:
        for node in self.nodes:
            if node.name == name:
                return node
        raise ConfigError("unknown_node", f"no node {name}")

    def start_all(self, extra_args: dict[str, tuple[str, ...]] | None = None) -> None:
        """Start every node, with ``extra_args[name]`` for those listed."""
        for node in self.nodes:
            node.start((extra_args or {}).get(node.name, ()))

    def stop_all(self) -> None:
        """Stop every node without a membership change being logged.

        Stopping one node after another would let the survivors notice the
        missing token and install smaller views, and the logs would then end
        in views that do not match the settled cluster. So every node is
        frozen first (SIGSTOP), then told to stop (SIGTERM, a clean exit that
        closes its event log) and thawed; all exit within a token timeout.
        """
        running = [n for n in self.nodes if n.up]
        for node in running:
            node.signal(signal.SIGSTOP)
        for node in running:
            node.signal(signal.SIGTERM)
        for node in running:
            node.signal(signal.SIGCONT)
        deadline = time.monotonic() + _STOP_GRACE_S
        for node in running:
            if not node.wait_exit(max(0.1, deadline - time.monotonic())):
                node.cleanup()
        for node in self.nodes:
            node.cleanup()

    def cleanup(self) -> None:
        """Kill every child that is still running (for ``finally``)."""
        for node in self.nodes:
            node.cleanup()
