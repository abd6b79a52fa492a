"""The simulated world: a virtual clock, one event queue, nodes driving engines.

Theory of operation
-------------------
Everything that happens is an entry ``(time, seq, action, args)`` in one heap.
``seq`` is a counter, so entries at equal times run in the order they were
scheduled: the run is a total order that depends only on the inputs, never
on the wall clock, hashing or the machine (TigerBeetle's VOPR, FoundationDB's
simulator). Randomness comes only from the ``random.Random`` objects the
caller derives from the seed (the network's, the workload's, the faults').

Each node drives one engine exactly as the runtime will (engine/api.py):
after every verb (``receive``, ``tick``, ``submit``) the world calls
``ready()`` once, sends its datagrams through the interceptor and the network
model, records its events, and arms the node's single timer at the deadline
(replacing the previous one: a generation counter makes old heap entries
no-ops).

Node faults:

* crash: the engine object is dropped with its timer and receive queue;
  datagrams arriving while crashed are dropped. ``restart`` builds a fresh
  engine whose incarnation is the node's restart count.
* pause: the process stops. Datagrams queue (at most ``inbox_max``; the rest
  are dropped and counted) and a timer that comes due fires only at resume,
  after the queue is drained: an overloaded or SIGSTOPped process.
* slow: every datagram costs ``slow_s`` of processing; arrivals queue behind.

Bounds: the heap, the receive queues and the events processed per virtual
second are capped; exceeding a cap raises :class:`SimulationError` rather
than running forever. An engine that asks for a tick at ``now`` right after
ticking at ``now`` is ticked 1 ms later instead (counted in
``timer_nudges``), so an engine bug cannot spin the loop at one instant.

CPU: virtual time cannot see how long an engine computes, so every call into
an engine goes through :meth:`World._call`, which reads the CPU clock of
its thread before and after it (two reads per call), less the time the garbage
collector ran meanwhile (``gc.callbacks``): a full collection of a big
simulator heap costs ~30 ms wherever it lands, and it landed in an honest
16 ms receive of the overload test. The first call that took more than
``limits.cpu_budget_ms`` is recorded (a
:class:`~ringward.sim.interface.CpuOverrun` in ``cpu_overruns``) and ends
the run with :class:`~ringward.sim.interface.CpuBudgetError`; the runner
turns it into a failed result (a node that spins for seconds is not live,
whatever the virtual clock says, and a run that went on would spin again
at every node: a Byzantine far hop cost 240 s of wall time that way). A
call that never returns (a loop over a range of 2^64 seqs a Byzantine
member named) is cut short by a watchdog while :meth:`run_until` runs: a
process-time interval timer (``ITIMER_PROF``, one signal per budget of
CPU) whose handler raises inside the call once it has used
``CPU_ABORT_FACTOR`` budgets (main thread, POSIX only, and not while
someone else owns SIGPROF: without the watchdog such a call still hangs).
"""

from __future__ import annotations

import heapq
import math
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from ringward.engine.api import EngineEvent, MessageId
from ringward.errors import StateError
from ringward.eventlog import (
    ByzantineEvent,
    CrashEvent,
    DeliverEvent,
    Event,
    RestartEvent,
    ViewEvent,
)
from ringward.eventlog.translate import from_engine, sent
from ringward.sim.cpubudget import CpuAbort, CpuMeter
from ringward.sim.interface import (
    CPU_ABORT_FACTOR,
    CpuBudgetError,
    CpuOverrun,
    Datagram,
    EngineFactory,
    EngineLike,
    Interceptor,
    SimulationError,
    WorldLimits,
)
from ringward.sim.network import Network

__all__ = [
    "CPU_ABORT_FACTOR",
    "CpuBudgetError",
    "CpuOverrun",
    "Datagram",
    "EngineFactory",
    "EngineLike",
    "Interceptor",
    "SimulationError",
    "World",
    "WorldCounters",
    "WorldLimits",
]

# An engine that wants a tick at the instant it was just ticked is ticked
# this much later: long enough to move the clock, short against any timer.
TIMER_NUDGE_S: Final = 0.001
_T = TypeVar("_T")


@dataclass(eq=False, slots=True)
class _Node:
    id: int
    engine: EngineLike | None
    incarnation: int = 0
    # The node's durable state: the ring sequence it last persisted.
    disk_ring_seq: int = 0
    paused: bool = False
    slow_s: float = 0.0
    # Bumped by crash: stale drain entries of a previous life do nothing.
    epoch: int = 0
    timer_gen: int = 0
    armed_at: float | None = None
    timer_due: bool = False  # came due while paused: fire at resume
    ticked_at: float | None = None  # last verb was a tick at this time
    draining: bool = False  # a drain entry is scheduled (slow node busy)
    inbox: deque[tuple[int, bytes, float]] = field(default_factory=deque)
    byzantine: bool = False
    # Ids of messages this incarnation submitted and has not delivered yet
    # (converged: the quiet phase cannot end early while one is owed).
    owed: set[str] = field(default_factory=set)


@dataclass(slots=True)
class WorldCounters:
    """What the world counted (drops by reason, fault actions, workload)."""

    drops: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    engine_drops: Counter[str] = field(default_factory=Counter)
    engine_notes: Counter[str] = field(default_factory=Counter)
    sent: int = 0
    delivered: int = 0
    views: int = 0
    crashes: int = 0
    restarts: int = 0
    pauses: int = 0
    timer_nudges: int = 0
    processed: int = 0


class World:
    """Nodes, engines, the network and the virtual clock of one run."""

    def __init__(
        self,
        nodes: Sequence[int],
        factory: EngineFactory,
        network: Network,
        *,
        limits: WorldLimits | None = None,
        interceptor: Interceptor | None = None,
    ) -> None:
        self.roster: tuple[int, ...] = tuple(sorted(set(nodes)))
        self.network = network
        self.limits = limits if limits is not None else WorldLimits()
        self.interceptor = interceptor
        self.now = 0.0
        self.events: list[Event] = []
        self.counters = WorldCounters()
        # Time of the last delivery or view installed: quiescence detection.
        self.last_progress_t = 0.0
        self.last_view: dict[int, ViewEvent] = {}
        self._factory = factory
        self._nodes = {n: _Node(n, None) for n in self.roster}
        self._heap: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = 0
        self._second = 0
        self._second_count = 0
        self._started = False
        # The CPU budget (World._call) and what broke it.
        self.cpu_overruns: list[CpuOverrun] = []
        self._cpu = CpuMeter(max(0.0, self.limits.cpu_budget_ms) / 1000.0)

    # -- the loop ------------------------------------------------------------

    def schedule(self, at: float, action: Callable[..., None], *args: Any) -> None:
        """Run ``action(*args)`` at virtual time ``at`` (not before now)."""
        if len(self._heap) >= self.limits.queue_max:
            raise SimulationError(
                "sim.queue_overflow", f"more than {self.limits.queue_max} entries queued"
            )
        self._seq += 1
        heapq.heappush(self._heap, (max(at, self.now), self._seq, action, args))

    def start(self) -> None:
        """Create every node's engine at the current time (once)."""
        if self._started:
            raise StateError("sim.started", "the world is already started")
        self._started = True
        with self._cpu.watchdog():
            for node in self._nodes.values():
                self._boot(node)

    def run_until(self, t_end: float) -> None:
        """Process every entry due at or before ``t_end``; then now = t_end."""
        heap = self._heap
        with self._cpu.watchdog():
            while heap and heap[0][0] <= t_end:
                at, _, action, args = heapq.heappop(heap)
                self.now = at
                self._count(at)
                action(*args)
        self.now = max(self.now, t_end)

    def _count(self, at: float) -> None:
        second = int(at)
        if second != self._second:
            self._second, self._second_count = second, 0
        self._second_count += 1
        self.counters.processed += 1
        if self._second_count > self.limits.events_per_s_max:
            raise SimulationError(
                "sim.event_storm",
                f"more than {self.limits.events_per_s_max} events in virtual second "
                f"{second}: an engine or fault is looping",
            )

    # -- node state ----------------------------------------------------------

    def is_up(self, node: int) -> bool:
        """True unless ``node`` is crashed."""
        return self._nodes[node].engine is not None

    def is_live(self, node: int) -> bool:
        """True when ``node`` is up and not paused (it can take a submit)."""
        n = self._nodes[node]
        return n.engine is not None and not n.paused

    def engine(self, node: int) -> EngineLike | None:
        """The engine of ``node`` (None while crashed)."""
        return self._nodes[node].engine

    def incarnation(self, node: int) -> int:
        """How many times ``node`` was restarted."""
        return self._nodes[node].incarnation

    def inbox_len(self, node: int) -> int:
        """Datagrams queued at ``node`` (paused or slow)."""
        return len(self._nodes[node].inbox)

    # -- faults --------------------------------------------------------------

    def crash(self, node: int) -> None:
        """Crash ``node``: its engine, timer and queue are lost. No-op if down."""
        n = self._nodes[node]
        if n.engine is None:
            return
        self._retire(n)
        self.counters.drops["crash_inbox"] += len(n.inbox)
        n.inbox.clear()
        n.engine = None
        n.epoch += 1
        n.timer_gen += 1
        n.armed_at = None
        n.paused = n.timer_due = n.draining = False
        n.ticked_at = None
        n.owed.clear()  # a crashed incarnation's messages are not owed
        self.last_view.pop(node, None)
        self.counters.crashes += 1
        self._log(CrashEvent(t=self.now, node=node, line=self._line()))

    def leave(self, node: int) -> None:
        """Stop ``node`` gracefully: it announces its leave (Engine.leave),
        then goes down like a crash. No-op if down."""
        n = self._nodes[node]
        if n.engine is None:
            return
        leave = getattr(n.engine, "leave", None)
        if leave is not None:
            self._call(n, "leave", leave, self.now)
            self._after_verb(n)
        self.crash(node)

    def restart(self, node: int) -> None:
        """Restart a crashed ``node`` as a new incarnation. No-op if up."""
        n = self._nodes[node]
        if n.engine is not None:
            return
        n.incarnation += 1
        self.counters.restarts += 1
        self._log(RestartEvent(t=self.now, node=node, line=self._line()))
        self._boot(n)

    def pause(self, node: int) -> None:
        """Stop ``node`` processing until :meth:`resume`. No-op if down or paused."""
        n = self._nodes[node]
        if n.engine is None or n.paused:
            return
        n.paused = True
        self.counters.pauses += 1

    def resume(self, node: int) -> None:
        """Let a paused ``node`` run again: drain its queue, then fire a due timer."""
        n = self._nodes[node]
        if not n.paused:
            return
        n.paused = False
        if not n.draining:
            self._drain(n, n.epoch)
        if n.timer_due and n.engine is not None and not n.paused:
            n.timer_due = False
            self._tick(n)

    def set_slow(self, node: int, slow_s: float) -> None:
        """Make every datagram cost ``slow_s`` seconds at ``node`` (0: normal)."""
        if slow_s < 0.0:
            raise StateError("sim.bad_slow", f"slow_s={slow_s} is negative")
        self._nodes[node].slow_s = slow_s

    def mark_byzantine(self, node: int, behaviour: str) -> None:
        """Declare ``node`` Byzantine from now on (logged; checkers skip it)."""
        self._nodes[node].byzantine = True
        self._log(ByzantineEvent(t=self.now, node=node, line=self._line(), behaviour=behaviour))

    def is_byzantine(self, node: int) -> bool:
        """True once :meth:`mark_byzantine` was called for ``node``."""
        return self._nodes[node].byzantine

    # -- the application -----------------------------------------------------

    def submit(self, node: int, payload: bytes, safe: bool = False) -> MessageId | None:
        """Submit ``payload`` at ``node`` now. None when the engine refused it
        (StateError, e.g. backpressure: counted under its reason, not logged)."""
        n = self._nodes[node]
        engine = n.engine
        if engine is None or n.paused:
            raise StateError("sim.node_down", f"node {node} cannot take a submit now")
        try:
            msg_id = self._call(n, "submit", engine.submit, self.now, payload, safe)
        except StateError as exc:
            self.counters.refused[exc.reason] += 1
            return None
        self.counters.sent += 1
        n.owed.add(str(msg_id))
        self._log(sent(msg_id, payload, safe, t=self.now, node=node, line=self._line()))
        n.ticked_at = None
        self._after_verb(n)
        return msg_id

    # -- internals -----------------------------------------------------------

    def _boot(self, n: _Node) -> None:
        args = (n.id, self.roster, n.incarnation, self.now, n.disk_ring_seq)
        n.engine = self._call(n, "create", self._factory, *args)
        self._after_verb(n)

    # -- the one place that calls into engines ---------------------------------

    def _call(self, n: _Node, verb: str, fn: Callable[..., _T], *args: Any) -> _T:
        """``fn(*args)``, one call into ``n``'s engine (``verb`` names it):
        timed against the CPU budget (CpuBudgetError past it), its
        exceptions turned into SimulationError (a submit's StateError, a
        refusal, passes through)."""
        try:
            out, cpu = self._cpu.run(fn, *args)
        except CpuAbort as abort:
            raise self._overrun(n, verb, abort.cpu_s, interrupted=True) from None
        except Exception as exc:
            if verb == "submit" and isinstance(exc, StateError):
                raise  # refused (backpressure): counted by submit
            raise self._engine_failed(n, verb, exc) from exc
        if self._cpu.over(cpu):
            raise self._overrun(n, verb, cpu, interrupted=False)
        return out

    def _overrun(self, n: _Node, verb: str, cpu_s: float, *, interrupted: bool) -> CpuBudgetError:
        overrun = CpuOverrun(
            n.id, n.incarnation, verb, self.now, cpu_s, self._cpu.budget_s, interrupted=interrupted
        )
        self.cpu_overruns.append(overrun)
        return CpuBudgetError(overrun)

    def _retire(self, n: _Node) -> None:
        for name, into in (
            ("drops", self.counters.engine_drops),
            ("notes", self.counters.engine_notes),
        ):
            counts = getattr(n.engine, name, None)
            if isinstance(counts, dict):
                into.update({str(k): int(v) for k, v in counts.items()})

    def retire_all(self) -> None:
        """Fold every live engine's ``drops`` and ``notes`` into the counters
        (end of run)."""
        for n in self._nodes.values():
            if n.engine is not None:
                self._retire(n)

    def _engine_failed(self, n: _Node, verb: str, exc: Exception) -> SimulationError:
        return SimulationError(
            "sim.engine_raised",
            f"node {n.id} (incarnation {n.incarnation}) raised {type(exc).__name__} "
            f"in {verb} at t={self.now!r}: {exc}",
        )

    def _line(self) -> int:
        # Events carry the 1-based line they will have in the written log, so
        # the checker's messages point into the file.
        return len(self.events) + 1

    def _log(self, event: Event) -> None:
        self.events.append(event)

    def _arrive(self, node: int, src: int, data: bytes) -> None:
        n = self._nodes[node]
        if n.engine is None:
            self.counters.drops["crashed"] += 1
            return
        if n.paused or n.draining or n.inbox:
            if len(n.inbox) >= self.limits.inbox_max:
                self.counters.drops["inbox_overflow"] += 1
            else:
                n.inbox.append((src, data, self.now))
            return
        self._receive(n, src, data, self.now)
        if n.slow_s > 0.0:
            n.draining = True
            self.schedule(self.now + n.slow_s, self._drain, n, n.epoch)

    def _drain(self, n: _Node, epoch: int) -> None:
        if epoch != n.epoch:
            return  # scheduled by a previous life
        n.draining = False
        # Bounded by inbox_max: arrivals during the loop are queued behind.
        while n.inbox and n.engine is not None and not n.paused:
            src, data, arrived = n.inbox.popleft()
            self._receive(n, src, data, arrived)
            if n.slow_s > 0.0:
                n.draining = True
                self.schedule(self.now + n.slow_s, self._drain, n, n.epoch)
                return

    def _receive(self, n: _Node, src: int, data: bytes, arrived: float) -> None:
        assert n.engine is not None
        note = getattr(n.engine, "note_receive_queue", None)
        if note is not None:
            # Its receive backlog and how long this datagram waited in it:
            # part of the load it reports in its signed tokens.
            self._call(n, "note_receive_queue", note, len(n.inbox), self.now - arrived)
        self._call(n, "receive", n.engine.receive, self.now, data, src)
        n.ticked_at = None
        self._after_verb(n)

    def _fire_timer(self, n: _Node, gen: int) -> None:
        if gen != n.timer_gen or n.engine is None:
            return  # replaced by a later deadline, or crashed
        n.armed_at = None
        if n.paused:
            n.timer_due = True
            return
        self._tick(n)

    def _tick(self, n: _Node) -> None:
        assert n.engine is not None
        self._call(n, "tick", n.engine.tick, self.now)
        n.ticked_at = self.now
        self._after_verb(n)

    def _after_verb(self, n: _Node) -> None:
        assert n.engine is not None
        ready = self._call(n, "ready", n.engine.ready)
        persist = ready.persist_ring_seq
        if persist is not None:
            n.disk_ring_seq = persist  # written before anything is sent
        for out in ready.datagrams:
            dests = [d for d in self.roster if d != n.id] if out.dest is None else [out.dest]
            for dest in dests:
                self._send(Datagram(n.id, dest, out.data))
        for event in ready.events:
            self._record(n, event)
        self._arm(n, ready.deadline)

    def _send(self, datagram: Datagram) -> None:
        if datagram.dest not in self._nodes or datagram.dest == datagram.src:
            self.counters.drops["bad_dest"] += 1
            return
        wire = [datagram] if self.interceptor is None else self.interceptor(self.now, datagram)
        for d in wire:
            if d.dest not in self._nodes:
                self.counters.drops["bad_dest"] += 1
                continue
            for at in self.network.transmit(self.now, d.src, d.dest):
                self.schedule(at, self._arrive, d.dest, d.src, d.data)

    def _record(self, n: _Node, event: EngineEvent) -> None:
        self.last_progress_t = self.now
        logged = from_engine(event, t=self.now, node=n.id, line=self._line())
        if isinstance(logged, DeliverEvent):
            self.counters.delivered += 1
            if logged.sender == n.id:
                n.owed.discard(logged.id)
        elif isinstance(logged, ViewEvent):
            self.counters.views += 1
            self.last_view[n.id] = logged
        self._log(logged)

    def _arm(self, n: _Node, deadline: float | None) -> None:
        if deadline is None or deadline == math.inf:
            n.timer_gen += 1
            n.armed_at = None
            return
        if math.isnan(deadline):
            raise SimulationError(
                "sim.bad_deadline", f"node {n.id} asked for a tick at NaN (t={self.now!r})"
            )
        at = deadline
        if at <= self.now:
            at = self.now
            if n.ticked_at == self.now:
                # Ticked at this instant already and still due: no progress.
                at = self.now + TIMER_NUDGE_S
                self.counters.timer_nudges += 1
        if at == n.armed_at:
            return  # already armed for exactly this time
        n.timer_gen += 1
        n.armed_at = at
        self.schedule(at, self._fire_timer, n, n.timer_gen)

    def converged(self) -> bool:
        """True when every node is up, running, and its last view is one
        regular configuration holding the whole roster, and every node not
        marked Byzantine has delivered every message it submitted.

        The last view alone is not enough: nodes that installed the full
        ring before a partition and gathered through it still show it as
        their last view (matrix soak seed 724381 stopped as soon as the
        faults healed, with 101 messages owed, and failed G3)."""
        views = set()
        for node in self.roster:
            n = self._nodes[node]
            view = self.last_view.get(node)
            if n.engine is None or n.paused or view is None or view.kind != "regular":
                return False
            if n.owed and not n.byzantine:
                return False
            views.add((view.view, view.members))
        return len(views) == 1 and next(iter(views))[1] == self.roster
