"""A node's bookkeeping of its ring's token: what it saw, what it holds,
what it sent, the verified chain's progress, and what the fault detector
keeps of recent tokens. Owned by engine/token.py (the visit) and
engine/chain.py (linking); reset at every new ring.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, NamedTuple

from ringward.wire import Frame, RingId

__all__ = ["NO_ASK", "Held", "LinkAsk", "Relay", "Sent", "TokenState", "Visit"]


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


class Relay(NamedTuple):
    """The last token seen, to relay to its successor if the next is late."""

    hop: int
    dest: int
    raw: bytes


@dataclass(slots=True)
class Visit:
    seq: int
    backlog: int
    aru: int


@dataclass(slots=True)
class TokenState:
    """Per-ring token bookkeeping of one node."""

    hop_seen: int = -1
    hop_done: int = -1
    seq_at: dict[int, int] = field(default_factory=dict)
    aru_at: dict[int, int] = field(default_factory=dict)
    last_sent: Sent | None = None
    held: Held | None = None
    arrived: float = 0.0
    my_fcc: int = 0
    my_backlog: int = 0
    prev_visit: Visit | None = None
    # The visit before it (recovery completes over two quiet rotations).
    prev_visit2: Visit | None = None
    # The verified chain (engine/chain.py): every hop up to ``linked`` is
    # linked; the digest and frame of that token; tokens waiting for a
    # link; since when the chain has waited; the last ask (hop, time,
    # tries); whether its maker was suspected for a link nobody closed.
    linked: int = 0
    link_digest: bytes = b""
    link_frame: Frame | None = None
    # The tokens our own tokens linked to, by hop: hop -> (raw, when). A
    # member that holds another version asks us for ours (engine/chain.py),
    # for up to a few retransmission periods; we must answer for as long.
    linked_to: dict[int, tuple[bytes, float]] = field(default_factory=dict)
    unlinked: dict[int, tuple[bytes, Frame]] = field(default_factory=dict)
    link_wait: float | None = None
    link_ask: LinkAsk = NO_ASK
    link_blamed: bool = False
    held_for_link: bool = False
    # The last token seen, to relay to its successor if the next is late.
    relay: Relay | None = None
    aru_stuck: int = 0
    aru_stuck_at: float = 0.0  # when the aru got stuck (token._aru_stuck)
    idle_visits: int = 0
    # Hops observed beyond the contiguous prefix, and when each missing one
    # was last asked for (TOKEN_REQUEST to its producer).
    hop_contig: int = 0
    seen_hops: set[int] = field(default_factory=set)
    asked: dict[int, tuple[float, int]] = field(default_factory=dict)
    # Retransmission requests seen in the chain: seq -> (first hop, last hop).
    rtr_watch: dict[int, tuple[int, int]] = field(default_factory=dict)
    # Fault detector (engine/faults.py): recent tokens by hop (raw, frame)
    # and when each was first seen.
    raw_at: dict[int, tuple[bytes, Frame]] = field(default_factory=dict)
    seen_at: dict[int, float] = field(default_factory=dict)
    last_succ: int | None = None
    last_seen_t: float = -1e9
    # Token requests answered: (requester, ring, hop) -> when.
    answered: dict[tuple[int, RingId, int], float] = field(default_factory=dict)
    # When recovery into this ring began (its representative starts the token).
    ring_start_t: float = -1e9
    # Recovery into this ring (engine/faults.py, recovery_share): how many
    # frames each member may list in its tokens (from the commit), and how
    # many it listed so far. Keyed by member: bounded by the ring.
    recovery_allowed: dict[int, int] = field(default_factory=dict)
    recovery_listed: dict[int, int] = field(default_factory=dict)

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]
