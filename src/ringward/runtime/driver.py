"""The loop glue under :class:`ringward.runtime.Node`: one engine, one UDP
socket, one timer, and the queue of events for the application.

Theory of operation
-------------------
The engine (``ringward.engine.Engine``) does the protocol; this module only
feeds it (aioquic's glue is the model). Everything happens in loop callbacks
— a socket reader and one timer handle — never in a task, so a node owns no
task and shutdown has nothing to cancel (but for a roster reload that a
change of the roster file starts, runtime/reload.py, which close cancels).
After every engine verb the node honours api.py's duties in order: send
every datagram, queue every event, re-arm the timer at the new deadline
(and, first of all, store the ring sequence when the engine asks for it).

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
import socket
import time
from collections import Counter, deque
from os import PathLike
from typing import Final, Literal

from ringward.crypto.roster import Roster
from ringward.engine import Engine
from ringward.engine.api import Delivered as EngineDelivered
from ringward.engine.api import EngineEvent
from ringward.errors import ConfigError, StateError
from ringward.runtime import appevents, reload, stats
from ringward.runtime import misbehave as misbehaving
from ringward.runtime.eventlog import EventLogWriter
from ringward.runtime.events import Delivered, Event, ViewChanged
from ringward.runtime.lagprobe import PROBE_S, LagProbe
from ringward.runtime.ringseq import store_ring_seq
from ringward.runtime.udp import Peers, SockAddr
from ringward.wire import limits

__all__ = ["PROBE_S", "RECV_BATCH_MAX", "Driver"]

logger = logging.getLogger("ringward.runtime")

# Datagrams read per wake-up before yielding to the loop, so timers and the
# application run even under a flood.
RECV_BATCH_MAX: Final = 64
# One more byte than the largest UDP payload (IPv6: 65527), so a datagram the
# format cannot hold is seen whole and dropped, never silently truncated.
_RECV_BUFFER_BYTES: Final = 65536

Phase = Literal["new", "starting", "running", "closed"]


class Driver:
    """The engine-driving half of a Node (the public half, node.py, derives
    from it): the verbs' duties, the socket reader with its backpressure,
    the timer, the load probe and the event queue. Everything here runs in
    loop callbacks."""

    # Set by Node.__init__ (the roster in use changes with a reload).
    roster: Roster
    node_id: int
    name: str
    telemetry: stats.Telemetry
    _reloader: reload.Reloader

    def __init__(self, event_queue_max: int, ring_seq_file: str | PathLike[str] | None) -> None:
        if event_queue_max < 1:
            raise ConfigError("bad_config", "event_queue_max must be at least 1")
        self._event_queue_max = event_queue_max
        self._ring_seq_file = ring_seq_file
        self._overload_window: misbehaving.OverloadWindow | None = None
        self._probe: asyncio.TimerHandle | None = None
        self._lag = LagProbe()
        self._resume_at = event_queue_max // 2
        self._phase: Phase = "new"
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
        self._has_view = asyncio.Event()
        self._last_members: tuple[int, ...] = ()
        self._rotations = stats.RotationMeter()
        self._drops: Counter[str] = Counter()
        self._pressure = 0
        self._deliveries = 0
        self._received = self._sent = 0
        self._drain_soon = False

    def _shutdown(self, failure: BaseException | None = None) -> None:
        if self._phase == "closed":
            return
        self._phase = "closed"
        self._failure = failure
        self._release()
        # Wake every waiter: broadcast() raises, events() drains and ends.
        self._has_events.set()
        self._send_room.set()
        self._has_view.set()
        logger.info("node %s closed", self.name)

    def _release(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None
        self._reloader.stop()
        if self._sock is not None:
            if self._reading and self._loop is not None:
                self._loop.remove_reader(self._sock.fileno())
                self._reading = False
            self._sock.close()
        if self._log is not None:
            self._log.close()

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

    def _after_verb_soon(self) -> None:
        """``_after_verb`` at the loop's next turn: a burst of ``broadcast``
        calls (which return without yielding while the send queue has room)
        costs one drain instead of one each. Nothing is lost meanwhile: the
        next drain, whoever runs it, takes everything in order."""
        if not self._drain_soon:
            assert self._loop is not None
            self._drain_soon = True
            self._loop.call_soon(self._drain_now)

    def _drain_now(self) -> None:
        self._drain_soon = False
        if self._phase == "running" and self._engine is not None:
            self._after_verb()

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
        if type(event) is EngineDelivered:
            # Once per message at every node: the short way (no log line, no view).
            delivery = appevents.delivered(event, self._reloader.names)
            self._deliveries += 1
            self.telemetry.delivered(delivery, self._last_now)
            self._events.append(delivery)
            return
        app = appevents.to_app(event, self._last_members, self._reloader.names, self.roster.version)
        appevents.log_event(self.name, event, app)
        if isinstance(app, ViewChanged):
            self._last_members = app.members
            if app.kind == "regular":
                self._view = app
                self._has_view.set()
                assert self._engine is not None and self._loop is not None
                self._rotations.restart(self._loop.time(), self._engine.token_hops)
        elif isinstance(app, Delivered):
            self._deliveries += 1
        if app is not None:
            self.telemetry.event(app, self._last_now)
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
        start_s = time.monotonic()
        self._read_batch()
        if self._overloaded_now():
            # --misbehave overload: a starved process's wake-up costs at
            # least what a full batch did.
            spent_s = time.monotonic() - start_s
            time.sleep(max(0.0, misbehaving.OVERLOAD_STALL_S - spent_s))

    def _read_batch(self) -> None:
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

    def _on_probe(self) -> None:
        """Every PROBE_S: how far behind the event loop runs (a starved or
        blocked process; runtime/lagprobe.py) and how many events wait for
        the application: the receive pressure the engine reports, signed,
        in its tokens."""
        if self._phase != "running" or self._loop is None or self._engine is None:
            return
        behind_s = self._lag.sample(self._loop.time())
        self._engine.note_receive_queue(len(self._events), behind_s)
        self._probe = self._loop.call_at(self._lag.due_s, self._on_probe)

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
