"""A node's bookkeeping of its ring's token, in parts with one job each,
reset at every new ring (the fault detector's part is
``watch.TokenWatch``, on ``Detector``):

* :class:`Hops` - which hops of the chain this member saw or made, each
  recent hop's seq, the missing hops it asks for and the asks it answered
  (engine/token.py);
* :class:`Links` - the verified chain: how far it is linked and how far
  pinned (frames confirmed), the tokens waiting for a link or a pin, the
  ask for a missing link, and the tokens our own tokens linked to (written
  by engine/chain.py, its owner);
* :class:`Holder` - this member's visits: the token it holds, the one it
  passed on last, the one it relays, and what its last visits sent
  (engine/token.py, engine/flow.py).

Every map here is bounded by a window of hops or a named constant, never
by a number a peer claims.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, NamedTuple

from ringward.wire import Frame, RingId

__all__ = [
    "NO_ASK",
    "Held",
    "Holder",
    "Hops",
    "LinkAsk",
    "Links",
    "Relay",
    "Sent",
    "TokenState",
    "Unlinked",
    "Unpinned",
    "Visit",
]


class Held(NamedTuple):
    """A token kept back: its frame and bytes."""

    frame: Frame
    raw: bytes


class Sent(NamedTuple):
    """The token we passed on last (re-sent until the next one shows)."""

    hop: int
    raw: bytes


class LinkAsk(NamedTuple):
    """The last ask for a missing link: which hop, when, how many tries."""

    hop: int
    at: float
    tries: int


NO_ASK: Final = LinkAsk(-1, -1e9, 0)
# Versions our own tokens linked to that we keep to answer link asks (ours:
# one per rotation). Counted, not timed: a rotation takes anything from a
# fraction of a millisecond to a held token's pause, and a member whose
# chain waited for a lost token asks a few token timeouts later (a successor
# that had kept them two token timeouts was accused of ``broken_link`` for
# its predecessor's equivocation). A member lagging further than half of
# this behind the ring blames nobody for an unanswered ask (engine/chain.py).
LINKED_TO_MAX: Final = 256


class Unlinked(NamedTuple):
    """A verified token waiting for its link: its digest, frame and bytes."""

    digest: bytes
    frame: Frame
    raw: bytes


class Unpinned(NamedTuple):
    """A linked token whose frames are not confirmed yet (engine/chain.py):
    its frame, bytes, and the seq of the token it links to (None for the
    ring's first token)."""

    frame: Frame
    raw: bytes
    prev_seq: int | None


class Relay(NamedTuple):
    """The last token seen, to relay to its successor if the next is late."""

    hop: int
    dest: int
    raw: bytes
    maker: int


class Starved(NamedTuple):
    """A maker whose successor needed our relay: its tokens are relayed at
    once up to ``until_hop``; the next period lasts ``period_rotations``."""

    until_hop: int
    period_rotations: int


# Rotations a link that needed a relay is relayed at once, doubling (up to the
# cap) each time it needs one again within the ring: a maker that starves
# its successor for good then stalls one rotation in hundreds.
STARVED_FIRST_ROTATIONS: Final = 8
STARVED_MAX_ROTATIONS: Final = 512


class Visit(NamedTuple):
    """What one of our visits left on the token."""

    seq: int
    backlog: int
    aru: int


class Ask(NamedTuple):
    """A missing hop to ask for: from its maker (``producer``), and how
    many times it was asked for before."""

    hop: int
    producer: int
    tries: int


# A hop never asked for yet (its last ask long ago).
_NEVER: Final = -1e9


@dataclass(slots=True)
class Hops:
    """The hops this member saw: the newest, the one before our last own
    token, recent hops' seqs, and the gaps (engine/token.py)."""

    seen: int = -1
    done: int = -1
    seq_at: dict[int, int] = field(default_factory=dict)
    # Every hop up to ``contig`` is seen (or given up); hops seen beyond it,
    # and each missing hop's last ask (time, tries).
    contig: int = 0
    ahead: set[int] = field(default_factory=set)
    asked: dict[int, tuple[float, int]] = field(default_factory=dict)
    # Token requests answered: (requester, ring, hop) -> when.
    answered: dict[tuple[int, RingId, int], float] = field(default_factory=dict)

    def record(self, hop: int, seq: int, n: int) -> None:
        """A token of ``hop`` with ``seq`` (seen or made); two rotations of
        seqs are kept."""
        self.seen = max(self.seen, hop)
        self.seq_at[hop] = seq
        for old in [h for h in self.seq_at if h < hop - 2 * n]:
            del self.seq_at[old]

    def made(self, hop: int, seq: int, n: int) -> None:
        """We made the token of ``hop``: every hop before it is done."""
        self.ahead.add(hop)
        self.done = hop - 1
        self.record(hop, seq, n)

    def seq_one_rotation_ago(self, hop: int, n: int) -> int | None:
        known = [h for h in self.seq_at if h <= hop - n + 1]
        return self.seq_at[max(known)] if known else None

    def track(self, hop: int, tracked: int, kept: int) -> None:
        """``hop`` was seen: move the contiguous prefix. Hops more than
        ``tracked`` behind the newest leave the window; a missing one that
        leaves keeps its own entry in ``asked`` (at most ``kept`` of them),
        bounded by what is held, never by the gap (a hop is a claim)."""
        self.ahead.add(hop)
        self.asked.pop(hop, None)
        if hop - self.contig > tracked:
            floor = hop - tracked
            stop = min(floor, self.contig + len(self.ahead) + kept)
            for missing in range(self.contig + 1, stop + 1):
                if len(self.asked) >= kept:
                    break
                if missing not in self.ahead and missing not in self.asked:
                    self.asked[missing] = (_NEVER, 0)
            self.contig = floor
        while self.contig + 1 in self.ahead:
            self.contig += 1
        self.ahead = {h for h in self.ahead if h > self.contig}

    def due_asks(
        self,
        hop: int,
        members: tuple[int, ...],
        me: int,
        now: float,
        retry_s: float,
        limits_: tuple[int, int],
    ) -> list[Ask]:
        """The missing hops below ``hop`` to ask for now (each at most once
        per ``retry_s``, ``limits_`` = (asks at once, tries per hop)); a hop
        whose tries are spent is given up (the prefix moves on)."""
        ask_max, tries_max = limits_
        n = len(members)
        out: list[Ask] = []
        window = [h for h in range(self.contig + 1, hop) if h not in self.ahead]
        for missing in sorted({*window, *self.asked}):
            if len(out) >= ask_max or missing >= hop:
                break
            producer = members[(missing - 1) % n]
            last, tries = self.asked.get(missing, (-retry_s, 0))
            if tries >= tries_max:
                self.ahead.add(missing)
                self.asked.pop(missing, None)
            elif producer != me and now - last >= retry_s:
                self.asked[missing] = (now, tries + 1)
                out.append(Ask(missing, producer, tries))
        self.ahead = {h for h in self.ahead if h > self.contig}
        return out

    def answer(self, key: tuple[int, RingId, int], now: float, gap_s: float, kept: int) -> bool:
        """Whether to answer the request ``key`` now: not if it was answered
        less than ``gap_s`` ago. At most ``kept`` answers are remembered
        (the oldest is forgotten first)."""
        last = self.answered.get(key)
        if last is not None and now - last < gap_s:
            return False
        self.answered.pop(key, None)
        if len(self.answered) >= kept:
            del self.answered[next(iter(self.answered))]
        self.answered[key] = now
        return True


@dataclass(slots=True)
class Links:
    """The verified chain (engine/chain.py): every hop up to ``linked`` is
    linked, every hop up to ``pinned`` pinned (its frames confirmed); the
    digest and frame of the last linked token; each linked token's aru for
    two rotations; tokens waiting for a link, and linked ones waiting for a
    pin (at most ``versions.pin_depth`` of them); since when the chain has
    waited; the last ask; whether a maker was suspected for a link nobody
    closed."""

    linked: int = 0
    pinned: int = 0
    link_digest: bytes = b""
    link_frame: Frame | None = None
    aru_at: dict[int, int] = field(default_factory=dict)
    unlinked: dict[int, Unlinked] = field(default_factory=dict)
    unpinned: dict[int, Unpinned] = field(default_factory=dict)
    # Versions other than ours that a token waiting for its link names (the
    # link asks fetch them): a pin for recovery (engine/versions.py).
    fetched: dict[int, Unlinked] = field(default_factory=dict)
    link_wait: float | None = None
    link_ask: LinkAsk = NO_ASK
    link_blamed: bool = False
    # The tokens our own tokens linked to, by hop: a member that holds
    # another version asks us for ours (engine/chain.py); kept for our last
    # LINKED_TO_MAX tokens, which is as long as it may blame us for it.
    linked_to: dict[int, bytes] = field(default_factory=dict)

    def covers(self, hop: int) -> bool:
        """Whether every hop of the ring up to ``hop`` is linked here."""
        return hop <= self.linked

    def keep_linked_to(self, hop: int, raw: bytes) -> None:
        """Our token linked to ``raw`` (hop ``hop``): keep it to answer asks."""
        keep = self.linked_to
        keep[hop] = raw
        while len(keep) > LINKED_TO_MAX:
            del keep[next(iter(keep))]


@dataclass(slots=True)
class Holder:
    """This member's visits (engine/token.py)."""

    held: Held | None = None
    # Held in recovery until its link closes (engine/chain.py), not for idleness.
    held_for_link: bool = False
    arrived: float = 0.0
    last_sent: Sent | None = None
    relay: Relay | None = None
    # Makers whose tokens we relay at once (engine/token.py, _arm_relay).
    starved: dict[int, Starved] = field(default_factory=dict)
    # What our last visit added to fcc and backlog (flow.py discounts it).
    my_fcc: int = 0
    my_backlog: int = 0
    prev_visit: Visit | None = None
    # The visit before it (recovery completes over two quiet rotations).
    prev_visit2: Visit | None = None
    idle_visits: int = 0
    # Quiet tokens (engine/idle.py) seen or made in a row.
    quiet_hops: int = 0
    # A member woke the ring since our last visit (engine/idle.py).
    woken: bool = False
    # The newest hop we had seen when we last sent a wake (one per hop).
    woke_at: int = -1

    def arrive(self, now: float) -> None:
        """The visit's hold time (what our load report says) starts now."""
        self.arrived = now

    def hold(self, frame: Frame, raw: bytes, *, for_link: bool = False) -> None:
        self.held = Held(frame, raw)
        if for_link:
            self.held_for_link = True

    def link_closed(self) -> None:
        """The token held for its link may be visited now."""
        self.held_for_link = False

    def take(self) -> Held | None:
        """The held token, no longer held."""
        held, self.held = self.held, None
        return held

    def passed_on(self, hop: int, raw: bytes) -> None:
        self.last_sent = Sent(hop, raw)

    def superseded(self, hop: int) -> bool:
        """A token of ``hop`` was seen: the one we passed on made it if
        ``hop`` is later (True: stop re-sending it)."""
        if self.last_sent is not None and hop > self.last_sent.hop:
            self.last_sent = None
            return True
        return False

    def arm_relay(self, relay: Relay | None) -> None:
        self.relay = relay

    def take_relay(self) -> Relay | None:
        relay, self.relay = self.relay, None
        return relay

    def relays_at_once(self, maker: int, hop: int) -> bool:
        """Whether ``maker``'s token of ``hop`` goes to its successor at once."""
        s = self.starved.get(maker)
        return s is not None and hop <= s.until_hop

    def starving(self, maker: int, hop: int, members: int) -> None:
        """``maker``'s successor needed our relay of ``hop``. Bounded by the
        ring's members (the state is per ring)."""
        s = self.starved.get(maker)
        period = STARVED_FIRST_ROTATIONS if s is None else s.period_rotations
        self.starved[maker] = Starved(
            hop + period * members, min(2 * period, STARVED_MAX_ROTATIONS)
        )

    def account(self, fcc: int, backlog: int) -> None:
        """What this visit adds to the token's fcc and backlog."""
        self.my_fcc, self.my_backlog = fcc, backlog

    def count_idle(self, idle: bool) -> int:
        """Idle visits in a row (``idle`` False resets)."""
        self.idle_visits = self.idle_visits + 1 if idle else 0
        return self.idle_visits

    def saw(self, quiet: bool) -> None:
        """A new hop was seen or made: quiet or not (``False`` resets)."""
        self.quiet_hops = self.quiet_hops + 1 if quiet else 0

    def wake(self) -> None:
        """A member has work: our next visit does not hold the token."""
        self.woken = True

    def take_woken(self) -> bool:
        """Whether a wake came since the last call."""
        woken, self.woken = self.woken, False
        return woken

    def visited(self, visit: Visit) -> None:
        self.prev_visit2, self.prev_visit = self.prev_visit, visit


@dataclass(slots=True)
class TokenState:
    """Per-ring token bookkeeping of one node (module docstring)."""

    hops: Hops = field(default_factory=Hops)
    links: Links = field(default_factory=Links)
    holder: Holder = field(default_factory=Holder)

    def reset(self) -> None:
        """A new ring: nothing of the old one is kept."""
        self.hops, self.links, self.holder = Hops(), Links(), Holder()
