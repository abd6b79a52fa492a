"""A maker cannot hand a member a second version of its token, in recovery
or while the ring is operational (issue 16, finding 5; real engines, real
keys).

Recovery re-broadcasts old-ring tokens so that members that missed one can
confirm the frames it lists. Before this, any verified old-ring token was
confirmed by a member lacking its seqs' digests, first come first served: a
member that had missed its maker's token could be handed another version
signed by the maker (other digests for the maker's own seqs), and delivered
another message at that seq than the rest of the ring.
"""

from __future__ import annotations

import dataclasses

import pytest

from ring_harness import Cluster, body_of
from ringward.engine import versions
from ringward.engine.membership import State
from ringward.engine.reasons import Drop
from ringward.wire import (
    BatchEntry,
    DataFrame,
    FrameRef,
    RingId,
    Token,
    decode,
    encode_batch,
    limits,
)
from ringward.wire.frame import DATA_PREFIX, HEADER, MAGIC, VERSION, peek
from ringward.wire.messages import Kind

pytestmark = pytest.mark.heavy  # seconds each: real engines under a traced work budget

FORMED_S = 0.6
# A counter far above any the maker used: the forged frame is a new frame.
FORGED_COUNTER = 1_000_000


class Original:
    """The maker's token listing its frame, as the ring saw it."""

    raw: bytes = b""
    hop: int = 0
    seq: int = 0
    ring: RingId = RingId(0, 0)


def watch_maker(original: Original, maker: int, data: bytes, src: int) -> None:
    """Remember the first token of ``maker`` that lists a frame."""
    if original.raw or src != maker or peek(data).kind is not Kind.TOKEN:
        return
    frame = decode(data)
    tk = frame.body
    assert isinstance(tk, Token)
    if frame.sender == maker and tk.frames:
        original.raw, original.hop, original.seq = data, tk.hop, tk.frames[0].seq
        original.ring = frame.ring


def forged_data(c: Cluster, maker: int, ring: RingId, seq: int, payload: bytes) -> bytes:
    """A DATA frame of ``maker`` at ``seq`` sealed under the ring's key (any
    member holds it): what a Byzantine maker can put at its own seq."""
    e = c.engines[maker]
    entry = BatchEntry(e.next_msg_no(), 0, 1, False, payload)
    plaintext = encode_batch([entry])
    body_len = DATA_PREFIX.size + len(plaintext) + limits.AEAD_TAG_BYTES
    ad = HEADER.pack(
        MAGIC, VERSION, Kind.DATA, 0, e.cluster_id, maker, ring.rep, ring.seq, body_len
    ) + DATA_PREFIX.pack(seq, 0, FORGED_COUNTER)
    raw = ad + e.security.seal(ring, 0, maker, FORGED_COUNTER, ad, plaintext)
    assert isinstance(decode(raw).body, DataFrame)
    return raw


def second_version(c: Cluster, maker: int, original: Original, data: bytes) -> bytes:
    """The maker's token at the original's hop, signed again, listing the
    forged frame's digest for its seq."""
    tk = decode(original.raw).body
    assert isinstance(tk, Token)
    forged = dataclasses.replace(
        tk, frames=(FrameRef(original.seq, c.engines[maker].digest(data)),)
    )
    return c.sign(maker, original.ring, forged)


def run_until(c: Cluster, done: object, limit_s: float, step_s: float = 0.01) -> None:
    """Run in small steps until ``done()`` or ``limit_s`` passed (bounded by
    steps, not by the wall clock)."""
    for _ in range(round(limit_s / step_s)):
        if done():  # type: ignore[operator]
            return
        c.run(step_s)


def agree(c: Cluster, correct: tuple[int, ...]) -> None:
    """Every correct node delivered the maker's original message and not the
    forged one, and the same payloads in the same order."""
    for i in correct:
        assert b"orig" in c.delivered(i), (i, c.delivered(i))
        assert b"forged" not in c.delivered(i), (i, c.delivered(i))
    first = c.delivered(correct[0])
    for i in correct[1:]:
        assert c.delivered(i) == first, (i, c.delivered(i), first)


# ------------------------------------------------ handed over after the ring broke

VICTIM_A = 1


@pytest.mark.parametrize("maker", [3, 4])
def test_a_second_version_handed_over_after_the_ring_broke_is_refused(maker: int) -> None:
    """Node 1 misses ``maker``'s token listing its message (every copy of
    it, served ones too), and the ring goes to recovery: node 4's token is
    passed to node 1 itself, which never gets it (token loss); node 3's is
    followed by node 4's, which node 1 holds, but its chain stalls. The
    maker then hands node 1 another version of that token, listing a forged
    frame's digest, and the forged frame. Node 1 confirmed it (a late token
    of the ring it left), dropped the real frame as contradicting it, and
    delivered the forged message where everyone else delivered the real
    one. Now a late token is confirmed only if it is the version a later
    token names (node 4's ``prev``: refused, ``recovered:version``);
    without one, only through recovery's stream. Node 1 keeps the second
    version it was handed; the real one, when recovery brings it, proves
    the maker equivocated, and the ring goes on without it."""
    original = Original()
    correct = tuple(i for i in (1, 2, 3, 4) if i != maker)

    def lose(c: Cluster, src: int, dest: int, data: bytes) -> bool:
        watch_maker(original, maker, data, src)
        return dest == VICTIM_A and data == original.raw and bool(original.raw)

    c = Cluster(4, lose=lose)
    c.run(FORMED_S)
    assert all(c.regular_members(i) == c.roster for i in c.roster)
    c.submit(maker, b"orig")
    run_until(c, lambda: c.engines[VICTIM_A].state is not State.OPERATIONAL, 3.0)
    assert original.raw and c.engines[VICTIM_A].state is not State.OPERATIONAL
    data = forged_data(c, maker, original.ring, original.seq, b"forged")
    c.broadcast(maker, second_version(c, maker, original, data), (VICTIM_A,))
    c.broadcast(maker, data, (VICTIM_A,))
    c.run(3.0)
    for i in correct:
        assert c.engines[i].state is State.OPERATIONAL, i
    agree(c, correct)
    pinned = maker == 3
    assert (c.engines[VICTIM_A].drops[Drop.RECOVERED_VERSION] >= 1) is pinned
    for i in correct:
        assert c.regular_members(i) == correct, i
        assert any(ev.target == maker and ev.proof for ev in c.evictions(i)), i


# ------------------------------------------- nothing pins it: two versions seen

MAKER_B, VICTIM_B, CORRECT_B = 1, 3, (2, 3, 4)


def test_a_second_version_in_recovery_is_not_confirmed_before_the_first() -> None:
    """Node 3 misses node 1's token and every token after it, so it holds
    nothing that names the real version; the ring goes to recovery. Node 1,
    the new ring's representative, re-broadcasts a second version of its
    token and a forged frame before anyone else re-broadcasts anything.
    Node 3 confirmed the first version it saw, the forged one, and delivered
    the forged message. Now an unpinned recovered version is confirmed only
    when recovery ends, if no other version of that hop came: here the real
    one comes, which proves node 1 equivocated; it is evicted and the next
    recovery brings the real version alone."""
    original = Original()

    def lose(c: Cluster, src: int, dest: int, data: bytes) -> bool:
        watch_maker(original, MAKER_B, data, src)
        if not original.raw or dest != VICTIM_B or peek(data).kind is not Kind.TOKEN:
            return False
        frame = decode(data)
        tk = frame.body
        return isinstance(tk, Token) and frame.ring == original.ring and tk.hop >= original.hop

    c = Cluster(4, lose=lose)
    c.run(FORMED_S)
    assert all(c.regular_members(i) == c.roster for i in c.roster)
    c.submit(MAKER_B, b"orig")

    def maker_left() -> bool:
        return c.engines[MAKER_B].state is not State.OPERATIONAL

    # In steps of a millisecond: the maker must still be gathering, before
    # it re-broadcasts anything in recovery.
    run_until(c, maker_left, 3.0, step_s=0.001)
    assert original.raw and maker_left()
    # The maker holds the second version instead of the first: it
    # re-broadcasts it, and the forged frame, in recovery.
    m = c.engines[MAKER_B]
    store = m.store
    assert store is not None
    data = forged_data(c, MAKER_B, original.ring, original.seq, b"forged")
    forged = second_version(c, MAKER_B, original, data)
    store.tokens[original.hop] = dataclasses.replace(store.tokens[original.hop], raw=forged)
    item = store.frames.get(original.seq)
    if item is not None:
        store.frames[original.seq] = dataclasses.replace(
            item, raw=data, frame=decode(data), digest=m.digest(data)
        )
    c.run(4.0)
    agree(c, CORRECT_B)
    for i in CORRECT_B:
        assert c.engines[i].state is State.OPERATIONAL, i
        assert c.regular_members(i) == CORRECT_B, i
        assert any(ev.target == MAKER_B and ev.proof for ev in c.evictions(i)), i


def test_a_forged_frame_first_in_recovery_does_not_keep_the_real_one_out() -> None:
    """Node 3 misses node 1's frame and every token from node 1's on; node
    1 re-broadcasts first in recovery, its real token but a forged frame at
    its seq. The token is confirmed only when recovery ends, so the forged
    frame takes the seq meanwhile, and the real one, re-broadcast by node 2
    and node 4, is kept aside (it is listed by a version seen): when the
    token is confirmed, the forged frame is discarded and the real one
    takes its place. Without that, node 3 would lack the frame the others
    deliver (a guard of the deferral: the code before confirmed the token
    at once and passed too)."""
    original = Original()

    def lose(c: Cluster, src: int, dest: int, data: bytes) -> bool:
        watch_maker(original, MAKER_B, data, src)
        if dest != VICTIM_B or c.now < FORMED_S:
            return False
        kind = peek(data).kind
        if kind is Kind.DATA and src == MAKER_B and not original.raw:
            return True  # the frame's broadcast and the maker's answers
        if not original.raw or kind is not Kind.TOKEN:
            return False
        frame = decode(data)
        tk = frame.body
        return isinstance(tk, Token) and frame.ring == original.ring and tk.hop >= original.hop

    c = Cluster(4, lose=lose)
    c.run(FORMED_S)
    c.submit(MAKER_B, b"orig")

    def maker_left() -> bool:
        return c.engines[MAKER_B].state is not State.OPERATIONAL

    # In steps of a millisecond: the maker must still be gathering, before
    # it re-broadcasts anything in recovery.
    run_until(c, maker_left, 3.0, step_s=0.001)
    assert original.raw and maker_left()
    victim = c.engines[VICTIM_B].store
    assert victim is not None and original.seq not in victim.frames
    m = c.engines[MAKER_B]
    store = m.store
    assert store is not None
    data = forged_data(c, MAKER_B, original.ring, original.seq, b"forged")
    item = store.frames[original.seq]
    store.frames[original.seq] = dataclasses.replace(
        item, raw=data, frame=decode(data), digest=m.digest(data)
    )
    c.run(3.0)
    for i in CORRECT_B:
        assert c.engines[i].state is State.OPERATIONAL, i
    agree(c, CORRECT_B)


# ------------------------------------------------------------- while operational

MAKER_C, VICTIM_C, CORRECT_C = 3, 1, (1, 2, 4)


def test_two_versions_while_operational_are_delivered_apart() -> None:
    """Node 3 sends node 1 a second version of its token and a forged frame,
    in place of the real ones (their first copies to node 1 are lost), while
    the ring is operational. Node 1 confirmed the first signed digest for
    the seq and delivered the forged message at once; the real version,
    fetched when node 4's token linked to it, proved the equivocation only
    after. Now node 1 confirms a token's frames only once the chain pins its
    version (engine/chain.py): node 4's token names the real one, node 1
    fetches it, node 3 is convicted, and recovery brings the real frame."""
    original = Original()
    lost: list[str] = []

    def lose(c: Cluster, src: int, dest: int, data: bytes) -> bool:
        watch_maker(original, MAKER_C, data, src)
        if dest != VICTIM_C or src != MAKER_C or c.now < FORMED_S:
            return False
        if "data" not in lost and peek(data).kind is Kind.DATA:
            lost.append("data")
            return True
        if "token" not in lost and original.raw and data == original.raw:
            lost.append("token")
            return True
        return False

    c = Cluster(4, lose=lose)
    c.run(FORMED_S)
    assert all(c.regular_members(i) == c.roster for i in c.roster)
    c.submit(MAKER_C, b"orig")
    # In steps of a millisecond: the forgery must reach node 1 before the
    # real token's copies do.
    run_until(c, lambda: bool(original.raw), 1.0, step_s=0.001)
    data = forged_data(c, MAKER_C, original.ring, original.seq, b"forged")
    c.broadcast(MAKER_C, second_version(c, MAKER_C, original, data), (VICTIM_C,))
    c.broadcast(MAKER_C, data, (VICTIM_C,))
    c.run(3.0)
    agree(c, CORRECT_C)
    for i in CORRECT_C:
        assert c.engines[i].state is State.OPERATIONAL, i
        assert c.regular_members(i) == CORRECT_C, i
        assert any(ev.target == MAKER_C and ev.proof for ev in c.evictions(i)), i


LINKING_VICTIM = 2


def test_two_versions_with_the_linking_token_lost() -> None:
    """As above, with node 2 the victim, and the token that links to the
    maker's (node 4's, the next hop) lost on its way to node 2: node 2
    holds the second version and a later token, fetches the missing one
    (the chain asks for it), which names the real version: fetched in
    turn, it proves node 3 equivocated. Node 2 delivered the forged
    message at once before."""
    original = Original()
    lost: list[str] = []

    def lose(c: Cluster, src: int, dest: int, data: bytes) -> bool:
        watch_maker(original, MAKER_C, data, src)
        if dest != LINKING_VICTIM or c.now < FORMED_S:
            return False
        kind = peek(data).kind
        if src == MAKER_C and "data" not in lost and kind is Kind.DATA:
            lost.append("data")
            return True
        if src == MAKER_C and "token" not in lost and original.raw and data == original.raw:
            lost.append("token")
            return True
        if src == 4 and "link" not in lost and original.raw and kind is Kind.TOKEN:
            tk = body_of(data)
            if isinstance(tk, Token) and tk.hop == original.hop + 1:
                lost.append("link")
                return True
        return False

    c = Cluster(4, lose=lose)
    c.run(FORMED_S)
    c.submit(MAKER_C, b"orig")
    run_until(c, lambda: bool(original.raw), 1.0)
    data = forged_data(c, MAKER_C, original.ring, original.seq, b"forged")
    c.broadcast(MAKER_C, second_version(c, MAKER_C, original, data), (LINKING_VICTIM,))
    c.broadcast(MAKER_C, data, (LINKING_VICTIM,))
    c.run(3.0)
    assert "link" in lost
    agree(c, CORRECT_C)
    for i in CORRECT_C:
        assert c.regular_members(i) == CORRECT_C, i
        assert any(ev.target == MAKER_C and ev.proof for ev in c.evictions(i)), i


# ------------------------------------------- two colluding neighbours, f = 2

MAKER_D, ACCOMPLICE_D, VICTIM_D = 3, 4, 1
CORRECT_D = (1, 2, 5, 6, 7)


def test_colluding_neighbours_cannot_split_delivery() -> None:
    """Seven nodes (f = 2). Node 3 hands node 1 a second version of its
    token and a forged frame; node 4, its successor and accomplice, hands
    node 1 a second version of its own token naming that second version.
    A member that confirmed a token once the next token linked to it would
    deliver the forged message; so a token is pinned only once ``f`` tokens
    by other members follow it, each naming the one before (one of them is
    correct).
    Node 5's token names node 4's real version: node 1 fetches it, node 4
    is convicted, and recovery brings node 1 the real version and frame."""
    original = Original()
    forged: dict[str, bytes] = {}

    def lose(c: Cluster, src: int, dest: int, data: bytes) -> bool:
        watch_maker(original, MAKER_D, data, src)
        if dest != VICTIM_D or c.now < FORMED_S:
            return False
        kind = peek(data).kind
        if src == MAKER_D and kind is Kind.DATA and "data" not in forged:
            forged["data"] = b""  # the real frame's first copy: lost
            return True
        if src == MAKER_D and original.raw and data == original.raw and "v2" not in forged:
            payload = forged_data(c, MAKER_D, original.ring, original.seq, b"forged")
            forged["v2"] = second_version(c, MAKER_D, original, payload)
            c.broadcast(MAKER_D, forged["v2"], (VICTIM_D,))
            c.broadcast(MAKER_D, payload, (VICTIM_D,))
            return True
        if src == ACCOMPLICE_D and "v2" in forged and "w2" not in forged and kind is Kind.TOKEN:
            frame = decode(data)
            tk = frame.body
            if isinstance(tk, Token) and tk.hop == original.hop + 1:
                prev = c.engines[MAKER_D].digest(forged["v2"])
                forged["w2"] = c.sign(ACCOMPLICE_D, frame.ring, dataclasses.replace(tk, prev=prev))
                c.broadcast(ACCOMPLICE_D, forged["w2"], (VICTIM_D,))
                return True
        return False

    c = Cluster(7, lose=lose)
    c.run(FORMED_S)
    assert all(c.regular_members(i) == c.roster for i in c.roster)
    c.submit(MAKER_D, b"orig")
    c.run(4.0)
    assert "w2" in forged
    agree(c, CORRECT_D)
    for i in CORRECT_D:
        assert c.engines[i].state is State.OPERATIONAL, i
        assert any(ev.target == ACCOMPLICE_D and ev.proof for ev in c.evictions(i)), i


# --------------------------------------------------------------- pin depth


@pytest.mark.parametrize(
    ("f", "n", "depth"),
    [(0, 1, 1), (0, 2, 1), (0, 3, 1), (1, 4, 1), (1, 2, 1), (2, 7, 2), (2, 2, 1), (3, 10, 3)],
)
def test_pin_depth(f: int, n: int, depth: int) -> None:
    """``f`` later tokens by other members pin a hop (one is correct when
    its maker is not), never fewer than one nor more than the others."""
    assert versions.pin_depth(f, n) == depth


def test_a_ring_of_two_counts_the_other_members_frames_at_once() -> None:
    """On 2 nodes the token after a member's is the other member's own: it
    pins the version it visits as it signs, so the aru in that token counts
    the frames just confirmed (no rotation lost for safe delivery), and
    both deliver the safe message. A guard of the visit's pin: it passed
    before (confirmed at once), and fails if only the next token pins."""
    seen: list[Token] = []

    def watch(c: Cluster, src: int, dest: int, data: bytes) -> bool:
        if dest == 1 and src == 2 and peek(data).kind is Kind.TOKEN:
            tk = body_of(data)
            if isinstance(tk, Token):
                seen.append(tk)
        return False

    c = Cluster(2, lose=watch)
    c.run(FORMED_S)
    assert c.regular_members(1) == (1, 2)
    listed: list[Original] = []

    def note(c: Cluster, src: int, dest: int, data: bytes) -> bool:
        watch(c, src, dest, data)
        if src == 1 and peek(data).kind is Kind.TOKEN and not listed:
            tk = body_of(data)
            if isinstance(tk, Token) and tk.frames:
                o = Original()
                o.hop, o.seq = tk.hop, tk.frames[0].seq
                listed.append(o)
        return False

    c.lose = note
    c.submit(1, b"m", safe=True)
    c.run(0.2)
    assert listed
    after = [tk for tk in seen if tk.hop == listed[0].hop + 1]
    assert after and after[0].aru >= listed[0].seq
    assert c.delivered(1) == c.delivered(2) == [b"m"]


# ------------------------------------------------- the tail: nobody links to it

TAIL_MAKER, TAIL_VICTIM, TAIL_CORRECT = 3, 2, (1, 2)


def test_two_versions_of_the_last_token_before_the_ring_broke() -> None:
    """Node 3 sends node 2 a second version of its token (and a forged
    frame), node 1 the real one, and node 4, its successor, crashes before
    it hears either: no token ever links to node 3's. Nodes 1 and 2 each
    delivered their own version at once before. Now neither is pinned, so
    neither is delivered while operational; recovery's stream carries both
    versions (each member re-broadcasts the tail it held unpinned), which
    proves node 3 equivocated, and confirms neither: nodes 1 and 2 deliver
    the same (neither message)."""
    original = Original()
    lost: list[str] = []

    def lose(c: Cluster, src: int, dest: int, data: bytes) -> bool:
        watch_maker(original, TAIL_MAKER, data, src)
        if c.now < FORMED_S or src != TAIL_MAKER:
            return False
        kind = peek(data).kind
        if dest == TAIL_VICTIM and kind is Kind.DATA and "data" not in lost:
            lost.append("data")
            return True
        if original.raw and data == original.raw and "crash" not in lost:
            lost.append("crash")
            c.down.add(4)  # before the token reaches it: nobody links to it
            fake = forged_data(c, TAIL_MAKER, original.ring, original.seq, b"forged")
            c.broadcast(TAIL_MAKER, second_version(c, TAIL_MAKER, original, fake), (TAIL_VICTIM,))
            c.broadcast(TAIL_MAKER, fake, (TAIL_VICTIM,))
        return dest == TAIL_VICTIM and bool(original.raw) and data == original.raw

    c = Cluster(4, lose=lose)
    c.run(FORMED_S)
    c.submit(TAIL_MAKER, b"orig")
    c.run(4.0)
    assert "crash" in lost
    for i in TAIL_CORRECT:
        assert b"forged" not in c.delivered(i), (i, c.delivered(i))
        assert c.engines[i].state is State.OPERATIONAL, i
        assert any(ev.target == TAIL_MAKER and ev.proof for ev in c.evictions(i)), i
    assert c.delivered(1) == c.delivered(2)
