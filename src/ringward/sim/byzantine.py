"""Byzantine members for the simulator: a real engine, holding its real
keys, whose output (and sometimes its timing) is altered by a behaviour.

``ringward sim --byzantine ID:BEHAVIOUR[,ID:BEHAVIOUR...]`` runs them; the
test suite runs every behaviour on rings of 4, 7 and 10 nodes
(tests/test_byzantine.py). Each behaviour states what must happen
(``EXPECT``): evicted (with a proof or by accusations), or harmless (no
eviction required). The checker judges every other node with the engine
issue's guarantees and forbids evicting any of them; the overloaded node is
honest (not marked Byzantine), so its deliveries are judged too, and it must
be evicted while overloaded (``OVERLOAD_GRACE_S``), rejoin, and not be
evicted again once healthy.

Behaviours (docs/fault-detector.md has the detection bounds):

* ``equivocate`` - signs two versions of each token, one to each half.
* ``lie-aru`` - raises each token's aru to its seq (aru_id 0).
* ``break-link`` - lie-aru with random bytes for ``prev``, so that no
  predecessor links to its tokens (the transition rules cannot be applied);
  every copy it sends of a token, retransmissions and answers included, is
  the altered one.
* ``drop-token`` - never forwards the token (still answers joins).
* ``starve-successor`` - sends each token (and its retransmissions) to every
  member except the successor it names: the successor must not be blamed.
* ``slow-token`` - holds each token 90% of the token timeout.
* ``withhold`` - never re-sends a frame once it was broadcast.
* ``join-churn`` - restarts membership 0.3 s after every install.
* ``join-phantom`` - the same, proposing a roster node absent from the ring
  (a crashed one) in each restart, as a merge would.
* ``flood-signed`` - signs and broadcasts tokens that are not its turn.
* ``frame:TARGET`` - accuses TARGET at every visit.
* ``flood-junk`` - ten datagrams that fail checks per real one.
* ``replay`` - re-sends other members' frames captured a second earlier.
* ``overload`` - (honest) processes every datagram slowly from 1 s to
  ``duration``/2, reporting its receive queue in its signed tokens.

Value lies (issue 14): signed numbers that make a correct engine loop over,
or overflow on, a range the liar chose. Each is one signed statement that
alone shows its signer said something impossible (expected: proof). The
join and commit liars restart membership once at the start of misbehaviour
(and retry every 0.3 s until they could), so that they have joins and a
commit entry to lie in.

* ``poison-ring-seq`` - signs every join with ring_seq 2^64-1;
  ``poison-ring-seq-jump``: its real ring_seq + 2^40.
* ``far-hop`` - every token it makes (its own turn, the right successor) has
  hop + 2^62 (rounded down to a multiple of the ring size, so the hop is
  still its turn); ``far-hop-jump``: + 10^7 (rounded the same way). Every
  copy it sends, retransmissions and answers included, is the altered one.
* ``commit-lie`` - its own entry in every commit token it forwards claims
  aru = high_seq = high_delivered = 2^64-1; ``commit-lie-jump``: each of the
  three + 5,000,000 over its real value.
"""

from __future__ import annotations

import dataclasses
import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

from ringward.engine import Engine, EngineConfig
from ringward.engine.api import Outgoing, Ready
from ringward.engine.membership import State
from ringward.engine.security import FrameSecurity
from ringward.errors import ConfigError, RingwardError
from ringward.sim.eventlog import EvictEvent, RejectedEvent, RejoinEvent
from ringward.sim.interface import EngineLike, Interceptor
from ringward.sim.keys import SimKeys
from ringward.sim.runner import Result, Scenario, run_scenario
from ringward.sim.world import World
from ringward.wire import (
    Accusation,
    Body,
    CommitMember,
    CommitToken,
    DataFrame,
    Frame,
    Join,
    Kind,
    Token,
    decode,
)

__all__ = ["BEHAVIOURS", "VALUE_LIES", "ByzantineOutcome", "parse_spec", "run_byzantine"]

# Behaviour -> what must happen to the node: "proof" (evicted on its own
# signed statements), "accused" (evicted by f+1 accusers), "overload"
# (evicted on its own load reports, then back), "harmless" (no eviction).
EXPECT: dict[str, str] = {
    "equivocate": "proof",
    "lie-aru": "proof",
    "break-link": "accused",
    "drop-token": "accused",
    "starve-successor": "harmless",
    "slow-token": "accused",
    "withhold": "accused",
    "join-churn": "accused",
    "join-phantom": "accused",
    "flood-signed": "proof",
    "frame": "accused",
    "flood-junk": "harmless",
    "replay": "harmless",
    "overload": "overload",
    "poison-ring-seq": "proof",
    # Possible (a node away for long may be far ahead), beyond what we know:
    # not adopted, proves nothing (docs/protocol.md, Validity rules).
    "poison-ring-seq-jump": "harmless",
    "far-hop": "proof",
    "far-hop-jump": "proof",
    "commit-lie": "proof",
    # Possible but false: no rule shows it alone (issue 16: recovery that
    # trusts no claim).
    "commit-lie-jump": "harmless",
}
BEHAVIOURS = tuple(sorted(EXPECT))
# The value liars of issue 14 (sim/matrix.py draws them only when asked).
VALUE_LIES = (
    "commit-lie",
    "commit-lie-jump",
    "far-hop",
    "far-hop-jump",
    "poison-ring-seq",
    "poison-ring-seq-jump",
)
# The largest value of a 64-bit wire field.
U64_MAX = (1 << 64) - 1
# Faults a behaviour needs to show at all (a lie about the aru, or a
# withheld retransmission, needs something to be missing).
NEEDS_FAULTS = {"lie-aru": "loss=0.05", "break-link": "loss=0.05", "withhold": "loss=0.05"}
# A withholder is expected evicted once it has withheld in this many token
# rotations: each withheld request scores 20 at the members that hold the
# frame (5 to the threshold, with decay and members that do not hold it).
# With loss only during the faults, a ring kept busy by other Byzantine
# members may give it fewer chances (soak seeds 1027, 1046: 0 to 2).
WITHHOLD_ROTATIONS = 10
# Overload: how slowly the node processes each datagram while overloaded.
OVERLOAD_SLOW_S = 0.02
# An overloaded node is evicted while overloaded: every eviction of it must
# be installed at most this long after its overload ends (the proof is made
# while overloaded; the membership round that installs it takes a moment).
OVERLOAD_GRACE_S = 1.0


class _Behaviour:
    """Alters what one engine sends (and may act on timers)."""

    def __init__(self, engine: ByzantineEngine, arg: int | None) -> None:
        self.engine = engine
        self.arg = arg
        # Not for secrets: reproducible misbehaviour (S311).
        self.rng = random.Random(f"{engine.node_id}:{engine.incarnation}")  # noqa: S311

    def outgoing(self, out: list[Outgoing]) -> list[Outgoing]:
        return out

    def deadline(self) -> float | None:
        return None

    def tick(self, now: float) -> None:
        return None

    def received(self, datagram: bytes) -> None:
        return None

    # helpers
    def resign(self, raw: bytes, change: Callable[[Token], Token]) -> bytes:
        frame = decode(raw)
        assert isinstance(frame.body, Token)
        return self.engine.sign_frame(frame.ring, change(frame.body))[1]

    def resign_body(self, frame: Frame, body: Body) -> bytes:
        """``frame`` (one of ours) with another body, signed by us."""
        return self.engine.sign_frame(frame.ring, body)[1]

    def others(self) -> list[int]:
        return [n for n in self.engine.roster if n != self.engine.node_id]


def _kind(data: bytes) -> Kind | None:
    try:
        return decode(data).kind
    except RingwardError:
        return None


class _Equivocate(_Behaviour):
    def outgoing(self, out: list[Outgoing]) -> list[Outgoing]:
        res: list[Outgoing] = []
        for o in out:
            if o.dest is not None or _kind(o.data) is not Kind.TOKEN:
                res.append(o)
                continue
            frame = decode(o.data)
            tk = frame.body
            assert isinstance(tk, Token)
            other = self.resign(o.data, lambda t: dataclasses.replace(t, backlog=t.backlog + 1))
            # The successor gets the version its own token will link to; the
            # others alternate, the first of them getting the other version
            # (on 4 nodes the old alternation by roster index sent the other
            # version to nobody when node 2 equivocated: Byzantine soak seed
            # 1005).
            res.append(Outgoing(tk.succ, o.data))
            rest = [d for d in self.others() if d != tk.succ]
            for i, dest in enumerate(rest):
                res.append(Outgoing(dest, other if i % 2 == 0 else o.data))
        return res


class _LieAru(_Behaviour):
    def outgoing(self, out: list[Outgoing]) -> list[Outgoing]:
        return [
            Outgoing(
                o.dest, self.resign(o.data, lambda t: dataclasses.replace(t, aru=t.seq, aru_id=0))
            )
            if _kind(o.data) is Kind.TOKEN
            else o
            for o in out
        ]


class _BreakLink(_Behaviour):
    KEPT = 256

    def __init__(self, engine: ByzantineEngine, arg: int | None) -> None:
        super().__init__(engine, arg)
        # Its real tokens -> the altered ones it sends instead, so that no
        # honest copy (a retransmission, an answer to a request) escapes.
        self.swap: dict[bytes, bytes] = {}

    def outgoing(self, out: list[Outgoing]) -> list[Outgoing]:
        res = []
        for o in out:
            frame = _decoded(o.data)
            if frame is None or frame.kind is not Kind.TOKEN:
                res.append(o)
                continue
            if frame.sender != self.engine.node_id:
                continue  # never serves another member's token either
            if o.data not in self.swap:
                if len(self.swap) >= self.KEPT:
                    self.swap.pop(next(iter(self.swap)))
                self.swap[o.data] = self.resign(
                    o.data, partial(_unlinked, junk=self.rng.randbytes(32))
                )
            res.append(Outgoing(o.dest, self.swap[o.data]))
        return res


class _DropToken(_Behaviour):
    def outgoing(self, out: list[Outgoing]) -> list[Outgoing]:
        return [o for o in out if _kind(o.data) is not Kind.TOKEN]


class _StarveSuccessor(_Behaviour):
    def outgoing(self, out: list[Outgoing]) -> list[Outgoing]:
        res = []
        for o in out:
            frame = _decoded(o.data)
            if frame is None or not isinstance(frame.body, Token):
                res.append(o)
            elif o.dest is None:
                succ = frame.body.succ
                res.extend(Outgoing(d, o.data) for d in self.others() if d != succ)
            elif o.dest != frame.body.succ:
                res.append(o)
        return res


class _SlowToken(_Behaviour):
    def __init__(self, engine: ByzantineEngine, arg: int | None) -> None:
        super().__init__(engine, arg)
        self.held: deque[tuple[float, Outgoing]] = deque()

    def outgoing(self, out: list[Outgoing]) -> list[Outgoing]:
        delay = self.engine.config.token_timeout_ms * 0.9 / 1000
        res = []
        for o in out:
            if _kind(o.data) is Kind.TOKEN:
                self.held.append((self.engine.now + delay, o))
            else:
                res.append(o)
        return res

    def deadline(self) -> float | None:
        return self.held[0][0] if self.held else None

    def tick(self, now: float) -> None:
        while self.held and self.held[0][0] <= now:
            self.engine.extra.append(self.held.popleft()[1])


class _Withhold(_Behaviour):
    def __init__(self, engine: ByzantineEngine, arg: int | None) -> None:
        super().__init__(engine, arg)
        self.sent: set[tuple[object, int]] = set()
        # The rotations (ring, hop // size) in which it withheld something:
        # its chances to be seen doing it (_judge, WITHHOLD_ROTATIONS).
        self.rotations: set[tuple[object, int]] = set()

    def outgoing(self, out: list[Outgoing]) -> list[Outgoing]:
        res = []
        e = self.engine
        for o in out:
            frame = _decoded(o.data)
            if frame is not None and isinstance(frame.body, DataFrame):
                key = (frame.ring, frame.body.seq)
                if key in self.sent:
                    # A retransmission: withheld.
                    size = max(1, len(e.members))
                    self.rotations.add((e.ring, max(0, e.tokens.hop_seen) // size))
                    continue
                self.sent.add(key)
            res.append(o)
        return res


class _JoinChurn(_Behaviour):
    PERIOD_S = 0.3

    def __init__(self, engine: ByzantineEngine, arg: int | None) -> None:
        super().__init__(engine, arg)
        self.due: float | None = None
        self.view: object = None

    def outgoing(self, out: list[Outgoing]) -> list[Outgoing]:
        e = self.engine
        if e.state is State.OPERATIONAL and e.ring != self.view:
            self.view = e.ring
            self.due = e.now + self.PERIOD_S
        return out

    def deadline(self) -> float | None:
        return self.due

    def tick(self, now: float) -> None:
        if self.due is not None and now >= self.due:
            self.due = None
            if self.engine.state is State.OPERATIONAL:
                self.engine.enter_gather(now, reason="churn", add=self.phantom())

    def phantom(self) -> tuple[int, ...]:
        return ()


class _JoinPhantom(_JoinChurn):
    """join-churn that proposes a roster node absent from the ring (a merge
    proposal was exempt from churn)."""

    def phantom(self) -> tuple[int, ...]:
        e = self.engine
        absent = [n for n in e.roster if n not in e.members]
        return tuple(absent[:1])


class _FloodSigned(_Behaviour):
    def outgoing(self, out: list[Outgoing]) -> list[Outgoing]:
        res = list(out)
        for o in out:
            if o.dest is None and _kind(o.data) is Kind.TOKEN:
                for i in range(1, 6):
                    res.append(Outgoing(None, self.resign(o.data, partial(_off_turn, i=i))))
        return res


def _unlinked(tk: Token, junk: bytes) -> Token:
    return dataclasses.replace(tk, aru=tk.seq, aru_id=0, prev=junk)


def _off_turn(tk: Token, i: int) -> Token:
    return dataclasses.replace(tk, hop=tk.hop + i, frames=(), seq=tk.seq)


class _Frame(_Behaviour):
    def outgoing(self, out: list[Outgoing]) -> list[Outgoing]:
        res = list(out)
        e = self.engine
        target = self.arg
        assert target is not None
        for o in out:
            if o.dest is None and _kind(o.data) is Kind.TOKEN and e.ring is not None:
                tk = decode(o.data).body
                assert isinstance(tk, Token)
                acc = Accusation(target, tk.hop, "token_loss", 1000)
                res.append(Outgoing(None, e.sign_frame(e.ring, acc)[1]))
        return res


class _FloodJunk(_Behaviour):
    def outgoing(self, out: list[Outgoing]) -> list[Outgoing]:
        res = list(out)
        for o in out:
            for _ in range(10):
                junk = bytearray(o.data)
                # Past the 27-byte header: a DATA frame whose AEAD fails, or a
                # signed frame whose signature does not match.
                for _flip in range(4):
                    pos = self.rng.randrange(27, len(junk)) if len(junk) > 27 else 0
                    junk[pos] ^= 1 << self.rng.randrange(8)
                res.append(Outgoing(None, bytes(junk)))
        return res


class _Replay(_Behaviour):
    def __init__(self, engine: ByzantineEngine, arg: int | None) -> None:
        super().__init__(engine, arg)
        self.captured: deque[tuple[float, bytes]] = deque(maxlen=2000)

    def received(self, datagram: bytes) -> None:
        self.captured.append((self.engine.now, datagram))

    def outgoing(self, out: list[Outgoing]) -> list[Outgoing]:
        res = list(out)
        old = [d for t, d in self.captured if t <= self.engine.now - 1.0]
        if out and old:
            for _ in range(3):
                res.append(Outgoing(None, self.rng.choice(old)))
        return res


class _RestartOnce(_Behaviour):
    """Restarts membership once misbehaviour starts (retrying every
    ``RETRY_S`` until it is operational): one round to lie in. One restart
    is far below what ``churn`` scores to an accusation."""

    RETRY_S = 0.3

    def __init__(self, engine: ByzantineEngine, arg: int | None) -> None:
        super().__init__(engine, arg)
        self.due: float | None = engine.start_s

    def deadline(self) -> float | None:
        return self.due

    def tick(self, now: float) -> None:
        if self.due is None or now < self.due:
            return
        if self.engine.state is State.OPERATIONAL:
            self.due = None
            self.engine.enter_gather(now, reason="byzantine")
        else:
            self.due = now + self.RETRY_S


class _PoisonRingSeq(_RestartOnce):
    """Every join it signs carries an impossible ring seq."""

    JUMP: int | None = None  # None: 2^64-1

    def outgoing(self, out: list[Outgoing]) -> list[Outgoing]:
        res = []
        for o in out:
            frame = _decoded(o.data)
            if frame is None or not isinstance(frame.body, Join):
                res.append(o)
                continue
            j = frame.body
            seq = U64_MAX if self.JUMP is None else min(U64_MAX, j.ring_seq + self.JUMP)
            res.append(
                Outgoing(o.dest, self.resign_body(frame, dataclasses.replace(j, ring_seq=seq)))
            )
        return res


class _PoisonRingSeqJump(_PoisonRingSeq):
    JUMP = 1 << 40


class _FarHop(_Behaviour):
    """Every token it makes jumps far ahead in hops, still on its own turn
    (hop h is made by members[(h-1) mod n]) and naming the right successor."""

    JUMP = 1 << 62
    KEPT = 256

    def __init__(self, engine: ByzantineEngine, arg: int | None) -> None:
        super().__init__(engine, arg)
        # Its real tokens -> the altered ones (retransmissions and answers
        # to token requests are the same lie).
        self.swap: dict[bytes, bytes] = {}

    def outgoing(self, out: list[Outgoing]) -> list[Outgoing]:
        res = []
        e = self.engine
        for o in out:
            frame = _decoded(o.data)
            if frame is None or not isinstance(frame.body, Token) or frame.sender != e.node_id:
                res.append(o)  # another member's token it serves: unchanged
                continue
            if o.data not in self.swap:
                if len(self.swap) >= self.KEPT:
                    self.swap.pop(next(iter(self.swap)))
                n = max(1, len(e.known_rings.get(frame.ring, e.members)))
                jump = max(n, self.JUMP // n * n)
                tk = frame.body
                far = dataclasses.replace(tk, hop=min(U64_MAX, tk.hop + jump))
                self.swap[o.data] = self.resign_body(frame, far)
            res.append(Outgoing(o.dest, self.swap[o.data]))
        return res


class _FarHopJump(_FarHop):
    JUMP = 10**7


class _CommitLie(_RestartOnce):
    """Its own entry in every commit token it forwards lies about its old
    ring: aru, high_seq and high_delivered."""

    JUMP: int | None = None  # None: 2^64-1
    KEPT = 64

    def __init__(self, engine: ByzantineEngine, arg: int | None) -> None:
        super().__init__(engine, arg)
        # The lies told: an entry that comes back round (second rotation)
        # is forwarded as it is, so the lie stays one statement per round.
        self.told: deque[CommitMember] = deque(maxlen=self.KEPT)

    def lie(self, m: CommitMember) -> CommitMember:
        if m in self.told:
            return m
        if self.JUMP is None:
            out = dataclasses.replace(
                m, aru=U64_MAX, high_seq=U64_MAX, high_delivered=U64_MAX, received_flg=True
            )
        else:
            out = dataclasses.replace(
                m,
                aru=min(U64_MAX, m.aru + self.JUMP),
                high_seq=min(U64_MAX, m.high_seq + self.JUMP),
                high_delivered=min(U64_MAX, m.high_delivered + self.JUMP),
            )
        self.told.append(out)
        return out

    def outgoing(self, out: list[Outgoing]) -> list[Outgoing]:
        res = []
        me = self.engine.node_id
        for o in out:
            frame = _decoded(o.data)
            if frame is None or not isinstance(frame.body, CommitToken) or frame.sender != me:
                res.append(o)
                continue
            ct = frame.body
            members = tuple(self.lie(m) if m.node == me else m for m in ct.members)
            if members == ct.members:
                res.append(o)
            else:
                body = dataclasses.replace(ct, members=members)
                res.append(Outgoing(o.dest, self.resign_body(frame, body)))
        return res


class _CommitLieJump(_CommitLie):
    JUMP = 5_000_000


def _decoded(data: bytes) -> Frame | None:
    try:
        return decode(data)
    except RingwardError:
        return None


_CLASSES: dict[str, type[_Behaviour]] = {
    "equivocate": _Equivocate,
    "lie-aru": _LieAru,
    "break-link": _BreakLink,
    "drop-token": _DropToken,
    "starve-successor": _StarveSuccessor,
    "slow-token": _SlowToken,
    "withhold": _Withhold,
    "join-churn": _JoinChurn,
    "join-phantom": _JoinPhantom,
    "flood-signed": _FloodSigned,
    "frame": _Frame,
    "flood-junk": _FloodJunk,
    "replay": _Replay,
    "poison-ring-seq": _PoisonRingSeq,
    "poison-ring-seq-jump": _PoisonRingSeqJump,
    "far-hop": _FarHop,
    "far-hop-jump": _FarHopJump,
    "commit-lie": _CommitLie,
    "commit-lie-jump": _CommitLieJump,
}


class ByzantineEngine(Engine):
    """A real engine whose behaviour alters what it sends."""

    def __init__(
        self,
        node_id: int,
        roster: tuple[int, ...],
        *,
        behaviour: str,
        arg: int | None,
        start_s: float,
        config: EngineConfig,
        incarnation: int,
        ring_seq: int,
        now: float,
        security: FrameSecurity | None,
        cluster_id: bytes = bytes(8),
    ) -> None:
        self.incarnation = incarnation
        self.start_s = start_s
        self.extra: list[Outgoing] = []
        self.behaviour: _Behaviour | None = None
        super().__init__(
            node_id,
            roster,
            config=config,
            cluster_id=cluster_id,
            incarnation=incarnation,
            ring_seq=ring_seq,
            now=now,
            security=security,
        )
        self.behaviour = _CLASSES[behaviour](self, arg)

    def receive(self, now: float, datagram: bytes, source: object = None) -> None:
        super().receive(now, datagram, source)
        if self.behaviour is not None:
            self.behaviour.received(datagram)

    def tick(self, now: float) -> None:
        super().tick(now)
        if self.behaviour is not None:
            self.behaviour.tick(now)

    def ready(self) -> Ready:
        out = super().ready()
        if self.behaviour is None or self.now < self.start_s:
            return out
        out.datagrams = self.behaviour.outgoing(out.datagrams) + self.extra
        self.extra = []
        own = self.behaviour.deadline()
        if own is not None:
            out.deadline = own if out.deadline is None else min(out.deadline, own)
        return out


def parse_spec(spec: str, nodes: int) -> dict[int, tuple[str, int | None]]:
    """``ID:BEHAVIOUR[,ID:BEHAVIOUR...]`` (``frame:TARGET`` takes a node id)."""
    out: dict[int, tuple[str, int | None]] = {}
    for item in spec.split(","):
        parts = item.strip().split(":")
        try:
            node = int(parts[0])
            name = parts[1]
            arg = int(parts[2]) if len(parts) > 2 else None
        except (IndexError, ValueError):
            raise ConfigError("bad_byzantine", f"{item!r}: want ID:BEHAVIOUR") from None
        if name not in EXPECT or (name == "frame") != (arg is not None) or len(parts) > 3:
            raise ConfigError(
                "bad_byzantine", f"{item!r}: behaviours are {', '.join(BEHAVIOURS)} (frame:TARGET)"
            )
        if not 1 <= node <= nodes or (arg is not None and not 1 <= arg <= nodes) or node in out:
            raise ConfigError("bad_byzantine", f"{item!r}: node out of range or repeated")
        out[node] = (name, arg)
    return out


@dataclass(frozen=True, slots=True)
class ByzantineOutcome:
    """Whether each node's expectation held, and the detection times."""

    held: bool
    detail: str
    # node -> seconds from its first misdeed (start) to the first eviction.
    detected_s: Mapping[int, float]
    result: Result
    # withhold node -> token rotations in which it withheld something.
    withheld_rotations: Mapping[int, int] = dataclasses.field(default_factory=dict)


def run_byzantine(
    scenario: Scenario,
    spec: Mapping[int, tuple[str, int | None]],
    *,
    start_s: float = 1.0,
    crashed: tuple[int, ...] = (),
    interceptor: Interceptor | None = None,
) -> ByzantineOutcome:
    """Run ``scenario`` with the given Byzantine (and overloaded) nodes and
    judge each expectation. Misbehaviour starts at ``start_s``; ``crashed``
    nodes are down from the start (the world restarts them when the faults
    end, at ``scenario.duration``); ``interceptor`` sees every datagram sent
    (run_scenario)."""
    cfg = scenario.config or EngineConfig()
    keys = (
        SimKeys(scenario.seed, tuple(range(1, scenario.nodes + 1))) if scenario.security else None
    )
    bad = {n: b for n, b in spec.items() if b[0] != "overload"}
    overloaded = [n for n, b in spec.items() if b[0] == "overload"]

    made: list[ByzantineEngine] = []

    def make(node: int, roster: tuple[int, ...], inc: int, now: float, rs: int) -> EngineLike:
        security = keys.security(node) if keys is not None else None
        if node in bad:
            name, arg = bad[node]
            byz = ByzantineEngine(
                node,
                roster,
                behaviour=name,
                arg=arg,
                start_s=start_s,
                config=cfg,
                incarnation=inc,
                ring_seq=rs,
                now=now,
                security=security,
            )
            made.append(byz)
            return byz
        return Engine(
            node, roster, config=cfg, incarnation=inc, ring_seq=rs, now=now, security=security
        )

    def setup(world: World) -> None:
        for node in crashed:
            world.schedule(0.0, world.crash, node)
        for node in overloaded:
            world.schedule(start_s, world.set_slow, node, OVERLOAD_SLOW_S)
            world.schedule(scenario.duration / 2, world.set_slow, node, 0.0)

    marks = {n: (b[0] if b[1] is None else f"{b[0]}:{b[1]}") for n, b in bad.items()}
    # The whole quiet phase: an evicted member that rejoins after its
    # cool-down and misbehaves again must be evicted again before the end.
    quiet = dataclasses.replace(scenario, early_stop=False)
    result = run_scenario(
        quiet, engine_factory=make, byzantine=marks, setup=setup, interceptor=interceptor
    )
    withheld: dict[int, int] = {}
    for byz in made:
        if isinstance(byz.behaviour, _Withhold):
            n = byz.node_id
            withheld[n] = withheld.get(n, 0) + len(byz.behaviour.rotations)
    return _judge(result, spec, start_s, withheld, scenario.duration / 2)


@dataclass
class _Seen:
    """What the event log says happened to each judged node."""

    evicted: dict[int, float] = dataclasses.field(default_factory=dict)  # first eviction
    healthy_evictions: dict[int, float] = dataclasses.field(default_factory=dict)
    reasons: dict[int, set[str]] = dataclasses.field(default_factory=dict)
    rejoined: set[int] = dataclasses.field(default_factory=set)


def _seen(result: Result, spec: Mapping[int, object], overload_end_s: float) -> _Seen:
    seen = _Seen()
    for e in result.events:
        if isinstance(e, EvictEvent) and e.node not in spec:
            seen.evicted.setdefault(e.target, e.t)
            seen.reasons.setdefault(e.target, set()).add(e.reason)
            if e.t > overload_end_s + OVERLOAD_GRACE_S:
                seen.healthy_evictions.setdefault(e.target, e.t)
        elif isinstance(e, RejoinEvent):
            seen.rejoined.add(e.node)
        elif isinstance(e, RejectedEvent):
            seen.reasons.setdefault(e.node, set()).add(e.reason)
    return seen


def _judge(
    result: Result,
    spec: Mapping[int, tuple[str, int | None]],
    start_s: float,
    withheld: Mapping[int, int],
    overload_end_s: float,
) -> ByzantineOutcome:
    seen = _seen(result, spec, overload_end_s)
    evicted, reasons, rejoined = seen.evicted, seen.reasons, seen.rejoined
    healthy_evictions = seen.healthy_evictions
    problems = []
    for node, (name, arg) in sorted(spec.items()):
        want = EXPECT[name]
        got = reasons.get(node, set())
        if want == "harmless":
            continue
        chances = withheld.get(node, WITHHOLD_ROTATIONS)
        if name == "withhold" and node not in evicted and chances < WITHHOLD_ROTATIONS:
            continue  # too few chances to be seen withholding (WITHHOLD_ROTATIONS)
        if node not in evicted:
            problems.append(f"node {node} ({name}) never evicted")
        elif want == "proof" and not any(r != "accused" for r in got):
            problems.append(f"node {node} ({name}) evicted without proof: {sorted(got)}")
        elif want == "overload" and ("overload" not in got or node not in rejoined):
            problems.append(
                f"node {node} (overload) reasons {sorted(got)}, rejoined={node in rejoined}"
            )
        elif want == "overload" and node in healthy_evictions:
            problems.append(
                f"node {node} (overload) evicted at {healthy_evictions[node]:.3f} s,"
                f" healthy since {overload_end_s:.3f} s"
            )
        if name == "frame" and arg is not None and arg in evicted:
            problems.append(f"framed node {arg} evicted")
    if not result.ok:
        first = result.report.violations[0]
        more = len(result.report.violations) - 1
        problems.append(f"guarantees broken: {first}" + (f" (+{more} more)" if more else ""))
    detected = {n: round(t - start_s, 3) for n, t in evicted.items() if n in spec}
    detail = "; ".join(problems) if problems else f"detection s {detected}"
    return ByzantineOutcome(not problems, detail, detected, result, dict(withheld))
