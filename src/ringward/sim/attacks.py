"""Attacks on a secured ring, mounted through the simulator's interceptor.

Each attack runs a scenario with real signatures and encryption
(``Scenario(security=True)``), attacks from the network or from the member
with the highest id (marked Byzantine in the log before its first misdeed,
so the checker judges everyone else), and states its expectation as a
predicate over the run. ``ringward sim --attack NAME`` runs one; the test
suite runs them all (tests/sim/test_security_attacks.py).

* ``inject`` - an outsider sends frames signed with a key outside the roster
  and DATA sealed with a random key: never delivered, refusals counted, no
  membership change.
* ``replay`` - the network re-sends captured frames later, across a view
  change: nothing delivered twice or created.
* ``replay-commit`` - the network makes the highest member re-broadcast
  frames in a new ring's recovery, cuts it off there until it times out to
  gather, and replays the ring's commit tokens and tokens to it: it never
  enters the ring again, seals nothing twice (issue 16).
* ``forge`` - the highest member re-seals another member's frame with
  altered payloads and races it ahead: caught by digest, never delivered.
* ``tamper`` - the highest member alters the retransmissions it serves:
  caught by digest, a clean copy delivered.
* ``eavesdrop-evicted`` - the highest member, cut off after 1 s, keeps its
  keys and hears everything: opens no frame of a later view.
* ``bitflip`` - the network flips a bit in 5% of datagrams: refused, no
  crash, guarantees hold.
* ``flood`` - one address sends ten junk datagrams per real one: the ring
  keeps delivering, buffers stay bounded.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import nacl.signing

from ringward.engine import Engine
from ringward.engine.delivery import AD_BYTES
from ringward.errors import ConfigError, RingwardError
from ringward.eventlog import DeliverEvent, ViewEvent
from ringward.sim.interface import Datagram, EngineFactory, Interceptor
from ringward.sim.keys import SimKeys
from ringward.sim.runner import Result, Scenario, real_engine_factory, run_scenario
from ringward.wire import (
    DataFrame,
    Frame,
    Join,
    Kind,
    RingId,
    Token,
    decode,
    decode_batch,
    encode,
    encode_batch,
    signing_bytes,
)
from ringward.wire.frame import DATA_PREFIX, HEADER, peek

__all__ = ["ATTACKS", "AttackOutcome", "run_attack"]


@dataclass(frozen=True, slots=True)
class AttackOutcome:
    """What one attack run showed: whether its expectation ``held``, why."""

    name: str
    expectation: str
    held: bool
    detail: str
    result: Result


@dataclass
class _Setup:
    interceptor: Interceptor
    factory: EngineFactory | None
    byzantine: dict[int, str]
    judge: Callable[[Result], tuple[bool, str]]
    faults: str = "none"
    duration: float | None = None


def _delivered(result: Result) -> int:
    return sum(1 for e in result.events if isinstance(e, DeliverEvent))


def _drops(result: Result, *reasons: str) -> int:
    return sum(result.stats.engine_drops.get(r, 0) for r in reasons)


def _notes(result: Result, *names: str) -> int:
    return sum(result.stats.engine_notes.get(n, 0) for n in names)


def _capture(keys: SimKeys, engines: dict[int, Engine]) -> EngineFactory:
    """The real engine factory, remembering each node's latest engine."""
    base = real_engine_factory(None, keys)

    def make(node: int, roster: tuple[int, ...], inc: int, now: float, rs: int) -> Engine:
        engine = base(node, roster, inc, now, rs)
        assert isinstance(engine, Engine)
        engines.setdefault(node, engine)  # the first incarnation: its keys
        return engine

    return make


def _inject(sc: Scenario) -> _Setup:
    rng = random.Random(f"{sc.seed}:inject")  # noqa: S311 - reproducible, not secret
    outsider = nacl.signing.SigningKey(rng.randbytes(32))
    count = [0]

    def icpt(now: float, d: Datagram) -> Iterable[Datagram]:
        yield d
        if rng.random() >= 0.2:
            return
        frame = decode(d.data)
        if frame.kind is Kind.DATA:
            assert isinstance(frame.body, DataFrame)
            body = DataFrame(frame.body.seq + 1, 0, 1, rng.randbytes(64))
            fake = encode(Frame(frame.cluster_id, d.src, frame.ring, body))
        else:
            join = Join(frame.ring.seq + 8, tuple(range(1, sc.nodes + 1)), (), (), ())
            unsigned = Frame(frame.cluster_id, d.src, frame.ring, join)
            sig = outsider.sign(signing_bytes(unsigned)).signature
            fake = encode(Frame(frame.cluster_id, d.src, frame.ring, join, sig))
        count[0] += 1
        yield Datagram(d.src, d.dest, fake)

    def judge(r: Result) -> tuple[bool, str]:
        refused = _drops(r, "bad_signature", "bad_aead")
        churn = _notes(r, "gather:join")
        ok = r.ok and count[0] > 0 and refused > 0 and churn == 0
        return ok, f"{count[0]} injected, {refused} refused, {churn} membership rounds started"

    return _Setup(icpt, None, {}, judge)


def _replay(sc: Scenario) -> _Setup:
    captured: list[Datagram] = []
    count = [0]

    def icpt(now: float, d: Datagram) -> Iterable[Datagram]:
        yield d
        if now < sc.duration / 3:
            captured.append(d)
        elif captured and now > sc.duration / 2:
            for old in captured[:20]:
                count[0] += 1
                yield old
            del captured[:20]

    def judge(r: Result) -> tuple[bool, str]:
        return r.ok and count[0] > 0, f"{count[0]} datagrams replayed"

    return _Setup(icpt, None, {}, judge, faults="crash")


class _CommitReplayer:
    """The ``replay-commit`` interceptor: the network attacker, against the
    highest node (the victim), once every ``REPEAT_S`` while the faults last.
    Each attack makes the token die twice at the victim's turn (80 of the
    100 suspicion points that get it accused, halved every 10 s): more
    often, it would be evicted by accusation, which a network that drops a
    node's traffic can always do (SECURITY.md), and which is not this test.

    ``stall``: it drops the victim's DATA and tokens from one of its visits
    on, until the victim times out to gather (its frames are then held by
    it alone); ``wait``: the next ring forms, and at its first visit there
    (in recovery) the victim re-broadcasts them, sealed under the ring's key;
    ``cut``: from then on nothing reaches or leaves the victim until it
    times out to gather; ``replay``: still cut off, it gets the ring's commit
    tokens for it, and every token of the ring, recorded on the way, one at
    a time (``GAP_S`` apart, more than a link's delay spread: in order);
    then the cut ends."""

    REPEAT_S = 30.0
    GAP_S = 0.002

    def __init__(self, sc: Scenario) -> None:
        self.victim = sc.nodes
        self.end_s = sc.duration
        self.give_up_s = 5 * sc.token_timeout_s
        self.phase = "idle"
        self.since = 0.0
        self.ring: RingId | None = None  # the ring stalled, then the ring attacked
        self.sent: dict[bytes, tuple[int, int]] = {}  # commits and tokens of self.ring
        self.sealed = False
        self.next_s = 0.0
        self.queue: list[Datagram] = []  # to replay, one per GAP_S
        self.release_s = 0.0
        self.replayed = 0

    def _to(self, phase: str, now: float, ring: RingId | None = None) -> None:
        self.phase, self.since, self.ring = phase, now, ring
        if phase == "idle":
            self.next_s = now + self.REPEAT_S

    def __call__(self, now: float, d: Datagram) -> Iterable[Datagram]:
        out = self._attack(now, d)
        if now >= self.release_s and self.phase == "replay":
            if not self.queue:
                self._to("idle", now)  # the cut ends
                return out
            self.release_s = now + self.GAP_S
            self.replayed += 1
            out.append(self.queue.pop(0))
        return out

    def _attack(self, now: float, d: Datagram) -> list[Datagram]:
        try:
            head = peek(d.data)
        except RingwardError:
            return [d]
        if self.phase != "idle" and now - self.since > self.give_up_s:
            self._to("idle", now)
        mine = d.src == self.victim
        if self.phase == "idle":
            if mine and head.kind is Kind.DATA and self.next_s <= now < self.end_s:
                self._to("stall", now, head.ring)
                return []
        elif self.phase == "stall":
            if mine and head.kind is Kind.JOIN:
                self._to("wait", now)
            elif mine and head.ring == self.ring:
                return []
        elif self.phase == "wait":
            self._wait(now, d, head.kind, head.ring)
        elif self.victim in (d.src, d.dest):  # cut, replay: nothing else in or out
            if self.phase == "cut" and mine and head.kind is Kind.JOIN:
                # It timed out of the ring's recovery: replay the ring to it.
                self._to("replay", now, self.ring)
                self._replay()
            return []
        return [d]

    def _wait(self, now: float, d: Datagram, kind: Kind, ring: RingId) -> None:
        if kind is Kind.COMMIT and ring != self.ring:
            self.ring, self.sent, self.sealed = ring, {}, False
        if ring != self.ring:
            return
        if d.data not in self.sent or d.dest == self.victim:
            # A broadcast (commit forwards are) is one copy per member: the
            # one to the victim is what gets replayed.
            self.sent[d.data] = (d.src, d.dest)
        if d.src == self.victim and kind is Kind.DATA:
            self.sealed = True
        elif d.src == self.victim and kind is Kind.TOKEN:
            # Its first visit of the ring is done: cut it off from now on.
            self._to("cut" if self.sealed else "idle", now, ring)

    def _replay(self) -> None:
        """Queue the ring's commit tokens for the victim, then every token
        of the ring it did not make, in the order first sent."""
        self.queue = [
            Datagram(src, self.victim, raw)
            for raw, (src, dest) in self.sent.items()
            if src != self.victim and (dest == self.victim or peek(raw).kind is Kind.TOKEN)
        ]


def _replay_commit(sc: Scenario) -> _Setup:
    replayer = _CommitReplayer(sc)

    def judge(r: Result) -> tuple[bool, str]:
        refused = _drops(r, "commit_reentry")
        ok = r.ok and replayer.replayed > 0 and refused > 0
        return ok, f"{replayer.replayed} datagrams replayed, {refused} refused (commit_reentry)"

    return _Setup(replayer, None, {}, judge)


def _reseal(engine: Engine, frame: Frame, raw: bytes, victim: int) -> bytes | None:
    """``raw`` (a DATA frame of ``victim``) with every payload altered and
    validly re-sealed under the group key the attacker holds."""
    body = frame.body
    assert isinstance(body, DataFrame)
    sec = engine.security
    ad = raw[:AD_BYTES]
    plain = sec.open(frame.ring, body.epoch, victim, body.counter, ad, body.ciphertext)
    if plain is None:
        return None
    fake = encode_batch([replace(e, payload=b"forged:" + e.payload) for e in decode_batch(plain)])
    header = bytearray(ad)
    struct.pack_into(">H", header, HEADER.size - 2, DATA_PREFIX.size + len(fake) + 16)
    sealed = sec.seal(frame.ring, body.epoch, victim, body.counter, bytes(header), fake)
    return bytes(header) + sealed


def _forge_or_tamper(sc: Scenario, *, tamper: bool) -> _Setup:
    keys = SimKeys(sc.seed, tuple(range(1, sc.nodes + 1)))
    engines: dict[int, Engine] = {}
    attacker = sc.nodes
    count = [0]

    served: set[int] = set()

    def icpt(now: float, d: Datagram) -> Iterable[Datagram]:
        frame = decode(d.data)
        if tamper and frame.kind is Kind.TOKEN and d.dest == attacker and attacker in engines:
            # It answers every retransmission request at once, with altered
            # copies of the frames it holds (an honest member waits for the
            # originator; this one races it).
            yield from _tampered_answers(engines[attacker], frame, attacker, served, count)
        ours = frame.kind is Kind.DATA and frame.sender != attacker and attacker in engines
        if not tamper and ours and d.src == frame.sender and d.dest != attacker:
            fake = _reseal(engines[attacker], frame, d.data, frame.sender)
            if fake is not None:
                count[0] += 1
                yield Datagram(attacker, d.dest, fake)  # raced ahead of the real one
        yield d

    def judge(r: Result) -> tuple[bool, str]:
        caught = _drops(r, "digest_mismatch")
        ok = r.ok and count[0] > 0 and caught > 0
        return ok, f"{count[0]} altered frames sent, {caught} caught by digest"

    behaviour = "tamper" if tamper else "forge"
    faults = "loss=0.1" if tamper else "none"
    return _Setup(icpt, _capture(keys, engines), {attacker: behaviour}, judge, faults=faults)


def _tampered_answers(
    engine: Engine, token: Frame, attacker: int, served: set[int], count: list[int]
) -> Iterable[Datagram]:
    body = token.body
    assert isinstance(body, Token)
    store = engine.store if engine.store and engine.store.ring == token.ring else None
    for seq in body.rtr:
        item = store.frames.get(seq) if store else None
        if item is None or item.frame.sender == attacker or seq in served:
            continue
        fake = _reseal(engine, item.frame, item.raw, item.frame.sender)
        if fake is None:
            continue
        served.add(seq)
        for dest in engine.roster:
            if dest != attacker:
                count[0] += 1
                yield Datagram(attacker, dest, fake)


def _eavesdrop(sc: Scenario) -> _Setup:
    keys = SimKeys(sc.seed, tuple(range(1, sc.nodes + 1)))
    engines: dict[int, Engine] = {}
    spy = sc.nodes
    cut_at = 1.0
    heard: list[bytes] = []

    def icpt(now: float, d: Datagram) -> Iterable[Datagram]:
        if now > cut_at and d.src != spy:
            heard.append(d.data)  # the evicted node's tap on the wire
        if now > cut_at and spy in (d.src, d.dest):
            return []
        return [d]

    def judge(r: Result) -> tuple[bool, str]:
        known = {e.view for e in r.events if isinstance(e, ViewEvent) and e.node == spy}
        tried = opened = 0
        sec = engines[spy].security
        for raw in heard:
            frame = decode(raw)
            if frame.kind is not Kind.DATA or f"R{frame.ring.rep}.{frame.ring.seq}" in known:
                continue
            body = frame.body
            assert isinstance(body, DataFrame)
            tried += 1
            args = (frame.ring, body.epoch, frame.sender, body.counter, raw[:AD_BYTES])
            opened += sec.open(*args, body.ciphertext) is not None
        ok = r.ok and tried > 20 and opened == 0
        return ok, f"{tried} frames of later views heard, {opened} opened"

    return _Setup(icpt, _capture(keys, engines), {spy: "eavesdrop-evicted"}, judge, duration=6.0)


def _bitflip(sc: Scenario) -> _Setup:
    rng = random.Random(f"{sc.seed}:bitflip")  # noqa: S311 - reproducible, not secret
    count = [0]

    def icpt(now: float, d: Datagram) -> Iterable[Datagram]:
        if rng.random() < 0.05:
            data = bytearray(d.data)
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            count[0] += 1
            return [Datagram(d.src, d.dest, bytes(data))]
        return [d]

    def judge(r: Result) -> tuple[bool, str]:
        return r.ok and count[0] > 0, f"{count[0]} datagrams flipped, {_delivered(r)} deliveries"

    return _Setup(icpt, None, {}, judge)


def _flood(sc: Scenario) -> _Setup:
    rng = random.Random(f"{sc.seed}:flood")  # noqa: S311 - reproducible, not secret
    keys = SimKeys(sc.seed, tuple(range(1, sc.nodes + 1)))
    engines: dict[int, Engine] = {}
    count = [0]

    def icpt(now: float, d: Datagram) -> Iterable[Datagram]:
        yield d
        for _ in range(10):
            count[0] += 1
            junk = d.data[: HEADER.size] + rng.randbytes(rng.randrange(0, 200))
            yield Datagram(1, d.dest, junk if rng.random() < 0.5 else rng.randbytes(60))

    def judge(r: Result) -> tuple[bool, str]:
        window = max(len(s.frames) for e in engines.values() for s in (e.store, e.new_store) if s)
        bound = engines[1].config.receive_window_frames_max
        ok = r.ok and _delivered(r) > 100 and window <= bound
        return ok, f"{count[0]} junk datagrams, {_delivered(r)} deliveries, frames held <= {window}"

    return _Setup(icpt, _capture(keys, engines), {}, judge)


ATTACKS: dict[str, tuple[Callable[[Scenario], _Setup], str]] = {
    "inject": (_inject, "never delivered, ring unaffected"),
    "replay": (_replay, "never re-delivered"),
    "replay-commit": (_replay_commit, "a ring is never entered twice"),
    "forge": (lambda sc: _forge_or_tamper(sc, tamper=False), "not delivered as the victim's"),
    "tamper": (
        lambda sc: _forge_or_tamper(sc, tamper=True),
        "caught by digest, clean copy delivered",
    ),
    "eavesdrop-evicted": (_eavesdrop, "decrypts nothing from later views"),
    "bitflip": (_bitflip, "rejected, no crash"),
    "flood": (_flood, "ring keeps delivering; memory stays bounded"),
}


def run_attack(name: str, scenario: Scenario) -> AttackOutcome:
    """Run attack ``name`` on ``scenario`` (security is switched on)."""
    if name not in ATTACKS:
        raise ConfigError("sim.bad_attack", f"unknown attack {name!r}; one of {sorted(ATTACKS)}")
    make, expectation = ATTACKS[name]
    setup = make(scenario)
    from ringward.sim.faults import FaultSpec

    sc = replace(
        scenario,
        security=True,
        faults=FaultSpec.parse(setup.faults) if str(scenario.faults) == "none" else scenario.faults,
        duration=max(scenario.duration, setup.duration or 0.0),
    )
    if setup.duration:
        setup = make(sc)
    result = run_scenario(
        sc,
        engine_factory=setup.factory,
        interceptor=setup.interceptor,
        byzantine=setup.byzantine,
    )
    held, detail = setup.judge(result)
    return AttackOutcome(name, expectation, held, detail, result)
