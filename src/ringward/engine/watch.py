"""What the fault detector watches, besides scores and evidence
(engine/detector.py holds both on ``Detector``):

* :class:`TokenWatch` - per ring: recent tokens by hop (to prove an
  equivocation and time each visit), where the token went last and when,
  how long the aru has been held, the retransmission requests standing in
  the chain, and when the ring began (engine/faults.py, engine/token.py,
  engine/accusations.py). Reset with the ring.
* :class:`LoadMeter` - this node's own receive load, which it reports,
  signed, in its tokens (``Engine.note_receive_queue``).
* :class:`ChurnWatch` - who started a membership round that restarted our
  ring while its token was circulating (engine/accusations.py, ``churn``).

No engine access, no clock: every method takes ``now``.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Final

from ringward.wire import CommitMember, Frame, Token

__all__ = ["NEVER_S", "ChurnWatch", "LoadMeter", "TokenWatch"]

# A time long before any other (the engine's clock starts at 0 or later).
NEVER_S: Final = -1e9
# Bytes of a recovered item's digest kept to spot a repeat: a collision
# could only be among one pusher's own items.
RECOVERED_KEY_BYTES: Final = 8


@dataclass(slots=True)
class TokenWatch:
    """The fault detector's per-ring view of the token (module docstring)."""

    # Recent tokens by hop (raw, frame) and when each was first seen.
    raw_at: dict[int, tuple[bytes, Frame]] = field(default_factory=dict)
    seen_at: dict[int, float] = field(default_factory=dict)
    # The successor of the last token seen or made, and when.
    last_succ: int | None = None
    last_seen_t: float = NEVER_S
    # Our visits with the aru held by the same other member, and since when.
    aru_stuck: int = 0
    aru_stuck_at: float = 0.0
    # The count of those visits at the last aru_stuck suspicion.
    aru_suspected: int = 0
    # Retransmission requests seen in the chain: seq -> (first hop, last hop).
    rtr_watch: dict[int, tuple[int, int]] = field(default_factory=dict)
    # When recovery into this ring began (its representative starts the token).
    ring_start_t: float = NEVER_S
    # Recovery into this ring (faults.recovery_share): how many frames each
    # member may list in its tokens (from the commit), and how many it
    # listed so far. Keyed by member: bounded by the ring.
    recovery_allowed: dict[int, int] = field(default_factory=dict)
    recovery_listed: dict[int, int] = field(default_factory=dict)
    # Digest prefixes of the old-ring items each member re-broadcast in this
    # recovery (recovered_again), bounded by its allowance.
    recovered_items: dict[int, set[bytes]] = field(default_factory=dict)
    # The commit's member entries of the ring recovering (bounded by it).
    recovery_entries: dict[int, CommitMember] = field(default_factory=dict)

    def expect_recovery(self, allowed: dict[int, int], entries: dict[int, CommitMember]) -> None:
        """The frames each member may list while this ring recovers, and
        the commit's member entries (what each may re-broadcast)."""
        self.recovery_allowed = allowed
        self.recovery_entries = entries
        self.recovered_items = {}

    def recovered_again(self, pusher: int, digest: bytes) -> bool:
        """``pusher`` re-broadcast the old-ring item with ``digest`` in this
        recovery: whether it had already (a correct member sends each item
        once). Kept per pusher up to the items its allowance can carry."""
        seen = self.recovered_items.setdefault(pusher, set())
        key = digest[:RECOVERED_KEY_BYTES]
        if key in seen:
            return True
        if len(seen) < self.recovery_allowed.get(pusher, 0):
            seen.add(key)
        return False

    def recovery_listed_past(self, maker: int, frames: int) -> bool:
        """``maker`` listed ``frames`` more in a recovery token: whether that
        took it past its allowance (True once, at the crossing)."""
        allowed = self.recovery_allowed.get(maker)
        if allowed is None or not frames:
            return False
        listed = self.recovery_listed.get(maker, 0)
        self.recovery_listed[maker] = listed + frames
        return listed <= allowed < listed + frames

    def remember(
        self, hop: int, raw: bytes, frame: Frame, now: float, newest: int, kept: int
    ) -> None:
        """Keep a token for proofs: the ``kept`` hops below the newest of
        ``hop`` and ``newest``, counted from the newest rather than from
        ``hop``, so that replayed old tokens do not pile up between two
        fresh ones."""
        top = max(hop, newest)
        if hop <= top - kept:
            return
        self.raw_at[hop] = (raw, frame)
        self.seen_at[hop] = now
        for old in [h for h in self.raw_at if h <= top - kept]:
            del self.raw_at[old]
            self.seen_at.pop(old, None)

    def passed(self, succ: int, now: float) -> None:
        """A token to ``succ`` was seen (or made) at ``now``."""
        self.last_succ, self.last_seen_t = succ, now

    def watch_requests(self, tk: Token, n: int) -> None:
        """Remember since which hop each seq of ``tk``'s requests has been
        asked for without a rotation's gap."""
        for seq in tk.rtr:
            first, _ = self.rtr_watch.get(seq, (tk.hop, tk.hop))
            self.rtr_watch[seq] = (first, tk.hop)
        for seq in [s for s, (_, last) in self.rtr_watch.items() if last < tk.hop - n]:
            del self.rtr_watch[seq]

    def requested_since(self, seq: int, default: int) -> int:
        """The first hop whose token asked for ``seq`` (``default`` if none)."""
        return self.rtr_watch.get(seq, (default, default))[0]

    def standing(self, late: int) -> list[int]:
        """Seqs asked for since hop ``late`` or earlier."""
        return [s for s, (first, _) in self.rtr_watch.items() if first <= late]

    def served(self, seq: int) -> None:
        self.rtr_watch.pop(seq, None)

    def aru_held(self, held: bool, now: float) -> int:
        """One more of our visits with the aru held by the same other member
        (``held``), or not; the visits in a row."""
        if held:
            self.aru_stuck += 1
            if self.aru_stuck == 1:
                self.aru_stuck_at, self.aru_suspected = now, 0
        else:
            self.aru_stuck = 0
        return self.aru_stuck

    def aru_suspect_due(self, now: float, visits: int, span_s: float, most: int) -> bool:
        """Whether the aru was held ``visits`` visits and ``span_s``, or
        ``most`` visits, since it got stuck or since the last suspicion
        (True restarts both)."""
        if self.aru_stuck < visits:
            return False
        if now - self.aru_stuck_at >= span_s or self.aru_stuck - self.aru_suspected >= most:
            self.aru_stuck_at, self.aru_suspected = now, self.aru_stuck
            return True
        return False


@dataclass(slots=True)
class LoadMeter:
    """This node's receive backlog and the waits of its datagrams in it, as
    the driver reports them."""

    queue: int = 0
    wait_s: float = 0.0
    # The longest wait since our last token (what we report), or while
    # rejected (was it healthy all along?).
    peak_s: float = 0.0
    # Our joins' report: the round (its ring_seq) and its longest wait.
    join_seq: int = -1
    join_peak_s: float = 0.0
    # Our own last reports, one per position (a token, a round of joins):
    # whether each was over the limits (LoadReport.recent_over).
    own: list[tuple[Hashable, bool]] = field(default_factory=list)

    def note(self, datagrams: int, waited_s: float) -> None:
        self.queue = max(0, datagrams)
        self.wait_s = max(0.0, waited_s)
        self.peak_s = max(self.peak_s, self.wait_s)

    def take_peak(self) -> float:
        """The longest wait since the last call (the peak starts again)."""
        peak, self.peak_s = self.peak_s, 0.0
        return peak

    def own_over(self, position: Hashable, over: bool, kept: int) -> int:
        """Count our report at ``position`` (a re-sent join of a round
        keeps the worst of the round) among our last ``kept`` ones; how many
        of those were over the limits."""
        if self.own and self.own[-1][0] == position:
            self.own[-1] = (position, over or self.own[-1][1])
        else:
            self.own.append((position, over))
            del self.own[:-kept]
        return sum(o for _, o in self.own)

    def join_hold_s(self, ring_seq: int) -> float:
        """What our joins of the round at ``ring_seq`` report as held: the
        longest wait since the round's first join (or our last token), the
        wait of the datagram in hand included. Each wait is in one report
        position only (a GC pause is one round's report, not every join
        re-sent after it)."""
        if ring_seq != self.join_seq:
            self.join_seq, self.join_peak_s = ring_seq, 0.0
        self.join_peak_s = max(self.join_peak_s, self.take_peak(), self.wait_s)
        return self.join_peak_s


class ChurnWatch:
    """One membership round that restarted our ring while its token was
    just here: the member whose join reached us first, and what each member
    of the ring named in its joins of the round as the join that started its
    own (``Join.cause``; 0: itself).

    The joins of a round can arrive in any order: a member answering the
    restarter's join may be heard first, and blaming the first join heard
    blamed it. Following the causes from the first join to a member that
    started its round itself names the restarter. A chain that leaves the
    ring, loops or names a join never heard proves nothing, and the first
    join's sender is blamed as before: a liar naming another member gains
    nothing. A restarter whose join proposed a node outside the ring merged,
    which is no churn (the ``phantom`` signal judges proposals): another
    member's joins may have dropped that node from the round (a fail claim),
    and the restarter's answerers then look like churn. Nor is a round an
    outsider's join started (a chain that leaves the ring at a node whose
    join we heard in the round): merging it back is what members must do."""

    def __init__(self) -> None:
        self._first: int | None = None
        self._members: frozenset[int] = frozenset()
        self._causes: dict[int, int] = {}
        self._merging: set[int] = set()
        self._outsiders: set[int] = set()

    def open(self, first: int, cause: int, members: frozenset[int]) -> int | None:
        """A new round, restarted by ``first``'s join (naming ``cause``); the
        restarter of the round still open, if any (judge it now)."""
        due = self.take()
        self._first, self._members, self._causes = first, members, {first: cause}
        return due

    def heard(self, sender: int, cause: int, merging: bool = False) -> None:
        """A join of the open round: its sender's first statement counts;
        ``merging``: it proposed a node outside the ring."""
        if self._first is None:
            return
        if sender not in self._members:
            self._outsiders.add(sender)  # bounded by the roster
            return
        self._causes.setdefault(sender, cause)
        if merging:
            self._merging.add(sender)

    def take(self) -> int | None:
        """The member that restarted the open round (which closes), if any."""
        first, causes, merging = self._first, self._causes, self._merging
        outsiders, members = self._outsiders, self._members
        self._first, self._causes, self._merging, self._outsiders = None, {}, set(), set()
        if first is None:
            return None
        node, seen = first, set()
        while node not in seen:
            if node not in members and node in outsiders:
                return None
            cause = causes.get(node)
            if cause is None:
                break
            if cause == 0:
                return None if node in merging else node
            seen.add(node)
            node = cause
        return None if first in merging else first
