"""Membership bookkeeping: Gather consensus, commit entries, and the EVS
split of old-ring messages between the regular and transitional views.

Pure functions and small records; the state machine that uses them lives in
engine.py (docs/protocol.md, "Membership").
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from ringward.wire import CommitMember, Frame, RingId

__all__ = [
    "Agreed",
    "GatherState",
    "RecoveryPlan",
    "State",
    "plan_recovery",
    "regular_view_id",
    "transitional_view_id",
]


class State(enum.Enum):
    """Totem's membership states."""

    GATHER = "gather"
    COMMIT = "commit"
    RECOVERY = "recovery"
    OPERATIONAL = "operational"
    # Evicted: no ring traffic until the cool-down ends (ringward's addition).
    REJECTED = "rejected"


def regular_view_id(ring: RingId) -> str:
    return f"R{ring.rep}.{ring.seq}"


def transitional_view_id(new: RingId, old: RingId) -> str:
    # Distinct from its regular successor and from every other transitional
    # view: two old rings merging into one new ring get two ids.
    return f"T{new.rep}.{new.seq}/{old.rep}.{old.seq}"


class Agreed(NamedTuple):
    """Sets every candidate of a Gather round agreed on, and since when."""

    proc: frozenset[int]
    fail: frozenset[int]
    at: float


@dataclass(slots=True)
class GatherState:
    """One node's view of a Gather round (Totem ``my_proc_list`` /
    ``my_failed_list`` and the joins received)."""

    proc: set[int]
    fail: set[int]
    # Latest join of each node: its proc and fail sets and the frame itself
    # (the frames become the commit token's certificate).
    joins: dict[int, tuple[frozenset[int], frozenset[int], Frame]] = field(default_factory=dict)
    ring_seq_max: int = 0
    # The sets we first saw every candidate agree on, and when: the
    # representative then owes us its commit token (gather.on_consensus_timer).
    agreed: Agreed | None = None
    # The member the ring this round came back from died at (its token or
    # commit token, engine.loss_blame), if the round came back from COMMIT
    # or RECOVERY: two rounds in a row dying there fail it (gather.enter).
    died_at: int | None = None
    # Whose join started this round (0: our own reason), named in our joins
    # so that the member that restarted the ring is the one blamed for it
    # (accusations.on_restart_by_join), whatever order the joins arrive in.
    cause: int = 0
    # When each node's latest fresh join of this round arrived: a commit
    # holder that sent one since its round stalled answered (recovery._watch).
    answered: dict[int, float] = field(default_factory=dict)

    def candidates(self) -> list[int]:
        return sorted(self.proc - self.fail)

    def merge(self, proc: Iterable[int], fail: Iterable[int]) -> bool:
        """Union another node's sets into ours; True if ours changed."""
        before = (len(self.proc), len(self.fail))
        self.proc.update(proc)
        self.fail.update(fail)
        return before != (len(self.proc), len(self.fail))

    def consensus(self) -> bool:
        """Every candidate has sent a join with exactly our sets."""
        mine = (frozenset(self.proc), frozenset(self.fail))
        for node in self.candidates():
            got = self.joins.get(node)
            if got is None or (got[0], got[1]) != mine:
                return False
        return True

    def silent(self) -> set[int]:
        """Candidates whose latest join does not match ours (or who sent none)."""
        mine = (frozenset(self.proc), frozenset(self.fail))
        return {
            n for n in self.candidates() if (g := self.joins.get(n)) is None or (g[0], g[1]) != mine
        }


@dataclass(frozen=True, slots=True)
class RecoveryPlan:
    """What one member must do for its old ring when a new ring forms.

    ``trans`` are the new members that come from the same old ring (the
    transitional configuration); frames in ``(low_aru, high_seq]`` must be
    re-broadcast among them; ``deliver_upto`` is the highest seq some member
    of ``trans`` already delivered in the old regular configuration, which
    all of them must therefore deliver there too.
    """

    old_ring: RingId
    trans: tuple[int, ...]
    low_aru: int
    high_seq: int
    deliver_upto: int

    def responsible(
        self, seq: int, me: int, entries: dict[int, CommitMember], liars: int = 0
    ) -> bool:
        """Whether ``me`` re-broadcasts frame ``seq``: the ``liars + 1``
        lowest-id members whose claimed aru covers it, so that one of them
        is correct (an aru is a claim: a member that claims a frame and
        re-broadcasts nothing kept it from the members that lacked it, and
        they moved to the new ring with other message sets). When no more
        than ``liars`` claims cover it, every member holding it does
        (duplicates are dropped by seq)."""
        covering = [n for n in self.trans if entries[n].aru >= seq]
        return me in covering[: liars + 1] if len(covering) > liars else True


def plan_recovery(me: int, old_ring: RingId, entries: dict[int, CommitMember]) -> RecoveryPlan:
    """The recovery plan of ``me``, from the commit token's member entries."""
    trans = tuple(sorted(n for n, e in entries.items() if e.old_ring == old_ring))
    if not trans:
        # Our own entry names our ring (recovery checks it), so only a caller
        # passing someone else's view gets here: nothing to recover.
        return RecoveryPlan(old_ring, (), 0, 0, 0)
    return RecoveryPlan(
        old_ring=old_ring,
        trans=trans,
        low_aru=min(entries[n].aru for n in trans),
        high_seq=max(entries[n].high_seq for n in trans),
        deliver_upto=max(entries[n].high_delivered for n in trans),
    )
