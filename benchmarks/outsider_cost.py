"""What one datagram from an outsider costs a steady-state engine (issue 14, finding 5).

A 4-node ring with real keys (SimKeys -> RingSecurity: Ed25519 signatures,
AES-256-GCM payloads) is formed over an in-memory network until it is
OPERATIONAL; then node 1 alone is fed crafted datagrams, one
``engine.receive(now, datagram)`` at a time, and the median CPU time
(``time.process_time_ns``) per call is reported for each class and size:

* ``foreign-cluster``   cluster id of another cluster; otherwise as below.
* ``member-bad-sig``    right cluster id, claimed sender a roster member (2),
                        a well-formed Ed25519 signature by that member over
                        other bytes (so verification runs to the end and fails).
* ``non-roster``        right cluster id, sender 999 (not in the roster).
* ``junk``              random bytes.
* ``valid-join``        the reference: a join really signed by member 2,
                        right cluster id, padded with real signed accusations
                        and proofs (of real signed tokens), its ring seq below
                        the installed ring's, so the engine verifies it and
                        drops it as stale (no state change). Legitimate
                        engines emit at most ``datagram_bytes_max`` (1400 B by
                        default); the larger valid joins are what the wire
                        format allows a member configured for big datagrams.

The three crafted classes share one body, the costliest an outsider can make
without a key: frames nested to ``limits.EMBED_DEPTH_MAX`` (proof -> joins ->
proofs -> commit tokens), every innermost commit token filled with up to 256
minimal 9-byte member entries (the densest Python-level work per byte of the
schema), with fake signatures everywhere. It is built with the wire encoder;
only the header fields (cluster id, sender) are patched in the bytes. Every
crafted datagram is checked to decode completely, so it reaches the deepest
level. ``ratio`` compares with the valid join of the same size class.

The engine's state (membership state, ring, members, ring seqs, verdicts,
token progress) is compared before and after every case; it must not change
(only the ``drops`` counters grow), so later repetitions are not cheaper.

    .venv/bin/python benchmarks/outsider_cost.py [--quick] [--json]
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import platform
import random
import statistics
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import TypeVar

import nacl.signing

from ringward.engine import Engine, State
from ringward.errors import WireError
from ringward.sim.keys import SimKeys
from ringward.wire import (
    HEADER,
    Accusation,
    Body,
    CommitMember,
    CommitToken,
    Frame,
    FrameRef,
    Join,
    LoadReport,
    Proof,
    RingId,
    Token,
    decode,
    encode,
    limits,
    signing_bytes,
)

T = TypeVar("T")

ROSTER = (1, 2, 3, 4)
TARGET = 1  # the engine measured
MEMBER = 2  # the roster member whose identity the crafted frames claim
ACCUSED = 3  # target of proofs and accusations; signer of the embedded tokens
OUTSIDER = 999  # a sender id outside the roster
SEED = 14
CLUSTER = hashlib.blake2b(b"ringward outsider_cost", digest_size=limits.CLUSTER_ID_BYTES).digest()
FOREIGN = hashlib.blake2b(b"another cluster", digest_size=limits.CLUSTER_ID_BYTES).digest()
SIZES = (1400, 8192, limits.DATAGRAM_BYTES_MAX)
FAKE_SIG = bytes([0xA5]) * limits.SIGNATURE_BYTES
INNER_RING = RingId(1, 1)
# The smallest commit member entry: msgpack [1, [1, 0], 0, 0, 0, false], 9 bytes.
CHEAP_MEMBER = CommitMember(1, RingId(1, 0), 0, 0, 0, False)
SAMPLE_NS = 200_000  # time batches of calls of at least this much CPU


# ------------------------------------------------------------ steady state


def steady_engine(keys: SimKeys) -> tuple[Engine, float]:
    """Node TARGET of a formed ring of ROSTER, and the time it is at."""
    engines = {i: Engine(i, ROSTER, cluster_id=CLUSTER, security=keys.security(i)) for i in ROSTER}
    wire: deque[tuple[int, bytes]] = deque()
    timers: dict[int, float | None] = {}
    now = 0.0
    formed_at: float | None = None

    def drain(i: int) -> None:
        ready = engines[i].ready()
        for out in ready.datagrams:
            for dest in ROSTER if out.dest is None else (out.dest,):
                if dest != i:
                    wire.append((dest, out.data))
        timers[i] = ready.deadline

    for i in ROSTER:
        drain(i)
    while now < 60.0:
        formed = all(e.state is State.OPERATIONAL and e.members == ROSTER for e in engines.values())
        if formed and formed_at is None:
            formed_at = now
        if formed_at is not None and now - formed_at > 0.5:
            break  # some token rotations in the installed ring
        for _ in range(len(wire)):
            dest, data = wire.popleft()
            engines[dest].receive(now, data)
            drain(dest)
        due = [t for t in timers.values() if t is not None]
        now = max(now, min(due)) if not wire and due else now + 0.0001
        for i, e in engines.items():
            at = timers.get(i)
            if at is not None and at <= now:
                e.tick(now)
                drain(i)
    eng = engines[TARGET]
    if eng.state is not State.OPERATIONAL or eng.ring is None or eng.ring.seq == 0:
        raise SystemExit(f"no steady ring: state {eng.state}, ring {eng.ring}")
    return eng, now


def fingerprint(eng: Engine) -> tuple[object, ...]:
    """What must not change while an engine only drops what it receives."""
    return (
        eng.state,
        eng.ring,
        eng.members,
        eng.pending,
        eng.ring_seq_max,
        eng.gather is None,
        tuple(sorted(eng.seq_heard.items())),
        tuple(sorted(eng.detector.verdicts)),
        eng.tokens.hops.seen,
    )


# ---------------------------------------------------------------- crafting


def chunks(items: Sequence[T], size: int) -> Iterator[tuple[T, ...]]:
    for i in range(0, len(items), size):
        yield tuple(items[i : i + size])


def split(total: int, size: int) -> list[int]:
    return [min(size, total - i) for i in range(0, total, size)]


def nested_frame(entries: int, cluster: bytes, sender: int, ring: RingId, sig: bytes) -> Frame:
    """proof -> joins -> proofs -> commit tokens holding ``entries`` member
    entries in all (innermost frames at depth EMBED_DEPTH_MAX)."""
    assert limits.EMBED_DEPTH_MAX == 3, "rebuild the chain for the new depth limit"

    def inner(body: Body) -> Frame:
        return Frame(cluster, ACCUSED, INNER_RING, body, FAKE_SIG)

    leaves = [
        inner(CommitToken(0, (CHEAP_MEMBER,) * n, (), bytes(limits.DIGEST_BYTES), ()))
        for n in split(entries, limits.NODES_MAX)
    ]
    proofs = [
        inner(Proof(ACCUSED, "equivocation", group))
        for group in chunks(leaves, limits.PROOF_STATEMENTS_MAX)
    ]
    joins = [
        inner(Join(0, (ACCUSED,), (), group, ()))
        for group in chunks(proofs, limits.JOIN_PROOFS_MAX)
    ]
    if len(joins) > limits.PROOF_STATEMENTS_MAX:
        raise ValueError(f"{entries} entries do not fit one datagram's nesting")
    return Frame(cluster, sender, ring, Proof(ACCUSED, "equivocation", tuple(joins)), sig)


def signed(keys: SimKeys, signer: int, ring: RingId, body: Body) -> Frame:
    unsigned = Frame(CLUSTER, signer, ring, body)
    return Frame(CLUSTER, signer, ring, body, keys.identities[signer].sign(signing_bytes(unsigned)))


def valid_join(keys: SimKeys, accusations: int, refs: int) -> bytes:
    """A stale join really signed by MEMBER: ``accusations`` signed
    accusations and proofs of tokens (signed by ACCUSED) listing ``refs``
    frames in all."""
    ring = RingId(MEMBER, 0)
    accs = tuple(
        signed(keys, MEMBER, ring, Accusation(ACCUSED, hop, "token_loss", 1000))
        for hop in range(accusations)
    )
    load = LoadReport(0, 0, 0, 0)
    tokens = []
    for hop, n in enumerate(split(refs, limits.TOKEN_FRAMES_MAX)):
        frames = tuple(
            FrameRef(s, hashlib.blake2b(s.to_bytes(8, "big"), digest_size=32).digest())
            for s in range(hop * 1000, hop * 1000 + n)
        )
        body = Token(hop, 4, 0, 0, 0, (), 0, 0, frames, bytes(limits.DIGEST_BYTES), load)
        tokens.append(signed(keys, ACCUSED, INNER_RING, body))
    proofs = tuple(
        signed(keys, MEMBER, ring, Proof(ACCUSED, "equivocation", group))
        for group in chunks(tokens, limits.PROOF_STATEMENTS_MAX)
    )
    return encode(signed(keys, MEMBER, ring, Join(0, ROSTER, (), proofs, accs)))


def fit(build: Callable[[int], bytes], target: int, unit: int, cap: int) -> tuple[bytes, int]:
    """The largest ``build(n)`` (1 <= n <= cap) within ``target`` bytes: size
    grows with n by about ``unit`` bytes; steps by the gap, then bisects."""
    lo: tuple[bytes, int] | None = None  # the largest n known to fit
    hi = cap + 1  # the smallest n known not to
    n = max(1, min(cap, (target - 500) // unit))
    for _ in range(40):
        try:
            data: bytes | None = build(n)
        except WireError:  # an enclosing frame went over the datagram limit
            data = None
        if data is not None and len(data) <= target:
            lo = (data, n)
            guess = n + max(1, (target - len(data)) // unit)
        else:
            hi = n
            over = target if data is None else len(data)
            guess = n - max(1, (over - target) // unit) if data is not None else n - n // 10
        low = lo[1] if lo is not None else 0
        if hi - low <= 1:
            break
        n = guess if low < guess < hi else (low + hi) // 2
        n = max(1, n)
    if lo is None:
        raise ValueError(f"nothing fits {target} bytes")
    return lo


def with_header(datagram: bytes, cluster: bytes, sender: int) -> bytes:
    """``datagram`` with another cluster id and sender in its header."""
    magic, version, kind, flags, _, _, rep, seq, length = HEADER.unpack_from(datagram)
    header = HEADER.pack(magic, version, kind, flags, cluster, sender, rep, seq, length)
    return header + datagram[HEADER.size :]


# --------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Row:
    cls: str
    size_class: int
    bytes: int
    us_per_call: float
    ratio: float | None
    drop: str
    calls: int


def timed(call: Callable[[], object], budget_s: float, min_samples: int) -> tuple[float, int]:
    """Median CPU ns of ``call`` and the number of calls made (one untimed
    first call included)."""
    t0 = time.process_time_ns()
    call()
    first = max(1, time.process_time_ns() - t0)
    batch = max(1, SAMPLE_NS // first)
    samples = max(min_samples, min(2000, int(budget_s * 1e9 / (batch * first))))
    per_call = []
    for _ in range(samples):
        t0 = time.process_time_ns()
        for _ in range(batch):
            call()
        per_call.append((time.process_time_ns() - t0) / batch)
    return statistics.median(per_call), 1 + samples * batch


def measure(
    eng: Engine, now: float, datagram: bytes, budget_s: float, min_samples: int
) -> tuple[float, str, int]:
    before, drops = fingerprint(eng), Counter(eng.drops)
    ns, calls = timed(lambda: eng.receive(now, datagram), budget_s, min_samples)
    grown = eng.drops - drops
    if fingerprint(eng) != before or len(grown) != 1 or next(iter(grown.values())) != calls:
        raise SystemExit(f"engine state changed, or not every call dropped alike: {grown}")
    eng.ready()  # nothing is expected, but leave nothing queued
    return ns, next(iter(grown)), calls


def verify_cost(budget_s: float, min_samples: int) -> dict[int, float]:
    """µs of one Ed25519 verification (pynacl) of a message of each size."""
    key = nacl.signing.SigningKey(bytes(32))
    out = {}
    for size in SIZES:
        message = bytes(size - limits.SIGNATURE_BYTES)
        signature = bytes(key.sign(message).signature)
        ns, _ = timed(
            functools.partial(key.verify_key.verify, message, signature), budget_s, min_samples
        )
        out[size] = ns / 1000
    return out


def run(budget_s: float, min_samples: int) -> dict[str, object]:
    keys = SimKeys(SEED, ROSTER)
    eng, now = steady_engine(keys)
    assert eng.ring is not None
    plausible = keys.identities[MEMBER].sign(b"some other statement of member 2")
    rng = random.Random(SEED)
    rows: list[Row] = []
    for size in SIZES:
        base, _ = fit(
            lambda n: encode(nested_frame(n, CLUSTER, MEMBER, eng.ring or INNER_RING, plausible)),
            size,
            unit=9,
            cap=limits.PROOF_STATEMENTS_MAX
            * limits.JOIN_PROOFS_MAX
            * limits.PROOF_STATEMENTS_MAX
            * limits.NODES_MAX,
        )
        valid, accusations = fit(lambda n: valid_join(keys, n, 0), size, unit=121, cap=64)
        if accusations == limits.JOIN_ACCUSATIONS_MAX and size - len(valid) > 600:
            valid, _ = fit(
                functools.partial(valid_join, keys, accusations), size, unit=36, cap=8192
            )
        cases = {
            "valid-join": valid,
            "foreign-cluster": with_header(base, FOREIGN, MEMBER),
            "member-bad-sig": base,
            "non-roster": with_header(base, CLUSTER, OUTSIDER),
            "junk": rng.randbytes(len(base)),
        }
        for name in ("foreign-cluster", "member-bad-sig", "non-roster"):
            decode(cases[name])  # decodes in full: reaches the deepest level
        valid_us = 0.0
        for name, data in cases.items():
            ns, drop, calls = measure(eng, now, data, budget_s, min_samples)
            us = ns / 1000
            if name == "valid-join":
                valid_us = us
            ratio = None if name == "valid-join" else us / valid_us
            rows.append(Row(name, size, len(data), us, ratio, drop, calls))
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "engine": {
            "state": eng.state.value,
            "roster": list(ROSTER),
            "node": TARGET,
            "ring": [eng.ring.rep, eng.ring.seq],
        },
        "ed25519_verify_us": verify_cost(budget_s, min_samples),
        "rows": [asdict(r) for r in rows],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short run (~0.05 s per case)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(0.05, 3) if args.quick else run(0.5, 7)
    if args.json:
        print(json.dumps(result))
        return
    engine = result["engine"]
    assert isinstance(engine, dict)
    print(
        f"node {engine['node']} of roster {engine['roster']}, {engine['state']},"
        f" ring {engine['ring']}; RingSecurity (Ed25519); median CPU per receive()"
    )
    print(f"{'class':<16} {'bytes':>6} {'µs/call':>11} {'x valid':>9}  {'drop reason':<16} calls")
    rows = result["rows"]
    assert isinstance(rows, list)
    for r in rows:
        ratio = (
            ""
            if r["ratio"] is None
            else f"{r['ratio']:,.1f}"
            if r["ratio"] >= 0.1
            else f"{r['ratio']:.4f}"
        )
        print(
            f"{r['cls']:<16} {r['bytes']:>6} {r['us_per_call']:>11,.1f} {ratio:>9}"
            f"  {r['drop']:<16} {r['calls']}"
        )
    verify = result["ed25519_verify_us"]
    assert isinstance(verify, dict)
    print(
        "Ed25519 verify (pynacl): "
        + ", ".join(f"{size} B {us:.0f} µs" for size, us in verify.items())
    )


if __name__ == "__main__":
    main()
