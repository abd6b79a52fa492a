"""Extreme integers in signed statements: a signature proves who said
something, never that it is true.

A Byzantine member of a real keyed 4-node ring (f = 1) signs, with its own
roster key, one statement in which one integer field holds an extreme value
- 0, 1, max-1, max of the field's wire width, or the legitimate value moved
by a small or window-sized step - at some point of a simulated run. Every
integer field of every signed kind is a candidate: each Token field (its
LoadReport, frame list and retransmission list included), Join.ring_seq and
its proc/fail ids, CommitToken.hop and each CommitMember field (and the
sealed keys' node ids), Accusation target/hop/score, Proof.target,
TokenRequest.hop, and the header's RingId (rep, seq) of each kind.

The run is judged by the simulator's checker (every guarantee for the three
correct nodes, no correct node evicted, all of them converged in one
regular view, each delivering its own messages); on top of that no correct
engine may raise, no engine call may exceed OP_BUDGET trace events (Python
calls, lines and returns, counted with ``sys.settrace``: deterministic,
unlike the process time the simulator can also measure, which is switched
off here), and every correct node must deliver a message sent after the
lie. A loop inside C (a range the liar named, materialised) is invisible to
the tracer: the address space is capped during the run, so it fails with
MemoryError. The liar's own engine is not judged: if it fails, it goes
silent like a crashed node.

RINGWARD_EXTREME_EXAMPLES sets the number of examples (default 50; 2000 for
a long run).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ringward.engine import Engine, EngineConfig
from ringward.engine.api import Outgoing, Ready
from ringward.engine.membership import State
from ringward.errors import RingwardError
from ringward.eventlog import DeliverEvent, SendEvent
from ringward.sim.faults import FaultSpec
from ringward.sim.interface import EngineLike, SimulationError
from ringward.sim.keys import SimKeys
from ringward.sim.runner import Result, Scenario, run_scenario
from ringward.wire import (
    Accusation,
    CommitMember,
    FrameRef,
    Kind,
    Proof,
    RingId,
    TokenRequest,
    decode,
    limits,
)
from ringward.wire.codec import List, Record, UInt
from ringward.wire.messages import SCHEMAS

from _meter import Meter

ROSTER = (1, 2, 3, 4)
BYZ = 4
CONFIG = EngineConfig(
    token_timeout_ms=200,
    consensus_timeout_ms=300,
    join_timeout_ms=20,
    merge_timeout_ms=50,
    token_hold_idle_ms=80,
    seqno_unchanged_const=2,
    rekey_interval_ms=0,
    evict_cooldown_ms=1000,
    evict_cooldown_accused_ms=1500,
    evict_cooldown_max_ms=2000,
)
# The lie is told from this time on (the first ring is installed by then).
LIE_AT_S = 0.6
DURATION_S = 1.3
QUIET_S = 2.5
# Quiescence that ends the quiet phase early (the ring's timers are short).
SETTLE_S = 0.5
# Trace events per engine call. Normal runs of this configuration (seeds
# 1-20, without faults, with loss/duplication/reordering, and with
# partitions, crashes and pauses) peak at BUDGET_MEASURED; the budget is 25x
# that. (A round that evicts the liar, its proof carried in every join and
# in the commit token's certificate, costs up to ~100k.)
BUDGET_MEASURED = 12_000
OP_BUDGET = 25 * BUDGET_MEASURED
EXAMPLES = int(os.environ.get("RINGWARD_EXTREME_EXAMPLES", "50"))
# The deterministic budget replaces the simulator's process-time budget
# (where the simulator has one): tracing slows every call down.
_NO_CPU_CLOCK: dict[str, Any] = (
    {"cpu_budget_ms": 0.0} if "cpu_budget_ms" in Scenario.__dataclass_fields__ else {}
)

N = len(ROSTER)
WINDOW = CONFIG.receive_window_frames_max
# Steps from the legitimate value: small, the ring size, the hop window the
# engine tracks, the receive window, and far jumps (multiples of N, so a
# token hop stays on the liar's own turn).
STEPS = (1, 2, N, 64 * N + N, WINDOW, 1 << 31, 1 << 32, 1 << 62)


# ------------------------------------------------------------ the fields


@dataclass(frozen=True, slots=True)
class Field:
    """One integer position of a signed statement: ``path`` into the body
    (``("header", "seq")`` for the frame's ring id); list positions are 0
    (the first item) or -1 (the last), appended to when the list is empty."""

    kind: Kind
    path: tuple[str | int, ...]
    bits: int
    minimum: int

    def __str__(self) -> str:
        return f"{self.kind.name}.{'.'.join(str(p) for p in self.path)}"


def _fields(spec: Any, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], UInt]]:
    if isinstance(spec, Record):
        for name, inner in spec.fields:
            yield from _fields(inner, (*path, name))
    elif isinstance(spec, List):
        # Commit entries: another member's (0) and the liar's own (-1).
        commit_entries = isinstance(spec.item, Record) and spec.item.cls is CommitMember
        for pos in (0, -1) if commit_entries else (-1,):
            yield from _fields(spec.item, (*path, pos))
    elif isinstance(spec, UInt):
        yield path, spec


def all_fields() -> list[Field]:
    out = []
    for kind, schema in SCHEMAS.items():
        for path, spec in _fields(schema, ()):
            out.append(Field(kind, path, spec.bits, spec.minimum))
        out.append(Field(kind, ("header", "rep"), 16, 1))
        out.append(Field(kind, ("header", "seq"), 64, 0))
    return out


FIELDS = all_fields()
_BY_NAME = {str(f): f for f in FIELDS}


@dataclass(frozen=True, slots=True)
class Value:
    """``edge``: 0, 1, max-1 or max of the width (``amount`` 0..3);
    ``step``: the legitimate value plus ``amount`` (negative: minus)."""

    mode: str
    amount: int

    def resolve(self, field: Field, current: int) -> int:
        top = (1 << field.bits) - 1
        edges = (0, 1, top - 1, top)
        value = edges[self.amount] if self.mode == "edge" else current + self.amount
        return min(max(value, field.minimum), top)


VALUES = st.one_of(
    st.builds(Value, st.just("edge"), st.integers(0, 3)),
    st.builds(Value, st.just("step"), st.sampled_from([s for a in STEPS for s in (a, -a)])),
)


def _get(value: Any, key: str | int) -> Any:
    return value[key] if isinstance(key, int) else getattr(value, key)


def _with(
    value: Any, path: tuple[str | int, ...], make: Callable[[int], int], hint: int = 0
) -> Any:
    """``value`` with the integer at ``path`` replaced by ``make(current)``;
    an empty list gets one item, whose current value is ``hint``."""
    if not path:
        return make(value)
    key, rest = path[0], path[1:]
    if isinstance(key, int):
        items = list(value)
        if not items:
            if not rest:
                return (make(hint),)
            if rest == ("seq",):
                return (FrameRef(make(hint), bytes(limits.DIGEST_BYTES)),)
            return value  # nothing to alter (no commit entry, no sealed key)
        items[key] = _with(items[key], rest, make, hint)
        return tuple(items)
    return dataclasses.replace(value, **{key: _with(getattr(value, key), rest, make, hint)})


def _sorted_sets(kind: Kind, body: Any) -> Any:
    """Ascending lists (ids, retransmission requests) stay canonical."""
    spec = SCHEMAS[kind]
    changes = {}
    for name, inner in spec.fields:
        if isinstance(inner, List) and inner.ascending:
            changes[name] = tuple(sorted(set(getattr(body, name))))
    return dataclasses.replace(body, **changes)


# ------------------------------------------------------------ the budget


# Meter and BudgetError: fuzz/_meter.py (shared with the member fuzz target).


class Metered:
    """An engine whose every verb runs under the meter."""

    def __init__(self, engine: Engine, meter: Meter) -> None:
        self.engine = engine
        self.meter = meter

    def receive(self, now: float, datagram: bytes, source: object = None) -> None:
        self.meter.call(self.engine.receive, now, datagram, source)

    def tick(self, now: float) -> None:
        self.meter.call(self.engine.tick, now)

    def submit(self, now: float, payload: bytes, safe: bool = False) -> Any:
        return self.meter.call(self.engine.submit, now, payload, safe)

    def ready(self) -> Ready:
        ready: Ready = self.meter.call(self.engine.ready)
        return ready

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)


# ------------------------------------------------------------ the liar


class Liar(Engine):
    """Node BYZ: a real engine that alters one integer of the first statement
    of ``field.kind`` it makes itself from LIE_AT_S + 0.1 s x ``occurrence``
    on (of a made-up one for the kinds it does not send on its own:
    accusations, proofs, token requests), re-signed with its own key. For
    joins and commit tokens it first restarts membership, so that both are
    sent after the first ring; ``occurrence`` odd picks its second commit
    token of the round (the second rotation's) instead of the first."""

    def __init__(self, *args: Any, field: Field, value: Value, occurrence: int, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.field = field
        self.value = value
        self.occurrence = occurrence
        self.seen = 0
        self.told: tuple[float, str] | None = None
        self.churned = False

    def ready(self) -> Ready:
        kind = self.field.kind
        lying = self.now >= LIE_AT_S + 0.1 * self.occurrence and self.told is None
        churn = lying and kind in (Kind.JOIN, Kind.COMMIT) and not self.churned
        if churn and self.state is State.OPERATIONAL:
            self.churned = True
            self.enter_gather(self.now, reason="test")
        out = super().ready()
        if not lying or self.state is State.REJECTED:
            return out
        if kind in (Kind.ACCUSATION, Kind.PROOF, Kind.TOKEN_REQUEST):
            made_up = self._made_up(kind)
            if self.ring is not None and made_up is not None:
                raw = self._lie(self.ring, made_up)
                if raw is not None:
                    out.datagrams.append(Outgoing(None, raw))
            return out
        datagrams = []
        for o in out.datagrams:
            if self.told is None and _own(o.data, kind):
                # The liar sends two commit tokens per round (and re-sends).
                if self.seen == (self.occurrence % 2 if kind is Kind.COMMIT else 0):
                    frame = decode(o.data)
                    raw = self._lie(frame.ring, frame.body)
                    o = Outgoing(o.dest, raw) if raw is not None else o  # noqa: PLW2901
                self.seen += 1
            datagrams.append(o)
        out.datagrams = datagrams
        return out

    def _made_up(self, kind: Kind) -> Any:
        hop = max(self.tokens.hops.seen, 0)
        if kind is Kind.ACCUSATION:
            return Accusation(1, hop, "token_loss", 1000)
        if kind is Kind.TOKEN_REQUEST:
            return TokenRequest(max(hop - 1, 0))
        seen = [f for _, (_, f) in sorted(self.detector.tokens.raw_at.items())]
        mine = [f for f in seen if f.sender == self.node_id] or seen
        return Proof(1, "equivocation", tuple(mine[-2:])) if mine else None

    def _lie(self, ring: RingId, body: Any) -> bytes | None:
        field, path = self.field, self.field.path
        before: list[int] = []

        def make(current: int) -> int:
            before.append(current)
            return self.value.resolve(field, current)

        if path[0] == "header":
            ring = RingId(
                make(ring.rep) if path[1] == "rep" else ring.rep,
                make(ring.seq) if path[1] == "seq" else ring.seq,
            )
        else:
            hint = 0
            if path[0] == "rtr":
                hint = body.aru + 1  # the first seq a member may lack
            elif path[0] == "frames":
                hint = body.seq + 1
            body = _sorted_sets(field.kind, _with(body, path, make, hint))
        if not before:
            return None
        try:
            raw = self.sign_frame(ring, body)[1]
        except RingwardError:
            return None
        self.told = (self.now, f"{field} {before[0]} -> {make(before[0])}")
        return raw


def _own(data: bytes, kind: Kind) -> bool:
    """Whether ``data`` is a statement of ``kind`` the liar made itself (not
    a token of another member it relays or serves)."""
    try:
        frame = decode(data)
    except RingwardError:
        return False
    return frame.kind is kind and frame.sender == BYZ


class Contained:
    """The liar's engine, metered; if it fails (its own engine's failures
    are not what this test judges) it goes silent, like a crash."""

    def __init__(self, engine: Liar, meter: Meter) -> None:
        self.liar = engine
        self.inner = Metered(engine, meter)
        self.failure: str | None = None

    def _safe(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self.failure is None:
            try:
                return fn(*args)
            except Exception as exc:
                self.failure = f"{type(exc).__name__}: {exc}"
        return None

    def receive(self, now: float, datagram: bytes, source: object = None) -> None:
        self._safe(self.inner.receive, now, datagram, source)

    def tick(self, now: float) -> None:
        self._safe(self.inner.tick, now)

    def submit(self, now: float, payload: bytes, safe: bool = False) -> Any:
        got = self._safe(self.inner.submit, now, payload, safe)
        if got is None:
            from ringward.engine.api import MessageId

            return MessageId(BYZ, 0)
        return got

    def ready(self) -> Ready:
        got = self._safe(self.inner.ready)
        return got if isinstance(got, Ready) else Ready()

    @property
    def drops(self) -> dict[str, int]:
        return dict(self.liar.drops)


# ------------------------------------------------------------ one run


@dataclass
class Outcome:
    result: Result | None
    error: str | None
    told: tuple[float, str] | None
    liar_failure: str | None
    peak: int


@contextlib.contextmanager
def memory_cap(extra_bytes: int = 2 << 30) -> Iterator[None]:
    """Cap the address space at its current size plus ``extra_bytes`` while
    the run lasts: an engine that materialises a range a liar named (a loop
    inside C, invisible to the tracer) fails with MemoryError instead of
    taking the machine down. Linux only; elsewhere a no-op."""
    try:
        import resource

        with open("/proc/self/statm", encoding="ascii") as statm:
            size = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):
        yield
        return
    cap = size + extra_bytes
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    if soft != resource.RLIM_INFINITY and soft <= cap:
        yield
        return
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def run_lie(field: Field, value: Value, occurrence: int, seed: int) -> Outcome:
    keys = SimKeys(seed, ROSTER)
    meter = Meter(OP_BUDGET)
    made: list[Contained] = []

    def make(node: int, roster: tuple[int, ...], inc: int, now: float, rs: int) -> EngineLike:
        common: dict[str, Any] = {
            "config": CONFIG,
            "incarnation": inc,
            "ring_seq": rs,
            "now": now,
            "security": keys.security(node),
        }
        if node == BYZ:
            liar = Liar(node, roster, field=field, value=value, occurrence=occurrence, **common)
            made.append(Contained(liar, meter))
            return made[-1]
        return Metered(Engine(node, roster, **common), meter)

    scenario = Scenario(
        nodes=len(ROSTER),
        seed=seed,
        duration=DURATION_S,
        rate=12.0,
        faults=FaultSpec.parse("none"),
        quiet=QUIET_S,
        settle_margin=SETTLE_S,
        config=CONFIG,
        security=True,
        **_NO_CPU_CLOCK,
    )
    result, error = None, None
    try:
        with memory_cap():
            result = run_scenario(scenario, engine_factory=make, byzantine={BYZ: f"lie:{field}"})
    except SimulationError as exc:
        error = str(exc)
    except MemoryError:
        error = "MemoryError outside any engine call"
    told = made[0].liar.told if made else None
    failure = made[0].failure if made else None
    return Outcome(result, error, told, failure, meter.peak)


def _delivered_after(result: Result, t: float) -> dict[int, int]:
    """Per correct node: messages sent by a correct node after ``t`` that it
    delivered."""
    late = {e.id for e in result.events if isinstance(e, SendEvent) and e.t > t and e.node != BYZ}
    got = dict.fromkeys(ROSTER[:-1], 0)
    for e in result.events:
        if isinstance(e, DeliverEvent) and e.id in late and e.node in got:
            got[e.node] += 1
    return got


# ------------------------------------------------------------ the property


def check_lie(field: Field, value: Value, occurrence: int, seed: int) -> None:
    out = run_lie(field, value, occurrence, seed)
    what = f"{field} = {value} (occurrence {occurrence}, seed {seed}); lie: {out.told}"
    if out.error is not None:
        pytest.fail(f"{what}\n{out.error}", pytrace=False)
    assert out.result is not None
    assert out.told is not None, f"{what}: the liar never got to lie (test harness)"
    if not out.result.ok:
        pytest.fail(f"{what}\n{out.result.failure_text()}", pytrace=False)
    after = _delivered_after(out.result, out.told[0])
    assert all(after.values()), f"{what}: nothing sent after the lie delivered at {after}"


@pytest.mark.parametrize("name", ["TOKEN.hop", "JOIN.ring_seq", "COMMIT.members.0.high_seq"])
def test_every_field_is_a_candidate(name: str) -> None:
    # The field list is derived from the schemas: nothing is left out.
    assert name in _BY_NAME
    kinds = {f.kind for f in FIELDS}
    assert kinds == set(SCHEMAS), kinds


@pytest.mark.heavy
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    field=st.sampled_from(FIELDS),
    value=VALUES,
    occurrence=st.integers(0, 2),
    seed=st.integers(1, 3),
)
# Overflows, runaway loops and crashes found so far, always tried.
@example(field=_BY_NAME["JOIN.ring_seq"], value=Value("edge", 3), occurrence=0, seed=1)
@example(field=_BY_NAME["TOKEN.hop"], value=Value("step", 1 << 62), occurrence=0, seed=1)
# Hop 0: its rule:turn proof was refused by every member but its maker.
@example(field=_BY_NAME["TOKEN.hop"], value=Value("edge", 0), occurrence=0, seed=3)
@example(field=_BY_NAME["COMMIT.members.-1.high_seq"], value=Value("edge", 3), occurrence=0, seed=1)
# Another member's entry, altered by the liar that forwards the commit token.
@example(
    field=_BY_NAME["COMMIT.members.0.old_ring.seq"], value=Value("step", 1), occurrence=0, seed=1
)
def test_extreme_value_in_a_signed_statement(
    field: Field, value: Value, occurrence: int, seed: int
) -> None:
    check_lie(field, value, occurrence, seed)
