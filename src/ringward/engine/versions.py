"""Which version of an old-ring token recovery may confirm.

After its ring broke, a member still confirms frames of that ring from
tokens that come late (directly) or that recovery re-broadcasts
(docs/protocol.md, "Recovery"). A token's maker can sign a second version
of its own hop, listing other digests for its own seqs, and hand it to a
member that missed the first: confirmed first come first served, that
member delivered another message at the seq than the rest of the ring
(tests/engine/test_recovered_versions.py). The rule (docs/protocol.md,
"Recovery"):

* **Pinned versions.** When the ring is left, each member keeps the old
  chain it saw (:class:`OldChain`): the digest of every token its chain
  pinned (whose frames it confirmed: engine/chain.py; a version merely held
  may be a maker's second one), and for the hop before each token it holds
  (a version the next token named and a link ask fetched included), the
  digest its ``prev`` names, when that token and those held after it, each
  naming the one before, make :func:`pin_depth` tokens (ours count as
  one each: a pin the others could not check would decide alone). A
  correct successor names exactly one version of the hop before its own,
  so a later token pins the version (a backward link pins nothing: every
  version a maker signs can name the same predecessor). A late or recovered
  token matching its pin is confirmed at once, and so are the versions of
  the hops before that the stream carried and it pins in turn. A late
  token that contradicts it, or a recovered one that contradicts a version
  the member pinned, is refused (``recovered:version``).
* **Everything else** is confirmed only through recovery's re-broadcast,
  which every member of the transitional configuration unpacks in the same
  (agreed) order: when recovery ends, and only if that stream carried no
  other version of the hop (pinned at some member or not: the count is the
  same everywhere). Every correct member that holds a version re-broadcasts
  it (the pinned ones, then the tail it held unpinned: :func:`tail`), so a
  second version is seen by all. Of a hop carried in several versions, the
  frames every version lists alike are confirmed (:func:`agreed_refs`). A
  late unpinned token (not through the stream) is not confirmed: the
  others could not know it. A recovered token whose only pin is the next
  token's ``prev`` and that contradicts it is left to the stream too: that
  ``prev`` may be its maker's lie (``break-link``), and members that hold
  the version would deliver it.
* **Two versions are a proof.** The first signed version of each hop a
  member held or was handed is kept; a different one from the same maker
  convicts it (``equivocation``, engine/evidence.py): it is evicted, and the
  next recovery, without it, carries only the versions correct members
  hold. A token signed out of its maker's turn is a proof alone
  (``rule:turn``).

Frames recovered at a seq whose token is still unconfirmed may contradict
the frame held there (the maker's forged copy came first); kept aside
(:attr:`OldChain.spare`, bounded) when some version seen lists them, so the
version chosen at the end finds its frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ringward.engine import evidence, verdicts
from ringward.engine.reasons import Drop
from ringward.wire import Frame, FrameRef, Token, decode

if TYPE_CHECKING:
    from ringward.engine.engine import Engine
    from ringward.engine.ringstore import RingStore

__all__ = [
    "OldChain",
    "admit",
    "agreed_refs",
    "backing",
    "chosen",
    "enter_recovery",
    "keep_chain",
    "keep_spare",
    "pin_depth",
    "spare_frames",
    "tail",
]

# Versions of one hop kept from one recovery's stream: a second one proves
# the equivocation, more add nothing.
VERSIONS_KEPT = 2


@dataclass(slots=True)
class OldChain:
    """What a member keeps of its old ring's token chain through recovery."""

    # hop -> digest of the version this member held when it left the ring
    # (its frames' digests are those it confirmed).
    own: dict[int, bytes] = field(default_factory=dict)
    # hop -> digest the ``prev`` of the next token it holds names.
    named: dict[int, bytes] = field(default_factory=dict)
    # hop -> (digest, frame or its bytes): the first signed version this
    # member saw, held or handed to it (the other half of a proof).
    held: dict[int, tuple[bytes, Frame | bytes]] = field(default_factory=dict)
    # This recovery's unpinned versions: hop -> digest -> (frame, raw).
    versions: dict[int, dict[bytes, tuple[Frame, bytes]]] = field(default_factory=dict)
    # (seq, digest) listed by those versions, and recovered frames kept
    # aside for them: (seq, digest) -> (frame, raw).
    listed: set[tuple[int, bytes]] = field(default_factory=set)
    spare: dict[tuple[int, bytes], tuple[Frame, bytes]] = field(default_factory=dict)
    # hop -> a token listing frames that this member held but whose version
    # the chain had not pinned when the ring was left (re-broadcast in
    # recovery: :func:`tail`).
    tail: dict[int, tuple[Frame, bytes]] = field(default_factory=dict)
    # hop -> the linked tokens not yet pinned (the last ``pin_depth``): they
    # pin the last versions this member pinned, for the others too.
    backing: dict[int, tuple[Frame, bytes]] = field(default_factory=dict)


def keep_chain(engine: Engine, store: RingStore) -> OldChain:
    """The old ring's chain: taken from the token state when the ring is
    left (transition.to), before that state is reset."""
    if store.old_chain is None:
        chain = store.old_chain = OldChain()
        ts = engine.tokens.links
        recent = engine.detector.tokens.raw_at.values()
        held: list[tuple[Frame, bytes]] = [(f, engine.digest(raw)) for raw, f in recent]
        held += [(u.frame, u.digest) for u in ts.unlinked.values()]
        if ts.link_frame is not None:
            held.append((ts.link_frame, ts.link_digest))
        held += [(decode(v.raw), engine.digest(v.raw)) for v in store.vouched.values()]
        fetched = {u.digest for u in ts.fetched.values()}
        held += [(u.frame, u.digest) for u in ts.fetched.values()]
        # digest -> a token held that names it in ``prev``.
        after: dict[bytes, tuple[bytes, Frame]] = {}
        for frame, digest in held:
            tk = frame.body
            if isinstance(tk, Token) and frame.ring == store.ring:
                if tk.hop <= ts.pinned and digest not in fetched:
                    # Only a version the chain pinned (engine/chain.py) is
                    # ours: one merely held may be a maker's second one.
                    chain.own.setdefault(tk.hop, digest)
                chain.held.setdefault(tk.hop, (digest, frame))
                after.setdefault(tk.prev, (digest, frame))
        depth = pin_depth(engine.detector.f, len(engine.members))
        for frame, digest in held:
            if frame.ring == store.ring and _backed(after, digest, depth):
                _pinned(chain, frame)
        # Tokens held but not pinned: recovery carries them to every member,
        # whose stream decides (``admit``): the linked ones (at most
        # ``pin_depth``, the tokens that pinned the last pinned ones: the
        # others pin those from them), and those listing frames.
        for hop, u in ts.unpinned.items():
            chain.backing.setdefault(hop, (u.frame, u.raw))
        for _, frame, raw in ts.unlinked.values():
            tk = frame.body
            if isinstance(tk, Token) and tk.frames and len(chain.tail) < store.window:
                chain.tail.setdefault(tk.hop, (frame, raw))
        # Older tokens that still vouch for held frames (up to a window of
        # them): their digests, decoded only if a proof needs them.
        for hop, item in store.tokens.items():
            digest = engine.digest(item.raw)
            chain.own.setdefault(hop, digest)
            chain.held.setdefault(hop, (digest, item.raw))
    return store.old_chain


def enter_recovery(engine: Engine, store: RingStore) -> None:
    """A recovery starts (its stream starts over): keep the old chain, forget
    the last attempt's unpinned versions."""
    chain = keep_chain(engine, store)
    for hop, seen in chain.versions.items():
        # A token listing frames that the dead recovery's stream carried in
        # one version only, and no other version known: carried again, as
        # this member may be the only one of its old ring left to.
        digest, (frame, raw) = next(iter(seen.items()))
        held = chain.held.get(hop)
        if (
            len(seen) == 1
            and hop not in chain.own
            and held is not None
            and held[0] == digest
            and isinstance(frame.body, Token)
            and frame.body.frames
            and len(chain.tail) < store.window
        ):
            chain.tail.setdefault(hop, (frame, raw))
    chain.versions.clear()
    chain.listed.clear()
    chain.spare.clear()


def admit(
    engine: Engine, store: RingStore, frame: Frame, raw: bytes, recovered: bool
) -> list[tuple[Frame, bytes]]:
    """A verified old-ring token, late (``recovered`` False) or unpacked from
    recovery's stream: the versions the caller confirms now (this one, if
    pinned, and those of earlier hops that the stream carried and it pins
    in turn), empty when none."""
    tk = frame.body
    assert isinstance(tk, Token)
    chain = keep_chain(engine, store)
    if evidence.producer(engine.members, tk.hop) != frame.sender:
        # Not its turn: a proof alone, and nothing it lists is its frames.
        verdicts.prove(engine, frame.sender, "rule:turn", (frame,))
        engine.drops[Drop.RECOVERED_VERSION] += 1
        return []
    digest = engine.digest(raw)
    other = chain.held.get(tk.hop)
    if other is None:
        if len(chain.held) < store.window:  # a bound on what late tokens leave
            # Pinned or not: a later other version of the hop proves.
            chain.held[tk.hop] = (digest, frame)
    elif other[0] != digest:
        first = other[1] if isinstance(other[1], Frame) else decode(other[1])
        if first.sender == frame.sender:
            verdicts.prove(engine, frame.sender, "equivocation", (first, frame))
    if recovered:
        # Every version the stream carries, pinned here or not: the stream
        # is the same at every member, so what it decides (``chosen``: a
        # hop with one version) is too.
        seen = chain.versions.setdefault(tk.hop, {})
        if len(seen) < VERSIONS_KEPT and len(chain.versions) <= store.window:
            seen.setdefault(digest, (frame, raw))
            chain.listed.update((ref.seq, ref.digest) for ref in tk.frames)
    own = chain.own.get(tk.hop)
    pin = own if own is not None else chain.named.get(tk.hop)
    if pin == digest:
        return _pinned(chain, frame, [(frame, raw)])
    # Unpinned, or the next token names another version (its maker may have
    # lied in ``prev``): recovered, the stream decides, alike everywhere.
    if own is not None or (pin is not None and not recovered):
        engine.drops[Drop.RECOVERED_VERSION] += 1
    return []


def pin_depth(f: int, n: int) -> int:
    """How many tokens by other members after a hop, each linked to the one
    before, pin its version (engine/chain.py): ``f`` (at least one), at most
    the ``n - 1`` other members of the ring. Among ``f`` such makers one is
    correct when the hop's maker is not, and it names one version."""
    return max(1, min(f, n - 1))


def _backed(after: dict[bytes, tuple[bytes, Frame]], digest: bytes, depth: int) -> bool:
    """Whether the ``prev`` of the token with ``digest`` pins the hop
    before: it and the tokens held after it, each naming the one before,
    make ``depth`` tokens. Ours count as one each, not as a pin alone: the
    others could not check it, and recovery must decide alike everywhere."""
    for _ in range(depth - 1):
        entry = after.get(digest)
        if entry is None:
            return False
        digest = entry[0]
    return True


def _pinned(
    chain: OldChain, frame: Frame, out: list[tuple[Frame, bytes]] | None = None
) -> list[tuple[Frame, bytes]]:
    """``frame`` is a pinned version: its ``prev`` pins the hop before. A
    version of that hop the stream already carried is pinned in turn (it
    came before the token naming it); ``out`` gathers them."""
    found = out if out is not None else []
    while True:
        tk = frame.body
        assert isinstance(tk, Token)
        if tk.hop <= 1:
            return found
        named = chain.named.setdefault(tk.hop - 1, tk.prev)
        before = chain.versions.get(tk.hop - 1, {}).get(named)
        if before is None or before in found:
            return found
        found.append(before)
        frame = before[0]


def chosen(store: RingStore) -> list[tuple[Frame, bytes]]:
    """Recovery ends: the versions to confirm that nothing pinned, each the
    only version of its hop the stream carried."""
    chain = store.old_chain
    if chain is None:
        return []
    out = [
        next(iter(seen.values())) for _, seen in sorted(chain.versions.items()) if len(seen) == 1
    ]
    chain.versions.clear()
    return out


def tail(store: RingStore) -> list[tuple[Frame, bytes]]:
    """The old tokens this member held unpinned when it left the ring, by
    hop (re-broadcast in recovery after the pinned ones): the linked ones
    first, then those listing frames."""
    chain = store.old_chain
    if chain is None:
        return []
    return [item for _, item in sorted(chain.backing.items())] + [
        item for hop, item in sorted(chain.tail.items()) if hop not in chain.backing
    ]


def backing(store: RingStore) -> set[bytes]:
    """The bytes of the linked tokens among :func:`tail` (pushed whatever
    they list, while recovery has frames to settle)."""
    chain = store.old_chain
    return set() if chain is None else {raw for _, raw in chain.backing.values()}


def agreed_refs(store: RingStore) -> list[FrameRef]:
    """Recovery ends: for each hop the stream carried in several versions,
    the frames every version lists alike (same seq, same digest), which
    no choice of version would change (alike at every member)."""
    chain = store.old_chain
    if chain is None:
        return []
    out: list[FrameRef] = []
    for _, seen in sorted(chain.versions.items()):
        if len(seen) < 2:
            continue
        common: set[FrameRef] | None = None
        for frame, _ in seen.values():
            tk = frame.body
            assert isinstance(tk, Token)
            refs = {ref for ref in tk.frames if ref.seq <= tk.seq}
            common = refs if common is None else common & refs
        out += sorted(common or (), key=lambda ref: ref.seq)
    return out


def keep_spare(store: RingStore, seq: int, digest: bytes, frame: Frame, raw: bytes) -> None:
    """A recovered frame at an unconfirmed seq that is already taken: kept
    if some version seen in this recovery lists it (bounded by the window)."""
    chain = store.old_chain
    if (
        chain is not None
        and seq not in store.confirmed
        and (seq, digest) in chain.listed
        and len(chain.spare) < store.window
    ):
        chain.spare.setdefault((seq, digest), (frame, raw))


def spare_frames(store: RingStore) -> list[tuple[Frame, bytes]]:
    """The frames kept aside that the confirmed digests now name, for seqs
    still empty."""
    chain = store.old_chain
    if chain is None:
        return []
    return [
        item
        for (seq, digest), item in sorted(chain.spare.items())
        if seq not in store.frames and store.confirmed.get(seq) == digest
    ]
