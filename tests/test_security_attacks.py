"""Attacks on a secured ring, mounted in the deterministic simulator.

Each test runs real Ed25519 + AES-GCM (``Scenario(security=True)``) and
attacks through the simulator's interceptor, which sees every datagram in
flight and may drop, alter or add datagrams. Each asserts the attack's
expected outcome and that every engine guarantee still holds.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterable

import nacl.signing
import pytest

from ringward.crypto.ringsec import RingSecurity
from ringward.engine import Engine
from ringward.sim.faults import FaultSpec
from ringward.sim.interface import Datagram
from ringward.sim.keys import SimKeys
from ringward.sim.runner import Result, Scenario, real_engine_factory, run_scenario
from ringward.wire import (
    BatchEntry,
    DataFrame,
    Frame,
    Join,
    Kind,
    decode,
    decode_batch,
    encode,
    encode_batch,
    signing_bytes,
)


def scenario(seed: int, faults: str = "none", nodes: int = 4) -> Scenario:
    return Scenario(
        nodes=nodes,
        seed=seed,
        duration=3.0,
        rate=60.0,
        faults=FaultSpec.parse(faults),
        security=True,
    )


def assert_ok(result: Result) -> None:
    assert result.ok, result.failure_text()


def delivered(result: Result) -> int:
    return sum(1 for e in result.events if type(e).__name__ == "DeliverEvent")


def test_baseline_secured_ring_delivers() -> None:
    result = run_scenario(scenario(1))
    assert_ok(result)
    assert delivered(result) > 100


@pytest.mark.parametrize("seed", [2, 3])
def test_outsider_injection_is_never_delivered(seed: int) -> None:
    """Frames signed with a key outside the roster, claiming to be member 2,
    and DATA frames sealed with a random key: refused, ring unaffected."""
    rng = random.Random(seed)
    outsider = nacl.signing.SigningKey(bytes(range(32)))
    injected = 0

    def inject(now: float, d: Datagram) -> Iterable[Datagram]:
        nonlocal injected
        yield d
        if rng.random() < 0.2:
            frame = decode(d.data)
            if frame.kind is Kind.DATA:
                assert isinstance(frame.body, DataFrame)
                body = DataFrame(frame.body.seq + 1, 0, 1, rng.randbytes(64))
                fake = encode(Frame(frame.cluster_id, 2, frame.ring, body))
            else:
                body2 = Join(9, (1, 2, 3, 4), (), (), ())
                unsigned = Frame(frame.cluster_id, 2, frame.ring, body2)
                sig = outsider.sign(signing_bytes(unsigned)).signature
                fake = encode(Frame(frame.cluster_id, 2, frame.ring, body2, sig))
            injected += 1
            yield Datagram(2, d.dest, fake)

    result = run_scenario(scenario(seed), interceptor=inject)
    assert_ok(result)
    assert injected > 50
    drops = result.stats.engine_drops
    assert drops.get("bad_signature", 0) + drops.get("bad_aead", 0) > 0
    assert drops.get("gather:join", 0) == 0, "a forged join restarted membership"


def test_replayed_frames_are_not_redelivered() -> None:
    """Every datagram of the first second is replayed, twice, later in the
    run (and across a view change): nothing is delivered twice or created."""
    captured: list[Datagram] = []
    replayed = 0

    def replay(now: float, d: Datagram) -> Iterable[Datagram]:
        nonlocal replayed
        yield d
        if now < 1.0:
            captured.append(d)
        elif captured and now > 1.5:
            for old in captured[:20]:
                replayed += 1
                yield old
            del captured[:20]

    result = run_scenario(scenario(4, "crash"), interceptor=replay)
    assert_ok(result)
    assert replayed > 100


def test_bit_flips_are_rejected_without_crashing() -> None:
    rng = random.Random(5)
    flipped = 0

    def flip(now: float, d: Datagram) -> Iterable[Datagram]:
        nonlocal flipped
        if rng.random() < 0.05:
            data = bytearray(d.data)
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            flipped += 1
            yield Datagram(d.src, d.dest, bytes(data))
        else:
            yield d

    result = run_scenario(scenario(5), interceptor=flip)
    assert_ok(result)
    assert flipped > 50
    assert delivered(result) > 50


def test_junk_flood_from_one_address() -> None:
    """Ten junk datagrams for every real one, from one source: the ring
    keeps delivering and every engine's buffers stay within their bounds."""
    rng = random.Random(6)

    def flood(now: float, d: Datagram) -> Iterable[Datagram]:
        yield d
        for _ in range(10):
            junk = d.data[:27] + rng.randbytes(rng.randrange(0, 200))
            yield Datagram(1, d.dest, junk if rng.random() < 0.5 else rng.randbytes(60))

    result = run_scenario(scenario(6), interceptor=flood)
    assert_ok(result)
    assert delivered(result) > 100


def test_departed_node_reads_nothing_of_later_views() -> None:
    """Node 4 is cut off for good after 1 s but keeps its keys and hears
    everything; no DATA frame of a later ring opens with its keys."""
    keys = SimKeys(7, (1, 2, 3, 4))
    kept: dict[int, RingSecurity] = {}
    base = real_engine_factory(None, keys)

    def factory(node: int, roster: tuple[int, ...], inc: int, now: float, rs: int) -> Engine:
        engine = base(node, roster, inc, now, rs)
        assert isinstance(engine, Engine)
        if node == 4 and 4 not in kept:
            assert isinstance(engine.security, RingSecurity)
            kept[4] = engine.security
        return engine

    heard: list[bytes] = []

    def cut(now: float, d: Datagram) -> Iterable[Datagram]:
        if now > 1.0 and d.src != 4:
            heard.append(d.data)  # the eavesdropper's copy of everything
        if now > 1.0 and 4 in (d.src, d.dest):
            return []
        return [d]

    sc = Scenario(nodes=4, seed=7, duration=6.0, rate=60.0, security=True)
    result = run_scenario(sc, engine_factory=factory, interceptor=cut)
    later = []
    for raw in heard:
        frame = decode(raw)
        if frame.kind is Kind.DATA and 4 not in _ring_members(result, frame):
            later.append((frame, raw))
    assert len(later) > 20, "no frames of a later view to try"
    spy = kept[4]
    for frame, raw in later:
        body = frame.body
        assert isinstance(body, DataFrame)
        opened = spy.open(
            frame.ring, body.epoch, frame.sender, body.counter, raw[:47], body.ciphertext
        )
        assert opened is None


def _ring_members(result: Result, frame: Frame) -> tuple[int, ...]:
    view = f"R{frame.ring.rep}.{frame.ring.seq}"
    for e in result.events:
        if type(e).__name__ == "ViewEvent" and e.view == view:  # type: ignore[attr-defined]
            return tuple(e.members)  # type: ignore[attr-defined]
    return ()


def test_member_forges_a_frame_as_another() -> None:
    """Member 4 holds the group key: it opens a frame of member 2 in flight,
    alters the payloads and re-seals them under 2's nonce, and races the
    forgery ahead of the real frame to members 1 and 3. The AEAD cannot
    tell (the key is shared); the digest in 2's signed token can: the forged
    copy is discarded, the real one fetched, nothing forged delivered."""
    keys = SimKeys(8, (1, 2, 3, 4))
    live: dict[int, Engine] = {}
    base = real_engine_factory(None, keys)

    def factory(node: int, roster: tuple[int, ...], inc: int, now: float, rs: int) -> Engine:
        engine = base(node, roster, inc, now, rs)
        assert isinstance(engine, Engine)
        live[node] = engine
        return engine

    forged = 0

    def forge(now: float, d: Datagram) -> Iterable[Datagram]:
        nonlocal forged
        frame = decode(d.data)
        if frame.kind is Kind.DATA and frame.sender == 2 and d.dest in (1, 3) and now > 0.5:
            body = frame.body
            assert isinstance(body, DataFrame)
            spy = live[4].security
            ad = d.data[:47]
            plain = spy.open(frame.ring, body.epoch, 2, body.counter, ad, body.ciphertext)
            if plain is not None:
                entries = [
                    BatchEntry(e.msg_no, e.frag_index, e.frag_count, e.safe, b"forged" + e.payload)
                    for e in decode_batch(plain)
                ]
                fake_plain = encode_batch(entries)
                header = bytearray(ad)
                struct.pack_into(">H", header, 25, 20 + len(fake_plain) + 16)
                sealed = spy.seal(
                    frame.ring, body.epoch, 2, body.counter, bytes(header), fake_plain
                )
                forged += 1
                yield Datagram(4, d.dest, bytes(header) + sealed)
        yield d

    result = run_scenario(scenario(8), engine_factory=factory, interceptor=forge)
    assert forged > 20
    assert_ok(result)
    assert result.stats.engine_drops.get("digest_mismatch", 0) > 0
