"""Invariant: a Byzantine MEMBER - one node of the roster holding its real
signing key and the ring's group key - that signs whatever it likes (any
body of any signed kind with any integer of the field's wire width, DATA
frames under the group key, replays of anyone's frames, dropped, reordered
or withheld traffic) never makes a correct engine raise, never makes one
engine call (receive, tick, submit, ready) exceed OP_BUDGET trace events,
and never grows a correct engine's state past its configured bounds.

A signature proves who said something, never that it is true: every integer
of a signed statement has to be checked against what its signer could
legitimately have said, and this target looks for the ones that are not.

World: a real keyed 4-node ring (sim/keys.py identities, seed KEYS_SEED),
engines driven directly (sans-IO), a network the input controls. Each input
starts from one of a few snapshots of that ring (gathering, committing,
recovering, operational, recovering with old-ring frames in flight), taken
once per process by a fixed script and restored by unpickling.

Input: a program. Byte 0 picks the snapshot, byte 1 the Byzantine node; the
rest is a sequence of ops, each an opcode byte and its operands, read by a
total byte reader (:class:`Reader`: reads past the end give zeros, so every
byte string is a valid program; no atheris needed to replay one):

* RUN k - k rounds of: deliver every datagram in flight (FIFO), then advance
  the clock to the next deadline and tick every engine;
* DELIVER / DROP - one datagram in flight, picked by index (reordering);
* TICK - advance the clock by a chosen step and tick every engine;
* SUBMIT - a correct node submits a payload (small, fragmented, or safe);
* REPLAY - a datagram seen earlier (any sender) to some correct nodes;
* SIGN - take a template (a datagram in flight, one seen earlier, or a body
  built from a correct engine's current state) of any signed kind, mutate
  1-4 of its fields (integers biased to 0, 1, max-1, max of their wire width
  and to the current value +- small and window-sized steps; list items
  added, removed, duplicated, or the list filled to its wire maximum;
  digests, names, nested frames swapped; the header's ring id), sign
  it with the Byzantine node's key and put it in flight, replacing the
  template in flight or to some correct nodes;
* DATA - a DATA frame sealed under the group key the Byzantine node holds,
  with chosen seq, epoch, counter and batch entries (recovered old-ring
  frames included);
* MUTE - the Byzantine node's own engine stops (or resumes) sending;
* CHURN - the Byzantine node's own engine restarts membership.

The Byzantine node runs a real engine (the "shadow") whose output the
program may tamper with; it only ever receives correct traffic and replays,
so it is checked like the correct engines.

Budget: ``sys.settrace`` counts every call, line and return event of Python
code while an engine verb runs (deterministic, unlike wall time); a verb
past OP_BUDGET is aborted from the trace function, so a hang is a quick
finding. OP_BUDGET is 25x the largest count measured over normal runs.
A loop inside C (``list(range(a, b))`` over a range a liar named) is
invisible to the tracer: it shows as memory, caught by libFuzzer's
-rss_limit_mb (2 GB by default) or, run without atheris, as MemoryError
under an address-space cap.

Memory: after every op, each engine's stores, queues and bookkeeping dicts
are checked against their configured or documented bounds (:func:`_bounds`),
and its membership sets against the roster.

Failures raise an InvariantError (an AssertionError: budget, bounds) or the
engine's own exception, with notes naming node, verb, datagram and the
finding's signature (``Type@function``). RINGWARD_FUZZ_IGNORE: a
comma-separated list of signatures to pass over (to keep fuzzing past known
findings). RINGWARD_FUZZ_TRACE=1 prints every op and crafted datagram of a
program (``fuzz/run.sh member --reproduce FILE``). :func:`world` and
:func:`signed_by` let a reproducer start from a snapshot and sign as any
node.
"""

import dataclasses
import hashlib
import io
import os
import pickle
import struct
import sys
from collections import deque
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, Final

if __name__ == "__main__":
    import contextlib

    import _harness

    with contextlib.suppress(ImportError):  # no atheris: _plain_main below
        _harness.instrument(["ringward.engine", "ringward.wire", "ringward.crypto"])

from ringward.crypto.ringsec import RingSecurity
from ringward.engine import Engine, EngineConfig
from ringward.engine.membership import State
from ringward.errors import RingwardError
from ringward.sim.keys import SimKeys
from ringward.wire import (
    Accusation,
    BatchEntry,
    CommitMember,
    CommitToken,
    Frame,
    FrameRef,
    Join,
    Kind,
    LoadReport,
    Proof,
    RingId,
    SealedKey,
    Token,
    TokenRequest,
    decode,
    encode,
    encode_batch,
    limits,
    signing_bytes,
)
from ringward.wire.codec import Bool, Bytes, Embedded, List, Record, Text, UInt
from ringward.wire.frame import DATA_PREFIX, HEADER, MAGIC, VERSION
from ringward.wire.messages import BODY_KIND, SCHEMAS

import _harness
from _meter import BudgetError, Meter

ROSTER: Final = (1, 2, 3, 4)
KEYS_SEED: Final = 20240
CLUSTER_ID: Final = bytes(limits.CLUSTER_ID_BYTES)
# Short timers so that a program of a few dozen ops spans several rounds of
# membership; a small window so that window-sized steps are cheap.
CONFIG: Final = EngineConfig(
    token_timeout_ms=200,
    consensus_timeout_ms=300,
    join_timeout_ms=20,
    merge_timeout_ms=50,
    token_hold_idle_ms=40,
    seqno_unchanged_const=3,
    receive_window_frames_max=256,
    send_queue_max=64,
    payload_bytes_max=64 << 10,
    evict_cooldown_ms=2000,
    evict_cooldown_accused_ms=3000,
    evict_cooldown_max_ms=6000,
    rekey_interval_ms=0,
)
# Trace events one engine verb may cost. Normal runs of this world (700
# programs of RUN, DELIVER, DROP, TICK, SUBMIT, REPLAY and MUTE only) peak at
# BUDGET_MEASURED events in one call: a commit token whose certificate
# carries the joins' accumulated evidence. The budget is 25x that, above the
# ~1.8M events of decoding and checking the costliest 64 KB datagram a
# member can sign (a join carrying 8 proofs of 4 full tokens each, and 64
# accusations).
BUDGET_MEASURED: Final = 110_000
OP_BUDGET: Final = 25 * BUDGET_MEASURED
# Per program.
OPS_MAX: Final = 48
RUN_ROUNDS_MAX: Final = 6
# Datagrams delivered per RUN round, and kept in flight (the network drops
# the oldest beyond it).
ROUND_DELIVERIES_MAX: Final = 160
IN_FLIGHT_MAX: Final = 1024
HISTORY_MAX: Final = 96
# Executions in `make test`'s smoke run (each restores and drives 4 keyed
# engines through up to OPS_MAX ops).
SMOKE_RUNS = 300
# The seeds are programs: fixed bytes, regenerated identically.
SEEDS_RECORDED = False

U64_MAX: Final = (1 << 64) - 1
SIGNALS: Final = (
    "token_loss",
    "slow_hold",
    "withhold",
    "churn",
    "phantom",
    "broken_link",
    "false_accusation",
    "aru_stuck",
    "commit_loss",
    "none",
    "z",
)
PROOF_KINDS: Final = (
    "equivocation",
    "overload",
    "rule:turn",
    "rule:succ",
    "rule:size",
    "rule:seq",
    "rule:frames",
    "rule:aru",
    "rule:aru_id",
    "rule:fcc",
    "rule:backlog",
    "rule:x",
)
SIGNED_KINDS: Final = (
    Kind.TOKEN,
    Kind.JOIN,
    Kind.COMMIT,
    Kind.ACCUSATION,
    Kind.PROOF,
    Kind.TOKEN_REQUEST,
)


# ------------------------------------------------------------------ input


class Reader:
    """Total reader over the fuzz input: past the end every read is 0."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def left(self) -> int:
        return len(self.data) - self.pos

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def bits(self, width: int) -> int:
        value = 0
        for _ in range((width + 7) // 8):
            value = (value << 8) | self.byte()
        return value & ((1 << width) - 1)

    def below(self, n: int) -> int:
        """0..n-1 (0 when n <= 1)."""
        if n <= 1:
            return 0
        return self.bits(max(8, (n - 1).bit_length())) % n

    def flag(self) -> bool:
        return bool(self.byte() & 1)

    def pick(self, items: tuple[Any, ...] | list[Any]) -> Any:
        return items[self.below(len(items))]


def edge_int(inp: Reader, bits: int, current: int, minimum: int = 0) -> int:
    """An integer of ``bits`` width, biased to the edges of the width and
    to the neighbourhood of ``current`` (its legitimate value)."""
    top = (1 << bits) - 1
    mode = inp.below(12)
    n, w = len(ROSTER), CONFIG.receive_window_frames_max
    steps = (1, 2, n, 2 * n, 64 * n, 64 * n + 1, w // 2, w, w + 1, 1 << 31, 1 << 32, 1 << 62)
    if mode == 0:
        value = minimum
    elif mode == 1:
        value = minimum + 1
    elif mode == 2:
        value = top - 1
    elif mode == 3:
        value = top
    elif mode in (4, 5):
        value = current + inp.below(17) - 8
    elif mode in (6, 7):
        step = inp.pick(steps)
        value = current + step if mode == 6 else current - step
    elif mode == 8:
        value = inp.bits(bits)
    elif mode == 9:
        k = inp.below(bits)
        value = (1 << k) + inp.below(3) - 1
    elif mode == 10:
        value = top - inp.below(1 << min(bits, 12))
    else:
        value = inp.byte()
    return min(max(value, minimum), top)


# ------------------------------------------------------------------ budget


# Meter and BudgetError: fuzz/_meter.py.


# ------------------------------------------------------------------ world


class InvariantError(AssertionError):
    """A broken invariant; ``signature`` identifies it across inputs."""

    def __init__(self, signature: str, detail: str) -> None:
        super().__init__(f"[{signature}] {detail}")
        self.signature = signature


def _signature(exc: BaseException) -> str:
    """``Type@function``: the innermost ringward function that raised,
    outside the wire codec when the engine called into it (``WireError@
    send_join`` rather than ``WireError@check``)."""
    if isinstance(exc, InvariantError):
        return exc.signature
    if isinstance(exc, BudgetError):
        return f"budget@{exc.args[0] if exc.args else '?'}"
    site = inner = "?"
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if f"{os.sep}ringward{os.sep}" in name:
            inner = tb.tb_frame.f_code.co_name
            if f"{os.sep}wire{os.sep}" not in name:
                site = inner
        tb = tb.tb_next
    return f"{type(exc).__name__}@{site if site != '?' else inner}"


def _describe(data: bytes) -> str:
    try:
        frame = decode(data)
    except RingwardError:
        return f"{len(data)} undecodable bytes"
    return f"{frame.kind.name} from {frame.sender} ring {frame.ring}: {frame.body!r}"[:600]


class World:
    """The engines, the network in flight, and what was seen on it."""

    def __init__(self) -> None:
        self.engines: dict[int, Engine] = {}
        self.deadlines: dict[int, float | None] = {}
        self.flight: deque[tuple[int, int, bytes]] = deque()
        self.history: deque[bytes] = deque(maxlen=HISTORY_MAX)
        self.now = 0.0
        self.byz = ROSTER[-1]
        self.muted = False
        self.meter = Meter(OP_BUDGET)
        # DATA frames the Byzantine node made (their digests go in tokens).
        self.crafted: deque[bytes] = deque(maxlen=16)
        # The latest events of every engine (node, event): for reproducers.
        self.events: deque[tuple[int, object]] = deque(maxlen=256)

    # -- driving ------------------------------------------------------------

    def verb(self, node: int, name: str, *args: Any, what: str = "") -> None:
        engine = self.engines[node]
        try:
            self.meter.call(getattr(engine, name), *args)
            ready = self.meter.call(engine.ready)
        except BudgetError as exc:
            raise InvariantError(
                f"budget@{exc.args[0]}",
                f"node {node} {name} ran past {OP_BUDGET} trace events in "
                f"{exc.args[0]}() at t={self.now:.3f}; {what}",
            ) from None
        except Exception as exc:
            exc.add_note(f"node {node} ({'byzantine shadow' if node == self.byz else 'correct'})")
            exc.add_note(f"verb {name} at t={self.now:.3f}; {what}")
            raise
        self.deadlines[node] = ready.deadline
        self.events.extend((node, event) for event in ready.events)
        if node == self.byz and self.muted:
            return
        for out in ready.datagrams:
            dests = [d for d in ROSTER if d != node] if out.dest is None else [out.dest]
            for dest in dests:
                self.put(node, dest, out.data)

    def put(self, src: int, dest: int, data: bytes) -> None:
        if dest not in self.engines or dest == src:
            return
        if len(self.flight) >= IN_FLIGHT_MAX:
            self.flight.popleft()
        self.flight.append((src, dest, data))

    def deliver(self, src: int, dest: int, data: bytes) -> None:
        if len(data) > HEADER.size and data[3] != Kind.DATA and data not in self.history:
            self.history.append(data)
        self.verb(dest, "receive", self.now, data, src, what=f"datagram: {_describe(data)}")

    def tick_all(self) -> None:
        for node in ROSTER:
            due = self.deadlines.get(node)
            if due is not None and due <= self.now:
                self.verb(node, "tick", self.now, what="tick")

    def advance(self, dt: float) -> None:
        self.now += dt
        self.tick_all()

    def step(self) -> None:
        """One RUN round: deliver what is in flight, then the next timer."""
        for _ in range(min(len(self.flight), ROUND_DELIVERIES_MAX)):
            self.deliver(*self.flight.popleft())
        due = [d for d in self.deadlines.values() if d is not None]
        self.now = max(self.now, min(due)) if due else self.now + 0.05
        self.tick_all()

    def correct(self) -> list[int]:
        return [n for n in ROSTER if n != self.byz]

    # -- invariants ---------------------------------------------------------

    def check(self) -> None:
        for node, engine in self.engines.items():
            for problem in _bounds(engine):
                raise InvariantError(
                    f"bound@{problem.split(':')[0]}",
                    f"node {node} at t={self.now:.3f}: {problem}",
                )


def _bounds(engine: Engine) -> Iterator[str]:
    """Every engine container past its configured bound."""
    cfg, n, r = engine.config, len(engine.roster), len(engine.roster)
    w = cfg.receive_window_frames_max
    limits_of: list[tuple[str, int, int]] = []

    def add(name: str, size: int, bound: int) -> None:
        limits_of.append((name, size, bound))

    for label, store in (("store", engine.store), ("new_store", engine.new_store)):
        if store is not None:
            add(f"{label}.frames", len(store.frames), w)
            add(f"{label}.tokens", len(store.tokens), w)
            add(f"{label}.confirmed", len(store.confirmed), 2 * w)
    hops, links, watch = engine.tokens.hops, engine.tokens.links, engine.detector.tokens
    add("tokens.hops.seq_at", len(hops.seq_at), 2 * n + 2)
    add("tokens.links.aru_at", len(links.aru_at), 2 * n + 2)
    add("detector.tokens.raw_at", len(watch.raw_at), 2 * n + 2)
    add("detector.tokens.seen_at", len(watch.seen_at), 2 * n + 2)
    add("tokens.links.unlinked", len(links.unlinked), 1024)
    add("tokens.hops.ahead", len(hops.ahead), 64 * n + 64)
    add("tokens.hops.asked", len(hops.asked), 64 * n + 64)
    add("tokens.hops.answered", len(hops.answered), 256)
    add("detector.tokens.rtr_watch", len(watch.rtr_watch), (n + 1) * limits.RTR_ENTRIES_MAX)
    add("tokens.links.linked_to", len(links.linked_to), 256)
    add("sendq", len(engine.sendq), cfg.send_queue_max)
    if engine.recq is not None:
        add("recq", len(engine.recq), w)
    det = engine.detector
    add("detector.accusations", sum(len(v) for v in det.accusations.values()), r * r)
    add("detector.verdicts", len(det.verdicts), r)
    add("detector.pending_false", len(det.pending_false), 1024)
    add("detector.false_last", len(det.false_last), 1025)
    add("detector.checked", len(det.checked), 1025)
    add("detector.accused_at", sum(len(v) for v in det.accused_at.values()), r * r)
    add("detector.merge_proposals", len(det.merge_proposals), r * r)
    add("detector.proposed", len(det.proposed), r)
    add("detector.evictions", sum(len(v) for v in det.evictions.values()), 64 * r)
    # RINGS_KEPT after each install; a failed round adds one (16: a few).
    add("known_rings", len(engine.known_rings), 16)
    add("seq_heard", len(engine.seq_heard), r)
    add("merge_backoff", len(engine.merge_backoff), r)
    add("overload_run", sum(len(v) for v in engine.detector.overload_run.values()), r * 16)
    add("drops", len(engine.drops), 400)
    add("notes", len(engine.notes), 400)
    # An internal inconsistency (an illegal state transition) is a finding.
    add("notes.bug", sum(v for k, v in engine.notes.items() if k.startswith("bug")), 0)
    g = engine.gather
    if g is not None:
        add("gather.joins", len(g.joins), r)
        # A correct node never proposes a node outside the roster: such a
        # proposal is a lie, and the proc set lists at most NODES_MAX ids.
        add("gather.proc_outside_roster", len(g.proc - set(engine.roster)), 0)
        add("gather.fail_outside_roster", len(g.fail - set(engine.roster)), 0)
    sec = engine.security
    if isinstance(sec, RingSecurity):
        add("security.ring_keys", len(sec._ring_keys), 8)
    for name, size, bound in limits_of:
        if size > bound:
            yield f"{name}: {size} > {bound}"


# ------------------------------------------------------------------ snapshots


class _Pickler(pickle.Pickler):
    """Shares what is immutable or unpicklable (AES-GCM contexts) by id."""

    def persistent_id(self, obj: Any) -> Any:
        if type(obj).__name__ == "AESGCM":
            _SHARED[id(obj)] = obj
            return ("shared", id(obj))
        return None


class _Unpickler(pickle.Unpickler):
    def persistent_load(self, pid: Any) -> Any:
        return _SHARED[pid[1]]


_SHARED: dict[int, Any] = {}
_SNAPSHOTS: list[tuple[str, bytes]] = []
KEYS = SimKeys(KEYS_SEED, ROSTER)
_CRAFT_SECURITY: dict[int, RingSecurity] = {}


def _dump(world: World) -> bytes:
    buf = io.BytesIO()
    state = (world.engines, world.deadlines, world.flight, world.history, world.now)
    _Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(state)
    return buf.getvalue()


def _load(blob: bytes, byz: int) -> World:
    world = World()
    state = _Unpickler(io.BytesIO(blob)).load()
    world.engines, world.deadlines, world.flight, world.history, world.now = state
    world.byz = byz
    return world


def _boot() -> World:
    world = World()
    for node in ROSTER:
        engine = Engine(node, ROSTER, config=CONFIG, security=KEYS.security(node))
        world.engines[node] = engine
    for node in ROSTER:
        world.verb(node, "tick", 0.0, what="boot")
    return world


def _states(world: World) -> set[State]:
    return {e.state for e in world.engines.values()}


def snapshots() -> list[tuple[str, bytes]]:
    """The starting points of every program (built once per process)."""
    if _SNAPSHOTS:
        return _SNAPSHOTS
    world = _boot()
    _SNAPSHOTS.append(("gather", _dump(world)))
    wanted = [State.COMMIT, State.RECOVERY]
    for _ in range(400):
        world.step()
        if wanted and wanted[0] in _states(world):
            _SNAPSHOTS.append((wanted.pop(0).value, _dump(world)))
        if not wanted and _states(world) == {State.OPERATIONAL}:
            break
    # Traffic from every node, some of it safe and some fragmented.
    for i in range(24):
        node = ROSTER[i % len(ROSTER)]
        size = 3000 if i % 7 == 0 else 40 + i
        world.verb(node, "submit", world.now, bytes([i]) * size, i % 5 == 0, what="submit")
        world.step()
    _SNAPSHOTS.append(("operational", _dump(world)))
    # A membership change with frames in flight: old-ring frames recovered.
    for i in range(12):
        world.verb(ROSTER[i % 3], "submit", world.now, bytes([i]) * 200, False, what="submit")
    for _ in range(3):
        for _ in range(min(len(world.flight), 20)):
            world.deliver(*world.flight.popleft())
    world.engines[ROSTER[2]].enter_gather(world.now, reason="fuzz")
    world.verb(ROSTER[2], "tick", world.now, what="gather")
    for _ in range(400):
        world.step()
        if State.RECOVERY in _states(world):
            _SNAPSHOTS.append(("recovery_old_frames", _dump(world)))
            break
    for _ in range(400):
        world.step()
        if _states(world) == {State.OPERATIONAL}:
            break
    _SNAPSHOTS.append(("operational_second_ring", _dump(world)))
    return _SNAPSHOTS


def world(name: str, byz: int = ROSTER[-1]) -> World:
    """A fresh copy of the snapshot ``name`` (reproducers, tests)."""
    for snap, blob in snapshots():
        if snap == name:
            return _load(blob, byz)
    raise KeyError(name)


def signed_by(node: int, ring: RingId, body: Any) -> bytes:
    """``body`` in a frame of ``ring`` signed with ``node``'s roster key."""
    if node not in _CRAFT_SECURITY:
        _CRAFT_SECURITY[node] = KEYS.security(node)
    frame = Frame(CLUSTER_ID, node, ring, body)
    signature = _CRAFT_SECURITY[node].sign(signing_bytes(frame))
    return encode(dataclasses.replace(frame, signature=signature))


# ------------------------------------------------------------------ crafting


def _slots(spec: Any, value: Any, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every mutable position of a body: (path, spec) for integer, bytes,
    text and bool leaves, lists (structural changes) and nested frames."""
    if isinstance(spec, Record):
        for name, inner in spec.fields:
            yield from _slots(inner, getattr(value, name), (*path, name))
    elif isinstance(spec, List):
        yield path, spec
        for i, item in enumerate(value):
            yield from _slots(spec.item, item, (*path, i))
    elif isinstance(spec, UInt | Bytes | Text | Bool | Embedded):
        yield path, spec


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        value = value[key] if isinstance(key, int) else getattr(value, key)
    return value


def _set(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    key, rest = path[0], path[1:]
    if isinstance(key, int):
        items = list(value)
        items[key] = _set(items[key], rest, new)
        return tuple(items)
    return dataclasses.replace(value, **{key: _set(getattr(value, key), rest, new)})


def _canonical(spec: Any, value: Any) -> Any:
    """Re-sort ascending lists after a mutation (the wire insists)."""
    if isinstance(spec, Record):
        changes = {name: _canonical(inner, getattr(value, name)) for name, inner in spec.fields}
        return dataclasses.replace(value, **changes)
    if isinstance(spec, List):
        items = tuple(_canonical(spec.item, v) for v in value)
        return tuple(sorted(set(items))) if spec.ascending else items
    return value


class Crafter:
    """Builds and mutates signed bodies for the Byzantine node."""

    def __init__(self, world: World, inp: Reader) -> None:
        self.world = world
        self.inp = inp
        byz = world.byz
        if byz not in _CRAFT_SECURITY:
            _CRAFT_SECURITY[byz] = KEYS.security(byz)
        self.sec = _CRAFT_SECURITY[byz]
        correct = world.correct()
        self.ref = world.engines[correct[inp.below(len(correct))]]

    # -- context --------------------------------------------------------------

    def members(self) -> tuple[int, ...]:
        ref = self.ref
        if ref.pending is not None:
            return ref.pending[1]
        return ref.members or ROSTER

    def ring(self) -> RingId:
        ref, inp = self.ref, self.inp
        choice = inp.below(8)
        if choice == 0 and ref.pending is not None:
            return ref.pending[0]
        if choice == 1:
            return RingId(self.world.byz, 0)
        if choice == 2:
            rep = edge_int(inp, 16, ref.ring.rep if ref.ring else 1, 1)
            seq = edge_int(inp, 64, ref.ring.seq if ref.ring else 0)
            return RingId(rep, seq)
        if choice == 3 and ref.known_rings:
            ring: RingId = inp.pick(sorted(ref.known_rings))
            return ring
        if ref.pending is not None and ref.state is State.RECOVERY:
            return ref.pending[0]
        return ref.ring or RingId(self.world.byz, 0)

    def seen(self, kind: Kind, sender: int | None = None) -> list[Frame]:
        out = []
        for data in self.world.history:
            if data[3] != kind:
                continue
            try:
                frame = decode(data)
            except RingwardError:
                continue
            if sender is None or frame.sender == sender:
                out.append(frame)
        return out

    def digest_choice(self) -> bytes:
        inp = self.inp
        choice = inp.below(5)
        if choice == 0:
            return bytes(limits.DIGEST_BYTES)
        if choice == 1:
            return b"\xff" * limits.DIGEST_BYTES
        if choice == 2:
            return self.ref.digest(b"")
        pool = [*self.world.history, *self.world.crafted]
        for _, _, data in list(self.world.flight)[-32:]:
            pool.append(data)
        if not pool:
            return bytes(limits.DIGEST_BYTES)
        return self.ref.digest(pool[inp.below(len(pool))])

    # -- default bodies -------------------------------------------------------

    def default(self, kind: Kind) -> tuple[RingId, Any]:
        ref, inp, byz = self.ref, self.inp, self.world.byz
        members = self.members()
        ring = self.ring()
        hops, watch = ref.tokens.hops, ref.detector.tokens
        store = ref.new_store if ref.state is State.RECOVERY else ref.store
        seq = store.high_seq if store is not None else 0
        aru = store.aru if store is not None else 0
        if kind is Kind.TOKEN:
            hop = max(hops.seen, 0) + 1
            if byz in members:
                while members[(hop - 1) % len(members)] != byz:
                    hop += 1
                succ = members[(members.index(byz) + 1) % len(members)]
            else:
                succ = members[0]
            before = watch.raw_at.get(hop - 1)
            prev = ref.digest(before[0]) if before is not None else ref.digest(b"")
            load = LoadReport(0, 0, 0, 0)
            body: Any = Token(
                hop, succ, seq, aru, 0 if aru >= seq else byz, (), 0, 0, (), prev, load
            )
        elif kind is Kind.JOIN:
            g = ref.gather
            proc = tuple(sorted(g.proc)) if g is not None else ROSTER
            fail = tuple(sorted(g.fail)) if g is not None else ()
            body = Join(ref.ring_seq_max, proc, fail, (), ())
        elif kind is Kind.COMMIT:
            return self.default_commit()
        elif kind is Kind.ACCUSATION:
            target = inp.pick(ROSTER)
            body = Accusation(target, max(hops.seen, 0), inp.pick(SIGNALS), 1000)
        elif kind is Kind.PROOF:
            tokens = self.seen(Kind.TOKEN, byz) or self.seen(Kind.TOKEN)
            count = 1 + inp.below(limits.PROOF_STATEMENTS_MAX)
            statements = tuple(tokens[-count:]) if tokens else ()
            if not statements:
                _, tk = self.default(Kind.TOKEN)
                statements = (self.nested(ring, tk),)
            body = Proof(byz if inp.flag() else inp.pick(ROSTER), inp.pick(PROOF_KINDS), statements)
        else:
            # Requests for recent hops, and wakes: the next hops, up to a
            # rotation ahead and just past it (engine/idle.py).
            body = TokenRequest(max(hops.seen - 2 + inp.below(4 + len(ROSTER)), 0))
        return ring, body

    def default_commit(self) -> tuple[RingId, CommitToken]:
        ref, inp = self.ref, self.inp
        g = ref.gather
        members = tuple(sorted(g.proc - g.fail)) if g is not None else ROSTER
        if not members:
            members = ROSTER
        ring = RingId(members[0], ref.ring_seq_max + 4)
        keys, key_commit = self.sec.new_ring_key(ring, [m for m in members if m in ROSTER])
        self.sec.retire(())
        joins: dict[int, Frame] = {}
        for frame in self.seen(Kind.JOIN):
            joins[frame.sender] = frame
        cert = tuple(joins[m] for m in members if m in joins)
        n = len(members)
        hop = inp.below(2 * n + 1)
        entries = []
        old = ref.store
        for m in members[: min(hop, n)]:
            entries.append(
                CommitMember(
                    m,
                    ref.ring or RingId(m, 0),
                    old.aru if old else 0,
                    old.high_seq if old else 0,
                    old.delivered if old else 0,
                    True,
                )
            )
        if not entries:
            entries.append(CommitMember(members[0], RingId(members[0], 0), 0, 0, 0, True))
        return ring, CommitToken(hop, tuple(entries), keys, key_commit, cert)

    # -- mutation -------------------------------------------------------------

    def nested(self, ring: RingId, body: Any) -> Frame:
        frame = Frame(CLUSTER_ID, self.world.byz, ring, body)
        return dataclasses.replace(frame, signature=self.sec.sign(signing_bytes(frame)))

    def nested_choice(self, spec: Embedded, current: Frame | None) -> Frame | None:
        inp = self.inp
        kinds = sorted(spec.kinds)
        kind = Kind(kinds[inp.below(len(kinds))])
        if inp.flag():
            seen = self.seen(kind)
            if seen:
                return seen[inp.below(len(seen))]
        if kind is Kind.COMMIT:
            return None
        ring, body = self.default(kind) if current is None else (current.ring, current.body)
        if current is not None and current.kind is not kind:
            ring, body = self.default(kind)
        ring, body = self.mutate(ring, body, depth=1)
        return self.nested(ring, body)

    def mutate(self, ring: RingId, body: Any, depth: int = 0) -> tuple[RingId, Any]:
        inp = self.inp
        schema = SCHEMAS[Kind(_kind_of(body))]
        for _ in range(1 + inp.below(4)):
            slots = list(_slots(schema, body, ()))
            choice = inp.below(len(slots) + 2)
            if choice >= len(slots):
                # The header's ring id (covered by the signature).
                rep = edge_int(inp, 16, ring.rep, 1) if choice == len(slots) else ring.rep
                seq = edge_int(inp, 64, ring.seq) if choice > len(slots) else ring.seq
                ring = RingId(rep, seq)
                continue
            path, spec = slots[choice]
            current = _get(body, path)
            new = self.leaf(spec, current, path, depth)
            if new is not _KEEP:
                body = _set(body, path, new)
        return ring, _canonical(schema, body)

    def leaf(self, spec: Any, current: Any, path: tuple[Any, ...], depth: int) -> Any:
        inp = self.inp
        if isinstance(spec, UInt):
            return edge_int(inp, spec.bits, current, spec.minimum)
        if isinstance(spec, Bool):
            return not current
        if isinstance(spec, Text):
            return inp.pick(PROOF_KINDS if path[-1] == "kind" else SIGNALS)
        if isinstance(spec, Bytes):
            if spec.size_min == spec.size_max == limits.DIGEST_BYTES:
                return self.digest_choice()
            flipped = bytearray(current)
            if flipped:
                flipped[inp.below(len(flipped))] ^= 1 << inp.below(8)
            return bytes(flipped)
        if isinstance(spec, Embedded):
            if depth > 0:
                return _KEEP
            new = self.nested_choice(spec, current)
            return _KEEP if new is None else new
        if isinstance(spec, List):
            return self.list_change(spec, current, depth)
        return _KEEP

    def list_change(self, spec: List, items: tuple[Any, ...], depth: int) -> Any:
        inp = self.inp
        op = inp.below(5)
        if op == 4:
            return self.fill(spec, items, depth)
        if op == 0 and len(items) > spec.count_min:
            i = inp.below(len(items))
            return items[:i] + items[i + 1 :]
        if len(items) >= spec.count_max:
            return _KEEP
        if op == 1 and items:
            return (*items, items[inp.below(len(items))])
        item = spec.item
        if isinstance(item, UInt):
            base = items[-1] if items else 0
            return (*items, edge_int(inp, item.bits, base, item.minimum))
        if isinstance(item, Embedded):
            if depth > 0:
                return _KEEP
            new = self.nested_choice(item, None)
            return _KEEP if new is None else (*items, new)
        if isinstance(item, Record) and items:
            base = items[inp.below(len(items))]
            path, leaf = inp.pick(list(_slots(item, base, ())))
            value = self.leaf(leaf, _get(base, path), path, depth)
            return (*items, base if value is _KEEP else _set(base, path, value))
        if isinstance(item, Record) and item.cls is FrameRef:
            seq = self.ref.store.high_seq + 1 if self.ref.store is not None else 1
            return (FrameRef(edge_int(inp, 64, seq), self.digest_choice()),)
        if isinstance(item, Record) and item.cls is CommitMember:
            node = inp.pick(ROSTER)
            return (CommitMember(node, RingId(node, 0), 0, 0, 0, True),)
        if isinstance(item, Record) and item.cls is SealedKey:
            return (SealedKey(inp.pick(ROSTER), bytes(80)),)
        return _KEEP

    def fill(self, spec: List, items: tuple[Any, ...], depth: int) -> Any:
        """The list at (or one short of) its wire maximum: many distinct ids
        or seqs from an edge value on, or copies of one item."""
        inp = self.inp
        count = spec.count_max - inp.below(2)
        item = spec.item
        if isinstance(item, UInt):
            top = (1 << item.bits) - 1
            base = edge_int(inp, item.bits, items[-1] if items else 0, item.minimum)
            base = min(base, top - count + 1)
            return tuple(range(base, base + count))
        if isinstance(item, Record) and item.cls is FrameRef:
            first = items[0].seq if items else 1
            first = min(edge_int(inp, 64, first), U64_MAX - count + 1)
            return tuple(FrameRef(first + i, self.digest_choice()) for i in range(count))
        if isinstance(item, Embedded):
            if depth > 0:
                return _KEEP
            one = items[inp.below(len(items))] if items and inp.flag() else None
            one = one or self.nested_choice(item, None)
            return _KEEP if one is None else (one,) * count
        if items:
            return tuple(items[i % len(items)] for i in range(count))
        return _KEEP

    def sign(self, ring: RingId, body: Any) -> bytes | None:
        try:
            frame = Frame(CLUSTER_ID, self.world.byz, ring, body)
            return encode(dataclasses.replace(frame, signature=self.sec.sign(signing_bytes(frame))))
        except RingwardError:
            return None  # out of the wire's ranges: no peer would decode it


_KEEP: Final = object()


def _kind_of(body: Any) -> int:
    return int(BODY_KIND[type(body)])


# ------------------------------------------------------------------ ops

TICK_STEPS: Final = (0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.6, 1.0, 2.5, 7.0)
PAYLOAD_SIZES: Final = (1, 40, 400, 1500, 5000)


def _op_run(world: World, inp: Reader) -> None:
    for _ in range(1 + inp.below(RUN_ROUNDS_MAX)):
        world.step()


def _op_deliver(world: World, inp: Reader) -> None:
    for _ in range(1 + inp.below(8)):
        if not world.flight:
            return
        i = inp.below(len(world.flight))
        item = world.flight[i]
        del world.flight[i]
        world.deliver(*item)


def _op_drop(world: World, inp: Reader) -> None:
    for _ in range(1 + inp.below(8)):
        if world.flight:
            del world.flight[inp.below(len(world.flight))]


def _op_tick(world: World, inp: Reader) -> None:
    world.advance(inp.pick(TICK_STEPS))


def _op_submit(world: World, inp: Reader) -> None:
    node = inp.pick(world.correct())
    size, safe = inp.pick(PAYLOAD_SIZES), inp.flag()
    engine = world.engines[node]
    if engine.send_room:
        payload = bytes([inp.byte()]) * size
        world.verb(node, "submit", world.now, payload, safe, what=f"submit {size} bytes")


def _dests(world: World, inp: Reader) -> list[int]:
    correct = world.correct()
    mask = inp.below(1 << len(correct))
    chosen = [n for i, n in enumerate(correct) if mask & (1 << i)]
    return chosen or correct


def _op_replay(world: World, inp: Reader) -> None:
    if not world.history:
        return
    data = world.history[inp.below(len(world.history))]
    for dest in _dests(world, inp):
        world.deliver(world.byz, dest, data)


def _send_crafted(world: World, inp: Reader, data: bytes) -> None:
    dests = _dests(world, inp)
    _note(f"  crafted for {dests}: {_describe(data)}")
    if inp.flag():
        for dest in dests:
            world.put(world.byz, dest, data)
    else:
        for dest in dests:
            world.deliver(world.byz, dest, data)


def _op_sign(world: World, inp: Reader) -> None:
    crafter = Crafter(world, inp)
    source = inp.below(4)
    if source == 0 and world.flight:
        # Tamper with a datagram in flight (the Byzantine node's own output,
        # mostly): the mutated copy takes its place.
        signed = [
            i for i, (src, _, d) in enumerate(world.flight) if len(d) > 3 and d[3] != Kind.DATA
        ]
        own = [i for i in signed if world.flight[i][0] == world.byz]
        pool = own if own and inp.flag() else signed
        if not pool:
            return
        i = pool[inp.below(len(pool))]
        _, dest, data = world.flight[i]
        frame = decode(data)
        ring, body = crafter.mutate(frame.ring, frame.body)
        new = crafter.sign(ring, body)
        if new is not None and dest != world.byz:
            _note(f"  tampered in flight for {dest}: {_describe(new)}")
            world.flight[i] = (world.byz, dest, new)
        return
    if source == 1 and world.history:
        frame = decode(world.history[inp.below(len(world.history))])
        ring, body = frame.ring, frame.body
    else:
        ring, body = crafter.default(inp.pick(SIGNED_KINDS))
    if inp.below(4) != 0:
        ring, body = crafter.mutate(ring, body)
    new = crafter.sign(ring, body)
    if new is not None:
        _send_crafted(world, inp, new)


def _op_data(world: World, inp: Reader) -> None:
    """A DATA frame sealed under a ring key the Byzantine node holds."""
    crafter = Crafter(world, inp)
    shadow = world.engines[world.byz]
    ring = crafter.ring()
    ref = crafter.ref
    store = ref.new_store if ref.state is State.RECOVERY else ref.store
    high = store.high_seq if store is not None else 0
    seq = edge_int(inp, 64, high + 1)
    counter = edge_int(inp, 64, shadow.data_counter + 1)
    epoch = max(counter - 1, 0) // CONFIG.epoch_frames
    if inp.below(4) == 0:
        epoch = edge_int(inp, 32, epoch)
    entries = []
    for _ in range(1 + inp.below(3)):
        recovered = inp.below(4) == 0 and bool(world.history)
        if recovered:
            payload = world.history[inp.below(len(world.history))]
        else:
            payload = bytes(inp.pick(PAYLOAD_SIZES) % 600)
        frag_count = edge_int(inp, 16, 1, 1) if inp.flag() else 1
        frag_index = edge_int(inp, 16, 0) if frag_count > 1 else 0
        msg_no = edge_int(inp, 64, shadow._msg_no + 1)
        entries.append(BatchEntry(msg_no, frag_index, frag_count, inp.flag(), payload, recovered))
    try:
        plaintext = encode_batch(entries)
        body_len = DATA_PREFIX.size + len(plaintext) + limits.AEAD_TAG_BYTES
        ad = HEADER.pack(
            MAGIC, VERSION, Kind.DATA, 0, CLUSTER_ID, world.byz, ring.rep, ring.seq, body_len
        ) + DATA_PREFIX.pack(seq, epoch, counter)
        sealed = shadow.security.seal(ring, epoch, world.byz, counter, ad, plaintext)
    except (RingwardError, ValueError, OverflowError, struct.error):
        return  # no key for that ring, or out of the wire's ranges
    data = ad + sealed
    if len(data) > CONFIG.datagram_bytes_max:
        return
    world.crafted.append(data)
    _send_crafted(world, inp, data)


def _op_mute(world: World, inp: Reader) -> None:
    world.muted = not world.muted


def _op_churn(world: World, inp: Reader) -> None:
    shadow = world.engines[world.byz]
    if shadow.state is State.OPERATIONAL:
        shadow.enter_gather(world.now, reason="churn", add=(inp.pick(ROSTER),))
        world.verb(world.byz, "tick", world.now, what="churn")


OPS: Final[tuple[Callable[[World, Reader], None], ...]] = (
    _op_run,
    _op_run,
    _op_deliver,
    _op_drop,
    _op_tick,
    _op_submit,
    _op_replay,
    _op_sign,
    _op_sign,
    _op_sign,
    _op_sign,
    _op_data,
    _op_mute,
    _op_churn,
)
OPCODE: Final = {op.__name__.removeprefix("_op_"): i for i, op in enumerate(OPS)}


def _note(text: str) -> None:
    """With RINGWARD_FUZZ_TRACE set, print what the program does."""
    if os.environ.get("RINGWARD_FUZZ_TRACE"):
        print(text, file=sys.stderr)


def _ignored() -> set[str]:
    return {s.strip() for s in os.environ.get("RINGWARD_FUZZ_IGNORE", "").split(",") if s.strip()}


def run_program(data: bytes) -> World:
    """Run one program; raises on a broken invariant."""
    snaps = snapshots()
    inp = Reader(data)
    _, blob = snaps[inp.below(len(snaps))]
    world = _load(blob, ROSTER[inp.below(len(ROSTER))])
    _note(f"snapshot {_SNAPSHOTS.index((_, blob))}, byzantine node {world.byz}")
    for _ in range(OPS_MAX):
        if inp.left() <= 0:
            break
        op = OPS[inp.below(len(OPS))]
        _note(
            f"t={world.now:.3f} {op.__name__.removeprefix('_op_')} ({len(world.flight)} in flight)"
        )
        op(world, inp)
        world.check()
    return world


def TestOneInput(data: bytes) -> None:
    try:
        run_program(data)
    except Exception as exc:
        signature = _signature(exc)
        if signature in _ignored():
            return
        exc.add_note(f"finding signature: {signature} (RINGWARD_FUZZ_IGNORE)")
        # atheris prints the exception without its notes.
        print("\n".join(getattr(exc, "__notes__", [])), file=sys.stderr)
        raise


def program(snapshot: int, byz: int, *ops: tuple[str, bytes]) -> bytes:
    """Encode a program (seeds, reproducers): ops as (name, operand bytes)."""
    out = bytearray([snapshot, ROSTER.index(byz)])
    for name, operands in ops:
        out.append(OPCODE[name])
        out += operands
    return bytes(out)


# Random programs (``_random_program``) that neither HEAD 8ab085b nor the
# fixes in progress then failed: longer seeds, so that mutations reach deep
# states quickly.
RANDOM_SEEDS: Final = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 15, 17, 18, 19, 20, 22, 24)


def _random_program(i: int) -> bytes:
    import random

    rng = random.Random(f"ringward member seed {i}")  # reproducible, not secret
    return rng.randbytes(rng.randrange(100, 300))


def seeds() -> list[bytes]:
    """Short programs from every snapshot: traffic, replays, and one signed
    statement of each kind left unmutated (a legitimate-looking base); and
    longer random programs that pass."""
    out = [_random_program(i) for i in RANDOM_SEEDS]
    for snap in range(6):
        for byz in (1, 4):
            out.append(program(snap, byz, ("run", b"\x05"), ("submit", b"\x00\x02\x00\x07")))
    out.append(program(3, 2, ("replay", b"\x03\x07"), ("run", b"\x03")))
    for k in range(len(SIGNED_KINDS)):
        # SIGN: ref 0, source 2 (default body), kind k, no mutation (0),
        # then a destination mask of every correct node, delivered now.
        out.append(program(3, 4, ("sign", bytes([0, 2, k, 0, 7, 0])), ("run", b"\x02")))
    return out


def _plain_main(argv: list[str]) -> int:
    """Without atheris: replay every file of the given corpus directories,
    then as many byte-mutated copies as ``-runs=N`` asks (no coverage
    guidance; a smoke test of the target, not a fuzzer)."""
    import random
    from pathlib import Path

    runs, prefix, inputs = 1000, "crash-", []
    for arg in argv:
        if arg.startswith("-runs="):
            runs = int(arg.split("=", 1)[1])
        elif arg.startswith("-artifact_prefix="):
            prefix = arg.split("=", 1)[1]
        elif not arg.startswith("-") and Path(arg).is_dir():
            inputs += [p.read_bytes() for p in sorted(Path(arg).iterdir()) if p.is_file()]
        elif not arg.startswith("-") and Path(arg).is_file():
            inputs.append(Path(arg).read_bytes())
    _cap_memory()
    rng = random.Random(1)  # reproducible mutations, not secrets
    pool = inputs or seeds()
    for i in range(max(runs, len(inputs))):
        data = pool[i] if i < len(inputs) else _mutated(rng, rng.choice(pool))
        try:
            TestOneInput(data)
        except Exception:
            name = f"{prefix}{hashlib.sha1(data, usedforsecurity=False).hexdigest()}"
            Path(name).write_bytes(data)
            print(f"finding: input saved to {name}", file=sys.stderr)
            raise
    print(f"{max(runs, len(inputs))} runs ok", file=sys.stderr)
    return 0


def _cap_memory(extra_bytes: int = 2 << 30) -> None:
    """Without libFuzzer's -rss_limit_mb: cap the address space, so that an
    engine materialising a huge range fails with MemoryError (a finding)
    instead of taking the machine down. Linux only."""
    try:
        import resource

        with open("/proc/self/statm", encoding="ascii") as statm:
            size = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (size + extra_bytes, hard))
    except (ImportError, OSError, ValueError):
        pass


def _mutated(rng: Any, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(3)
        if op == 0 and out:
            out[rng.randrange(len(out))] = rng.randrange(256)
        elif op == 1:
            out.insert(rng.randrange(len(out) + 1), rng.randrange(256))
        elif out:
            del out[rng.randrange(len(out))]
    return bytes(out)


if __name__ == "__main__":
    try:
        import atheris  # noqa: F401
    except ImportError:
        sys.exit(_plain_main(sys.argv[1:]))
    _harness.main(TestOneInput)
