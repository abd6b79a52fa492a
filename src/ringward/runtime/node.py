"""One ringward node on asyncio: a UDP socket, a timer, and the engine.

Theory of operation
-------------------
The engine (``ringward.engine.Engine``) does the protocol; this module only
feeds it (aioquic's glue is the model). Everything happens in loop callbacks
— a socket reader and one timer handle — never in a task, so a node owns no
task and shutdown has nothing to cancel. After every engine verb the node
honours api.py's duties in order: send every datagram, queue every event,
re-arm the timer at the new deadline (and, first of all, store the ring
sequence when the engine asks for it).

Clock: the engine's ``now`` is ``loop.time()``, the clock ``call_at`` uses,
so a timer always finds its deadline due (uvloop's clock has millisecond
resolution; a timer that fires a hair early is treated as firing on time).

Backpressure, both directions, bounded:

* outbound: ``broadcast`` submits to the engine, whose send queue is bounded
  (``send_queue_max``); when it is full, ``broadcast`` awaits until the
  engine has broadcast something, instead of buffering in the runtime.
* inbound: events wait in a deque for the application. When it holds
  ``event_queue_max`` events the node stops reading the socket (removes the
  reader) and counts ``pressure``; datagrams then pile up in the kernel's
  buffer and beyond it are dropped, which the protocol treats as loss. Reading
  resumes when the application has consumed half. One engine verb may push
  the deque past its bound by what that verb produced (bounded by the
  engine's receive window): deliveries are never dropped. A node whose
  application stays behind loses the token and leaves the ring; detecting
  and reporting that overload is the engine's business (DESIGN.md §5).
* the kernel's send buffer: a datagram that would block is dropped and
  counted (``runtime.send_would_block``), never queued in user space.

An exception escaping the engine is a bug: the node logs it, closes, and
``broadcast`` / ``events`` raise ``StateError('engine_failed')`` from it.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import time
from collections import Counter, deque
from collections.abc import AsyncIterator
from os import PathLike
from types import MappingProxyType, TracebackType
from typing import Final, Literal, TextIO

from ringward.crypto.identity import Identity
from ringward.crypto.ringsec import RingSecurity
from ringward.crypto.roster import Roster
from ringward.engine import Engine, EngineConfig, FrameSecurity, MessageId
from ringward.engine.api import EngineEvent
from ringward.errors import ConfigError, RingwardError, StateError
from ringward.runtime import appevents, stats
from ringward.runtime import misbehave as misbehaving
from ringward.runtime.config import engine_config
from ringward.runtime.eventlog import EventLogWriter
from ringward.runtime.events import Delivered, Event, NodeStatus, ViewChanged
from ringward.runtime.options import EVENT_QUEUE_MAX, SecurityFactory
from ringward.runtime.ringseq import load_ring_seq, store_ring_seq
from ringward.runtime.udp import Peers, SockAddr, open_socket, resolve_peers, split_bind
from ringward.wire import limits

__all__ = ["RECV_BATCH_MAX", "Node"]

logger = logging.getLogger("ringward.runtime")

# Datagrams read per wake-up before yielding to the loop, so timers and the
# application run even under a flood.
RECV_BATCH_MAX: Final = 64
# How often the event loop's lateness is sampled (receive pressure).
PROBE_S: Final = 0.1

# One more byte than the largest UDP payload (IPv6: 65527), so a datagram the
# format cannot hold is seen whole and dropped, never silently truncated.
_RECV_BUFFER_BYTES: Final = 65536

_Phase = Literal["new", "starting", "running", "closed"]


class Node:
    """One member of a ringward cluster, on asyncio and UDP.

    ::

        async with Node(roster, identity) as node:
            await node.broadcast(b"hello")
            async for event in node.events():
                ...

    ``roster`` defines the cluster (its addresses and protocol parameters);
    ``identity`` must be one of its nodes. ``bind`` ("host:port", "[v6]:port"
    or a tuple; port 0 for any) defaults to this node's roster address.
    ``config`` overrides the EngineConfig derived from the roster's params
    (see :func:`ringward.runtime.engine_config`). ``event_log`` is a path
    (truncated) or an open text stream for the JSON Lines event log.
    ``security`` builds the engine's FrameSecurity; None (the default) is
    :class:`ringward.crypto.RingSecurity`: every signed frame Ed25519-signed
    by its maker, every payload AES-GCM-encrypted under the view's group key.
    ``lambda roster, identity, node: NullSecurity()`` switches both off
    (crash-fault model; for benchmarks only). ``event_queue_max`` bounds the
    events waiting for the application (see the module docstring).
    ``ring_seq_file`` keeps the highest ring sequence across restarts
    (:mod:`ringward.runtime.ringseq`); without it the node starts from 0
    each time, which is only safe while some member of the cluster stays up.
    ``misbehave`` (with ``misbehave_after_s``) turns this node into an
    attacker of its own cluster (a simulator behaviour, or ``overload``): for
    demonstrations and tests only, loudly logged. ``leave_on_close`` False
    stops without announcing a graceful leave.
    """

    def __init__(
        self,
        roster: Roster,
        identity: Identity,
        *,
        bind: str | tuple[str, int] | None = None,
        config: EngineConfig | None = None,
        event_log: str | PathLike[str] | TextIO | None = None,
        security: SecurityFactory | None = None,
        event_queue_max: int = EVENT_QUEUE_MAX,
        ring_seq_file: str | PathLike[str] | None = None,
        misbehave: str | None = None,
        misbehave_after_s: float = 0.0,
        leave_on_close: bool = True,
    ) -> None:
        entry = roster.node_by_signing_key(identity.signing_key)
        if entry is None:
            raise ConfigError("not_in_roster", "this identity is not a node of the roster")
        if entry.encryption_key != identity.encryption_key:
            raise ConfigError("key_mismatch", f"identity of {entry.name} differs from the roster")
        if event_queue_max < 1:
            raise ConfigError("bad_config", "event_queue_max must be at least 1")
        self.roster = roster
        self.node_id = entry.id
        self.name = entry.name
        self._identity = identity
        self._bind = split_bind(bind if bind is not None else entry.address)
        self.config = config or engine_config(roster)
        self._log_target = event_log
        self._security = security
        self._event_queue_max = event_queue_max
        self._ring_seq_file = ring_seq_file
        self._misbehave = misbehaving.parse(misbehave, [n.id for n in roster.nodes])
        self._misbehave_after_s = max(0.0, misbehave_after_s)
        self._leave_on_close = leave_on_close
        self._overload_window: misbehaving.OverloadWindow | None = None
        self._probe: asyncio.TimerHandle | None = None
        self._probe_due = 0.0
        self._resume_at = event_queue_max // 2
        self._phase: _Phase = "new"
        self._failure: BaseException | None = None
        self._engine: Engine | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sock: socket.socket | None = None
        self._peers = Peers(socket.AF_INET, {})
        self._log: EventLogWriter | None = None
        self._buf = bytearray(_RECV_BUFFER_BYTES)
        self._reading = False
        self._timer: asyncio.TimerHandle | None = None
        self._deadline: float | None = None
        self._last_now = 0.0
        self._events: deque[Event] = deque()
        self._has_events = asyncio.Event()
        self._send_room = asyncio.Event()
        self._view: ViewChanged | None = None
        self._last_members: tuple[int, ...] = ()
        self._rotations = stats.RotationMeter()
        self._drops: Counter[str] = Counter()
        self._pressure = 0
        self._broadcasts = 0
        self._deliveries = 0
        self._received = 0
        self._sent = 0

    # ------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Node:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Resolve the roster's addresses, bind the socket, start the engine.
        ConfigError when an address does not resolve or the bind fails."""
        if self._phase != "new":
            raise StateError("already_started", f"node {self.name} was started before")
        self._phase = "starting"
        loop = asyncio.get_running_loop()
        try:
            local, self._peers = await resolve_peers(loop, self.roster, self.node_id, self._bind)
            self._sock = open_socket(self._peers.family, local)
            self._loop = loop
            if self._log_target is not None:
                self._log = EventLogWriter(self._log_target, self.node_id)
            security = (
                self._security(self.roster, self._identity, self.node_id)
                if self._security
                else RingSecurity.from_roster(self.roster, self._identity)
            )
            self._engine = self._make_engine(
                # A fresh 31-bit incarnation per start keeps message ids
                # unique across restarts (engine/api.py, MessageId).
                int.from_bytes(os.urandom(4), "big") & 0x7FFF_FFFF,
                load_ring_seq(self._ring_seq_file) if self._ring_seq_file else 0,
                security,
            )
        except BaseException:
            self._phase = "closed"
            self._release()
            raise
        self._phase = "running"
        self._resume_reading()
        self._probe_due = loop.time() + PROBE_S
        self._probe = loop.call_at(self._probe_due, self._on_probe)
        logger.info(
            "node %s (id %d) listening on %s, %d peers",
            self.name,
            self.node_id,
            self.address,
            len(self._peers.by_id),
        )
        self._after_verb()  # the engine's first joins and timers

    async def close(self) -> None:
        """Stop: no more reading, sending or timers; the socket and the event
        log are closed. Events already queued can still be read from
        ``events()``, which then ends. Idempotent. A running node first
        announces its leave, so the others reconfigure at once rather than
        after a token timeout."""
        if self._phase == "running" and self._engine is not None and self._leave_on_close:
            try:
                self._engine.leave(self._now())
            except Exception as exc:
                self._engine_failed(exc, "leave")
            else:
                self._after_verb()
        self._shutdown()

    def _shutdown(self, failure: BaseException | None = None) -> None:
        if self._phase == "closed":
            return
        self._phase = "closed"
        self._failure = failure
        self._release()
        # Wake every waiter: broadcast() raises, events() drains and ends.
        self._has_events.set()
        self._send_room.set()
        logger.info("node %s closed", self.name)

    def _release(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None
        if self._sock is not None:
            if self._reading and self._loop is not None:
                self._loop.remove_reader(self._sock.fileno())
                self._reading = False
            self._sock.close()
        if self._log is not None:
            self._log.close()

    # ---------------------------------------------------------- public API

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); useful with port 0."""
        if self._sock is None or self._sock.fileno() < 0:
            raise StateError("not_running", f"node {self.name} has no socket")
        name = self._sock.getsockname()
        return name[0], name[1]

    @property
    def view(self) -> ViewChanged | None:
        """The regular configuration the engine installed last (None before
        the first). It may be ahead of the events the application consumed."""
        return self._view

    async def broadcast(self, data: bytes, *, safe: bool = False) -> MessageId:
        """Queue ``data`` for total-order delivery to every member (this node
        included) and return its id once queued — not once delivered. Awaits
        while the engine's send queue is full. ``safe`` asks for safe
        delivery (delivered only once every member holds it). ConfigError
        ``payload_too_large`` beyond the roster's ``payload_bytes_max``;
        StateError when the node is not running."""
        payload = bytes(data)
        while True:
            engine = self._running()
            if engine.send_room:
                try:
                    msg_id = engine.submit(self._now(), payload, safe)
                except StateError as exc:
                    if exc.reason != "backpressure":
                        raise
                except RingwardError:
                    raise
                except Exception as exc:
                    self._engine_failed(exc, "submit")
                    raise StateError("engine_failed", "the engine failed") from exc
                else:
                    self._broadcasts += 1
                    if self._log is not None:
                        self._log.send(msg_id, payload, safe)
                    self._after_verb()
                    return msg_id
            self._send_room.clear()
            await self._send_room.wait()

    async def events(self) -> AsyncIterator[Event]:
        """Every event, in the order the engine produced them, from the start
        of the node; ends after ``close()`` once the queued events are read.
        Concurrent iterators share (split) one stream."""
        while await self._wait_event():
            event = self._pop_event()
            if event is not None:
                yield event

    def status(self) -> NodeStatus:
        """A snapshot of the node (see :class:`NodeStatus`)."""
        engine = self._engine
        drops = {str(k): v for k, v in engine.drops.items()} if engine else {}
        notes = {str(k): v for k, v in engine.notes.items()} if engine else {}
        drops.update((f"runtime.{k}", v) for k, v in self._drops.items())
        view = self._view
        return NodeStatus(
            node_id=self.node_id,
            name=self.name,
            state=engine.state.value if engine and self._phase == "running" else self._phase,
            view=view.view_id if view else None,
            members=view.members if view else (),
            quorate=view.quorate if view else False,
            token_rotations_per_s=self._rotations.rate(self._now_or_zero(), engine, self._view),
            backlog=engine.backlog if engine else 0,
            event_backlog=len(self._events),
            reading_paused=self._phase == "running" and not self._reading,
            pressure=self._pressure,
            broadcasts=self._broadcasts,
            deliveries=self._deliveries,
            datagrams_received=self._received,
            datagrams_sent=self._sent,
            drops=MappingProxyType(drops),
            notes=MappingProxyType(notes),
            scores=stats.scores(engine),
        )

    # ---------------------------------------------- event queue (also sync)

    async def _wait_event(self) -> bool:
        """Until an event is queued (True) or the node closed with none left
        (False; StateError if the engine failed). Pops nothing, so a caller
        may cancel it at any time without losing an event."""
        while not self._events:
            if self._phase == "closed":
                if self._failure is not None:
                    raise StateError("engine_failed", "the engine failed") from self._failure
                return False
            self._has_events.clear()
            await self._has_events.wait()
        return True

    def _pop_event(self) -> Event | None:
        if not self._events:
            return None
        event = self._events.popleft()
        if not self._reading and self._phase == "running" and len(self._events) <= self._resume_at:
            self._resume_reading()
        return event

    # -------------------------------------------------- driving the engine

    def _running(self) -> Engine:
        if self._phase != "running" or self._engine is None:
            if self._failure is not None:
                raise StateError("engine_failed", "the engine failed") from self._failure
            raise StateError(f"node_{self._phase}", f"node {self.name} is not running")
        return self._engine

    def _now_or_zero(self) -> float:
        return self._loop.time() if self._loop is not None and self._phase == "running" else 0.0

    def _now(self) -> float:
        assert self._loop is not None
        now = self._loop.time()
        # The engine's clock must never go backwards.
        self._last_now = max(self._last_now, now)
        return self._last_now

    def _after_verb(self) -> None:
        """api.py's duties: send, then hand over events, then arm the timer."""
        engine = self._engine
        assert engine is not None
        ready = engine.ready()
        persist = ready.persist_ring_seq
        if persist is not None and self._ring_seq_file is not None:
            # Durable before anything that depends on it leaves the node.
            try:
                store_ring_seq(self._ring_seq_file, persist)
            except ConfigError as exc:
                logger.error("node %s: %s; the node stops", self.name, exc)
                self._shutdown(failure=exc)
                return
        for out in ready.datagrams:
            if out.dest is None:
                for addr in self._peers.all:
                    self._sendto(out.data, addr)
            else:
                dest = self._peers.by_id.get(out.dest)
                if dest is None:
                    self._drops["unknown_dest"] += 1
                else:
                    self._sendto(out.data, dest)
        if ready.events:
            for event in ready.events:
                self._emit(event)
            self._has_events.set()
        if self._log is not None:
            self._log.flush()
        self._arm(ready.deadline)
        if engine.send_room:
            self._send_room.set()

    def _sendto(self, data: bytes, addr: SockAddr) -> None:
        assert self._sock is not None
        try:
            self._sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            self._drops["send_would_block"] += 1
        except OSError as exc:
            # Unreachable networks, firewalls, ICMP errors: the peer looks
            # silent, which the protocol handles; count, never raise.
            name = errno.errorcode.get(exc.errno or 0, "oserror").lower()
            self._drops[f"send_error:{name}"] += 1
            logger.debug("node %s: sendto %s failed: %s", self.name, addr, exc)
        else:
            self._sent += 1

    def _emit(self, event: EngineEvent) -> None:
        if self._log is not None:
            self._log.engine_event(event)
        app = appevents.to_app(event, self._last_members)
        appevents.log_event(self.name, event, app)
        if isinstance(app, ViewChanged):
            self._last_members = app.members
            if app.kind == "regular":
                self._view = app
                assert self._engine is not None and self._loop is not None
                self._rotations.restart(self._loop.time(), self._engine.token_hops)
        elif isinstance(app, Delivered):
            self._deliveries += 1
        if app is not None:
            self._events.append(app)

    def _arm(self, deadline: float | None) -> None:
        if deadline == self._deadline and (deadline is None or self._timer is not None):
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._deadline = deadline
        if deadline is not None:
            assert self._loop is not None
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._phase != "running" or self._engine is None:
            return
        # The loop fired us for this deadline: never tell the engine an
        # earlier time (uvloop rounds timers to milliseconds).
        now = max(self._now(), self._deadline or 0.0)
        self._last_now = now
        self._deadline = None
        try:
            self._engine.tick(now)
        except Exception as exc:
            self._engine_failed(exc, "tick")
            return
        self._after_verb()

    def _on_readable(self) -> None:
        sock, engine = self._sock, self._engine
        assert sock is not None and engine is not None
        view = memoryview(self._buf)
        for _ in range(RECV_BATCH_MAX):
            if self._phase != "running":
                return
            if len(self._events) >= self._event_queue_max:
                self._pause_reading()
                return
            try:
                size, addr = sock.recvfrom_into(self._buf)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                name = errno.errorcode.get(exc.errno or 0, "oserror").lower()
                self._drops[f"recv_error:{name}"] += 1
                continue
            self._received += 1
            if size > limits.DATAGRAM_BYTES_MAX:
                self._drops["oversize"] += 1
                continue
            try:
                # Source addresses prove nothing; the engine authenticates.
                engine.receive(self._now(), bytes(view[:size]), addr)
            except Exception as exc:
                self._engine_failed(exc, "receive")
                return
            self._after_verb()
            if self._overloaded_now():
                # --misbehave overload: a process starved of CPU.
                time.sleep(misbehaving.OVERLOAD_SLEEP_S)

    def _make_engine(self, incarnation: int, ring_seq: int, security: FrameSecurity) -> Engine:
        ids = [n.id for n in self.roster.nodes]
        now = self._now()
        if self._misbehave is None:
            return Engine(
                self.node_id,
                ids,
                config=self.config,
                cluster_id=self.roster.cluster_id,
                incarnation=incarnation,
                ring_seq=ring_seq,
                now=now,
                security=security,
            )
        engine, self._overload_window = misbehaving.make_engine(
            self.node_id,
            ids,
            self._misbehave,
            now + self._misbehave_after_s,
            name=self.name,
            after_s=self._misbehave_after_s,
            config=self.config,
            cluster_id=self.roster.cluster_id,
            incarnation=incarnation,
            ring_seq=ring_seq,
            now=now,
            security=security,
        )
        return engine

    def _on_probe(self) -> None:
        """Every PROBE_S: how late the event loop runs (a starved or blocked
        process) and how many events wait for the application: the receive
        pressure the engine reports, signed, in its tokens."""
        if self._phase != "running" or self._loop is None or self._engine is None:
            return
        now = self._loop.time()
        lag = max(0.0, now - self._probe_due)
        self._engine.note_receive_queue(len(self._events), lag)
        self._probe_due = now + PROBE_S
        self._probe = self._loop.call_at(self._probe_due, self._on_probe)

    def _overloaded_now(self) -> bool:
        window = self._overload_window
        return window is not None and window.covers(self._now())

    def _pause_reading(self) -> None:
        if self._reading and self._sock is not None and self._loop is not None:
            self._loop.remove_reader(self._sock.fileno())
            self._reading = False
            self._pressure += 1
            logger.warning(
                "node %s: application is behind (%d events queued); not reading the network",
                self.name,
                len(self._events),
            )

    def _resume_reading(self) -> None:
        if not self._reading and self._sock is not None and self._loop is not None:
            self._loop.add_reader(self._sock.fileno(), self._on_readable)
            if self._pressure:
                logger.info("node %s: reading the network again", self.name)
            self._reading = True

    def _engine_failed(self, exc: BaseException, verb: str) -> None:
        """An exception escaped the engine: a bug. Stop rather than go on
        with a state machine in an unknown state."""
        logger.error(
            "node %s: the engine raised in %s (a bug; the node stops)",
            self.name,
            verb,
            exc_info=exc,
        )
        self._shutdown(failure=exc)
