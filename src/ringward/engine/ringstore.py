"""The receiver side of ordering: one ring's frames, aru and delivery cursor.

Invariants (docs/protocol.md, "Ordering"):

* ``aru`` — every frame with seq 1..aru has been received *and confirmed*
  (Totem's ``my_aru``): its BLAKE2b-256 digest equals the one its
  originator's signed token lists. A frame is delivered, counted in the aru
  (and so reported as held, which safe delivery relies on) only once
  confirmed; a frame whose digest contradicts its token is discarded and
  requested again. Frames are only accepted in ``(aru, aru + window]``, so
  the store never holds more than ``window`` frames.
* ``delivered`` — frames 1..delivered have been handed to delivery, in seq
  order, with no gap.
* ``safe_upto`` — every member of the ring has received frames 1..safe_upto
  (learned from the token's aru one rotation apart).
* A frame is discarded once it is both delivered and safe: nobody can ask
  for it again.
* ``vouched`` — per member, the highest aru it signed in a token of this
  ring, and that token. A correct holder never signs an aru above its own
  (engine/token.py), so ``min(vouched)`` over the members is a cut every
  correct member had received; recovery re-broadcasts these tokens and
  bounds its regular-view deliveries by the cut they prove
  (:meth:`vouched_cut`), whatever the commit entries claim.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from ringward.wire import BatchEntry, Frame, RingId

if TYPE_CHECKING:
    from ringward.engine.versions import OldChain

__all__ = [
    "ActiveRing",
    "Assembler",
    "HeldToken",
    "RingMembers",
    "RingStore",
    "Stored",
    "Vouch",
]


class RingMembers(NamedTuple):
    """A ring and its members (the ring being formed, between commit and
    installation)."""

    ring: RingId
    members: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class HeldToken:
    """A token that vouches for frames still held: its bytes, the lowest
    and highest seqs it lists, and the member that made (signed) it."""

    raw: bytes
    low: int
    top: int
    maker: int


class Vouch(NamedTuple):
    """The token in which a member signed its highest aru of a ring."""

    aru: int
    raw: bytes


@dataclass(slots=True)
class Stored:
    """A received DATA frame: its exact bytes (for retransmission and
    recovery) and, once opened, its batch."""

    raw: bytes
    frame: Frame
    digest: bytes
    entries: tuple[BatchEntry, ...] | None = None


class RingStore:
    """Frames of one ring (see module docstring)."""

    def __init__(self, ring: RingId, window: int) -> None:
        self.ring = ring
        self.window = window
        self.frames: dict[int, Stored] = {}
        self.aru = 0
        self.high_seq = 0
        self.delivered = 0
        self.safe_upto = 0
        # seq -> digest, from the signed tokens that list each frame.
        self.confirmed: dict[int, bytes] = {}
        # Tokens (hop -> bytes) that list frames still held: re-broadcast in
        # recovery so every survivor can confirm what it recovers.
        self.tokens: dict[int, HeldToken] = {}
        self.floor = 0
        # maker -> its highest signed aru (bounded by the ring's members).
        self.vouched: dict[int, Vouch] = {}
        # The same, from the tokens recovery brought back (every survivor
        # of the ring ends recovery with the same set).
        self.recovered_vouched: dict[int, int] = {}
        # The token chain seen before the ring was left, and the versions
        # recovery brought (engine/versions.py).
        self.old_chain: OldChain | None = None

    def vouch(self, maker: int, aru: int, raw: bytes) -> None:
        """A verified token of this ring by ``maker``, a member, signing
        ``aru``."""
        held = self.vouched.get(maker)
        if held is None or aru > held.aru:
            self.vouched[maker] = Vouch(aru, raw)

    def vouch_recovered(self, maker: int, aru: int) -> None:
        """The same, for a token recovered through the next ring."""
        self.recovered_vouched[maker] = max(aru, self.recovered_vouched.get(maker, 0))

    def vouched_cut(self, members: tuple[int, ...]) -> int:
        """The highest seq every member of the ring signed, in some token
        recovery brought back, that it held: frames up to it were received
        by every correct member (0 when one member vouched for nothing)."""
        return min((self.recovered_vouched.get(m, 0) for m in members), default=0)

    def add(self, seq: int, raw: bytes, frame: Frame, digest: bytes) -> bool:
        """Store a frame; False if it is a duplicate, already discarded,
        beyond the receive window, or contradicts its token's digest."""
        if seq <= self.aru or seq in self.frames or seq > self.aru + self.window:
            return False
        known = self.confirmed.get(seq)
        if known is not None and not hmac.compare_digest(known, digest):
            return False
        self.frames[seq] = Stored(raw, frame, digest)
        self.high_seq = max(self.high_seq, seq)
        self._advance()
        return True

    def confirm(self, seq: int, digest: bytes) -> bool:
        """Record a signed token's digest for ``seq``; False when a stored
        frame contradicted it (the frame is discarded, to be re-requested)."""
        if seq <= self.floor or seq > self.aru + self.window or seq in self.confirmed:
            return True  # the first signed statement for a seq stands
        self.confirmed[seq] = digest
        item = self.frames.get(seq)
        if item is not None and not hmac.compare_digest(item.digest, digest):
            del self.frames[seq]
            return False
        self._advance()
        return True

    def is_confirmed(self, seq: int) -> bool:
        item = self.frames.get(seq)
        known = self.confirmed.get(seq)
        return item is not None and known is not None and hmac.compare_digest(known, item.digest)

    def _advance(self) -> None:
        while self.is_confirmed(self.aru + 1):
            self.aru += 1

    def missing(self, upto: int, limit: int) -> list[int]:
        """Seqs in ``(aru, upto]`` not received, at most ``limit``."""
        out: list[int] = []
        seq = self.aru + 1
        upto = min(upto, self.aru + self.window)
        while seq <= upto and len(out) < limit:
            if seq not in self.frames:
                out.append(seq)
            seq += 1
        return out

    def mark_safe(self, seq: int) -> None:
        self.safe_upto = max(self.safe_upto, min(seq, self.aru))

    def collect(self) -> None:
        """Discard frames that are delivered and safe."""
        floor = min(self.delivered, self.safe_upto)
        if floor <= self.floor:
            return
        self.floor = floor
        for seq in [s for s in self.frames if s <= floor]:
            del self.frames[seq]
        for seq in [s for s in self.confirmed if s <= floor]:
            del self.confirmed[seq]
        for hop in [h for h, held in self.tokens.items() if held.top <= floor]:
            del self.tokens[hop]


@dataclass(slots=True)
class _Partial:
    msg_no: int
    frag_count: int
    parts: list[bytes] = field(default_factory=list)
    size: int = 0


class Assembler:
    """Reassembly of fragmented payloads, one in progress per sender (a
    sender's fragments arrive in order: the send queue never interleaves)."""

    def __init__(self, payload_bytes_max: int) -> None:
        self.payload_bytes_max = payload_bytes_max
        self._partial: dict[int, _Partial] = {}

    def add(self, sender: int, entry: BatchEntry) -> bytes | None:
        """Feed one entry; the whole payload when it completes a message,
        None otherwise (out-of-order or oversize fragments are dropped)."""
        if entry.frag_count == 1:
            if self._partial:  # the common case, once per message: no lookup
                self._partial.pop(sender, None)
            return entry.payload
        p = self._partial.get(sender)
        if entry.frag_index == 0:
            p = self._partial[sender] = _Partial(entry.msg_no, entry.frag_count)
        if p is None or p.msg_no != entry.msg_no or entry.frag_index != len(p.parts):
            self._partial.pop(sender, None)
            return None
        p.size += len(entry.payload)
        if p.frag_count != entry.frag_count or p.size > self.payload_bytes_max:
            self._partial.pop(sender, None)
            return None
        p.parts.append(entry.payload)
        if len(p.parts) < p.frag_count:
            return None
        del self._partial[sender]
        return b"".join(p.parts)

    def reset(self) -> None:
        """A configuration change: incomplete payloads are dropped (their
        senders send them again, whole, in the next ring)."""
        self._partial.clear()


class ActiveRing(NamedTuple):
    """The ring whose token a node follows now: the installed one when
    operational, the one being formed when recovering."""

    ring: RingId
    members: tuple[int, ...]
    store: RingStore
