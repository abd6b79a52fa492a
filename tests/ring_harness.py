"""A small in-memory cluster of real engines with real keys, for tests that
put one member's signed statements under an attacker's control.

Every node is a real :class:`Engine` with the simulator's deterministic
keys. The network delivers every datagram after ``LATENCY_S``, but for the
copies a ``lose`` hook picks.
A ``tamper`` hook sees every datagram one node sends and may replace it
(re-signing with that node's own key): the node is then Byzantine, its
signature genuine, its statements lies.

Work is bounded by counting, not by timing: every engine call runs under a
line-event budget (``sys.settrace``), and a call that exceeds it raises
:class:`WorkBudgetExceeded` out of the test. A loop proportional to a
claimed number fails here in milliseconds instead of hanging the suite.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from helpers import sign_frame
from ringward.engine import Engine, EngineConfig
from ringward.engine.api import EngineEvent, Evicted, Rejected, ViewInstalled
from ringward.sim.keys import SimKeys
from ringward.wire import Body, RingId, decode, encode

LATENCY_S = 0.0005
STEP_S = 0.001
# Line events one engine call may run (engine code only). A busy correct
# call runs a few thousand; a loop over a claimed range runs millions.
CALL_LINES_MAX = 200_000

# Short timeouts: each simulated second costs real seconds under the
# line-event budget's tracer.
FAST = EngineConfig(
    token_timeout_ms=300, join_timeout_ms=20, consensus_timeout_ms=400, merge_timeout_ms=50
)

Tamper = Callable[["Cluster", int, bytes], list[bytes]]
# (cluster, src, dest, data) -> True: the network loses this copy.
Lose = Callable[["Cluster", int, int, bytes], bool]


class WorkBudgetExceeded(BaseException):
    """An engine call ran more than its line budget (BaseException: the
    engine's own handlers must not swallow it)."""


@contextmanager
def line_budget(limit: int) -> Iterator[list[int]]:
    """Count line events executed in ``ringward`` code; raise past ``limit``."""
    count = [0]

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            count[0] += 1
            if count[0] > limit:
                raise WorkBudgetExceeded(f"more than {limit} lines in one engine call")
        return local

    def global_(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "call" and "ringward" in frame.f_code.co_filename:
            return local
        return None

    old = sys.gettrace()
    sys.settrace(global_)
    try:
        yield count
    finally:
        sys.settrace(old)


class Cluster:
    """``n`` real engines on a perfect in-memory network."""

    def __init__(
        self,
        n: int = 4,
        *,
        config: EngineConfig | None = None,
        seed: int = 7,
        tamper: dict[int, Tamper] | None = None,
        lose: Lose | None = None,
        budget: int | None = CALL_LINES_MAX,
    ) -> None:
        self.roster = tuple(range(1, n + 1))
        self.keys = SimKeys(seed, self.roster)
        self.config = config or FAST
        self.now = 0.0
        self.engines = {
            i: Engine(i, self.roster, config=self.config, security=self.keys.security(i))
            for i in self.roster
        }
        self.events: dict[int, list[EngineEvent]] = {i: [] for i in self.roster}
        self.tamper = tamper or {}
        self.lose = lose
        self.budget = budget
        self.down: set[int] = set()
        self.deadlines: dict[int, float | None] = {}
        self._queue: list[tuple[float, int, int, bytes]] = []
        self.sent: list[tuple[int, bytes]] = []  # every datagram, as its sender sent it
        self.max_lines = 0

    # -------------------------------------------------------------- driving

    def call(self, node: int, fn: Callable[[], object]) -> None:
        if self.budget is None:
            fn()
            return
        with line_budget(self.budget) as count:
            fn()
        self.max_lines = max(self.max_lines, count[0])

    def sign(self, node: int, ring: RingId, body: Body) -> bytes:
        """A frame signed with ``node``'s real key (what a Byzantine ``node``
        can say)."""
        return encode(sign_frame(self.keys, node, ring, body, self.engines[node].cluster_id))

    def broadcast(self, src: int, data: bytes, dests: tuple[int, ...] | None = None) -> None:
        for dest in dests or self.roster:
            if dest != src and not (self.lose and self.lose(self, src, dest, data)):
                self._queue.append((self.now + LATENCY_S, src, dest, data))

    def _drain(self, node: int) -> None:
        ready = self.engines[node].ready()
        self.deadlines[node] = ready.deadline
        self.events[node].extend(ready.events)
        for out in ready.datagrams:
            self.sent.append((node, out.data))
            hook = self.tamper.get(node)
            datas = hook(self, node, out.data) if hook else [out.data]
            for data in datas:
                self.broadcast(node, data, None if out.dest is None else (out.dest,))

    def run(self, duration_s: float) -> None:
        """Advance to each next event (a datagram due, a timer due) until
        ``duration_s`` has passed; timers are served at STEP_S granularity."""
        end = round(self.now + duration_s, 6)  # as ``now`` is: never just out of reach
        for i in self.roster:
            self._drain(i)  # what direct calls (enter_gather, receive) produced
        while self.now < end:
            wake = [q[0] for q in self._queue]
            wake += [d for i, d in self.deadlines.items() if d is not None and i not in self.down]
            nxt = max(min(wake, default=end), self.now + STEP_S)
            self.now = round(min(nxt, end), 6)
            due = [q for q in self._queue if q[0] <= self.now]
            self._queue = [q for q in self._queue if q[0] > self.now]
            for _, _, dest, data in due:
                if dest in self.down:
                    continue
                e = self.engines[dest]
                self.call(dest, functools.partial(e.receive, self.now, data))
                self._drain(dest)
            for i in self.roster:
                deadline = self.deadlines.get(i)
                if i in self.down or deadline is None or deadline > self.now:
                    continue
                e = self.engines[i]
                self.call(i, functools.partial(e.tick, self.now))
                self._drain(i)

    def submit(self, node: int, payload: bytes, safe: bool = False) -> None:
        e = self.engines[node]
        self.call(node, lambda: e.submit(self.now, payload, safe=safe))
        self._drain(node)

    # -------------------------------------------------------------- judging

    def views(self, node: int) -> list[ViewInstalled]:
        return [e for e in self.events[node] if isinstance(e, ViewInstalled)]

    def regular_members(self, node: int) -> tuple[int, ...] | None:
        regular = [v for v in self.views(node) if v.kind == "regular"]
        return regular[-1].members if regular else None

    def evictions(self, node: int) -> list[Evicted]:
        return [e for e in self.events[node] if isinstance(e, Evicted)]

    def rejected(self, node: int) -> list[Rejected]:
        return [e for e in self.events[node] if isinstance(e, Rejected)]

    def delivered(self, node: int) -> list[bytes]:
        from ringward.engine.api import Delivered

        return [e.payload for e in self.events[node] if isinstance(e, Delivered)]


def body_of(data: bytes) -> Any:
    """The decoded body of a datagram (for tamper hooks)."""
    return decode(data).body


def ring_of(data: bytes) -> RingId:
    return decode(data).ring
