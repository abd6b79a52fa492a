"""The fault detector's state: suspicion scores, evidence, verdicts, bans,
and what it watches (engine/watch.py: the ring's tokens, our own load).

No engine access and no clock of its own: every method takes ``now`` from
the engine, durations are in seconds (``config.Timing``, converted once), and
engine/faults.py feeds it observations and acts on its verdicts.

* Scores: per peer and named signal, decaying exponentially with half-life
  ``suspicion_half_life_ms`` (the shape of libp2p gossipsub's peer scores:
  counters that decay, weights per signal, one threshold). Only signed
  traffic of a peer, or the absence of its signed traffic when the protocol
  required it, moves its score: a datagram that fails its checks proves
  nothing about its claimed sender.
* Accusations: signed, bound to one ring (its header's ring id), at most one
  counted per accuser and target. f+1 distinct accusers in the current ring
  convict, so f liars cannot frame a correct node.
* Verdicts: a verified proof or f+1 accusations; the target is failed by
  every correct member and banned for a cool-down that doubles with each
  eviction within ``evict_window_ms``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Final, NamedTuple

from ringward.engine.config import MERGE_BACKOFF_MAX_S, EngineConfig, Timing
from ringward.engine.watch import ChurnWatch, LoadMeter, TokenWatch
from ringward.wire import CommitMember, Frame, Kind, RingId
from ringward.wire.frame import Header

__all__ = [
    "OVERLOAD_SIGNALS",
    "WEIGHTS",
    "CarriedVerdicts",
    "CommitWatch",
    "Deferred",
    "Detector",
    "Verdict",
]

# Score added per observation, by signal (threshold 100 by default): one
# event never suffices where a correct node can cause it (paused once, the
# token lost once to a loss burst); doing it at every chance crosses within
# a few rotations (docs/fault-detector.md has the measured detection times).
WEIGHTS: dict[str, float] = {
    # The token died at this member's visit and it then answered the
    # membership round (it was alive, not crashed).
    "token_loss": 40.0,
    # The commit token of a ring being formed stopped at this member, which
    # then answered the next round. Lighter than a token loss: a member too
    # slow to read (its application stalled) stops it too, and recovers.
    "commit_loss": 25.0,
    # Every candidate of a Gather round agreed, this member among them, and
    # it (the representative) started no commit token for a consensus
    # timeout. Above half the threshold: one round it leads per merge
    # back-off at most (10 s, the half-life) still crosses it, 60 + 30 + ...
    "commit_withheld": 60.0,
    # A visit observed to last longer than slow_hold_ms.
    "slow_hold": 35.0,
    # A retransmission of its own frame was requested at its visit and it
    # passed the request on unserved.
    "withhold": 20.0,
    # It restarted membership while the ring's token was circulating.
    "churn": 30.0,
    # Its join restarted our ring proposing nodes nobody heard and that did
    # not make it into the next ring: costs everyone a consensus timeout.
    "phantom": 50.0,
    # Its token links to a predecessor nobody could produce when asked
    # (engine/chain.py): at once, since a correct maker always can.
    "broken_link": 100.0,
    # It held the ring's aru (it set it last) for ARU_STUCK_TOKEN_TIMEOUTS
    # (and ARU_STUCK_VISITS of our visits) while the seq moved on: every
    # member sees the same chain, so all cross together, at the second.
    "aru_stuck": 60.0,
    # It listed more frames in the tokens of a ring being recovered into
    # than its recovery can need (engine/faults.py, recovery_share): every
    # member sees the same chain, so at once.
    "recovery_flood": 100.0,
    # It re-broadcast in recovery an old-ring item no correct member sends:
    # one that does not decode or verify, or one it had sent already
    # (engine/delivery.py). Every member of its transitional set unpacks
    # the same stream, so at once.
    "recovery_junk": 100.0,
    # It accused a member nobody else suspected.
    "false_accusation": 25.0,
    # As representative it sealed us a key we cannot use: only we can see it.
    "bad_commit": 100.0,
}

# What an honest overloaded member causes: its visits run long, the token
# and commit tokens die at it, it holds the aru. Against a member whose own
# recent signed reports say it is overloaded these are scored only
# OVERLOAD_DEFER_TOKEN_TIMEOUTS later, unless it was evicted meanwhile: its
# reports convict it of overload first (a proof every member checks alike;
# its third report may wait for the next ring to form), and before, these
# scores evicted it by accusation, for 30 s, a few hundred ms before the
# proof (sim --nodes 7 --byzantine 7:overload, seeds 1 and 3). A liar that
# reports overload only delays its scores by as long.
OVERLOAD_SIGNALS = frozenset(
    {"token_loss", "commit_loss", "commit_withheld", "slow_hold", "aru_stuck"}
)
OVERLOAD_DEFER_TOKEN_TIMEOUTS = 8
# Evidence kept: bounds memory whatever peers send.
ACCUSERS_TRACKED = 256
# Accusations awaiting review, and proof checks remembered.
REVIEWS_MAX = 1024
CHECKS_KEPT = 1024


class Review(NamedTuple):
    """An accusation to judge once its time came: uncorroborated, it
    counts against its accuser (engine/accusations.py)."""

    due: float
    accuser: int
    target: int


class Deferred(NamedTuple):
    """A signal against a member that reported overload, scored at ``due``
    (``Detector.defer``)."""

    due: float
    at: float
    peer: int
    signal: str


class LossBlame(NamedTuple):
    """Whose visit the token (or the commit token: ``signal``
    ``commit_loss``) died at, and when: scored only if that member then
    answers the membership round (a crashed one is simply failed)."""

    node: int
    at: float
    signal: str = "token_loss"


class CommitWatch(NamedTuple):
    """The furthest commit token of a forming ring seen on its way round
    (forwards are broadcast): its holder ``members[hop % n]`` is the one to
    forward the next hop, and is blamed if the round dies there."""

    ring: RingId
    members: tuple[int, ...]
    hop: int
    fixed: bytes  # what forwards keep: key commitment, keys, certificate
    entries: tuple[CommitMember, ...]
    at: float
    raw: bytes = b""  # the hop as seen (observed hops: relayed if late)

    @property
    def holder(self) -> int:
        return self.members[self.hop % len(self.members)]

    @property
    def done(self) -> bool:
        return self.hop >= 2 * len(self.members)


# Proofs a member convicted here may still send us (Detector.takes_late_proof).
PROOFS_AFTER_BAN_MAX: Final = 4


@dataclass(slots=True)
class Verdict:
    """Why ``target`` must leave: its evidence (a PROOF frame, or the
    accusation frames) travels in joins so every member can check it."""

    target: int
    reason: str
    proof: bool
    evidence: tuple[Frame, ...]
    at: float
    announced: bool = False


class CarriedVerdicts(NamedTuple):
    """What a node's detector keeps when its engine is replaced (a roster
    reload): who is kept out, why and since when (evidence stays behind:
    it is signed under the old roster version), how often each was
    evicted (the doubling cool-down), and whose old evidence is spent."""

    verdicts: tuple[Verdict, ...]
    evictions: tuple[tuple[int, tuple[float, ...]], ...]
    amnesty: tuple[tuple[int, int], ...]


@dataclass(slots=True)
class _Peer:
    signals: dict[str, float] = field(default_factory=dict)
    updated: float = 0.0


class Detector:
    """One node's view of every peer's behaviour."""

    def __init__(
        self, me: int, roster: tuple[int, ...], cfg: EngineConfig, restarted_at: int = 0
    ) -> None:
        self.me = me
        self.roster = roster
        self.timing = Timing.of(cfg)
        self.f = (len(roster) - 1) // 3
        # Distinct accusers that convict: f+1, and never one alone. On 2 or 3
        # nodes f = 0, and one member's unprovable suspicion evicted a peer:
        # a liar could, and so could heavy loss (2 nodes at 30% loss: each
        # blames the other for the tokens the network lost).
        self.accusers_needed = max(self.f + 1, 2)
        self._peers: dict[int, _Peer] = {}
        # target -> accuser -> signed accusation frame (bound to its ring).
        self.accusations: dict[int, dict[int, Frame]] = {}
        self.verdicts: dict[int, Verdict] = {}
        # Per banned sender: its verdict's time and the proofs taken since.
        self.late_proofs: dict[int, tuple[float, int]] = {}
        # Accusations this node made, per ring (at most one per target).
        self.accused: dict[int, RingId] = {}
        # target -> times it was evicted (for the doubling cool-down).
        self.evictions: dict[int, list[float]] = {}
        # target -> ring seq below which evidence about it is spent (it was
        # punished and readmitted: old proofs must not evict it again).
        self.amnesty: dict[int, int] = {}
        # The ring seq this node (re)started with: overload evidence of
        # rings up to it is spent for everyone (the amnesties it granted
        # before a restart are gone; the overloads they forgave are over).
        self.restarted_at = restarted_at
        # Proof frames already checked (digest -> verdict reason or "").
        self.checked: dict[bytes, str] = {}
        # Accusations awaiting corroboration: (due, accuser, target, ring),
        # in arrival order; the hop of the last one queued per (accuser,
        # target, ring).
        self.pending_false: deque[tuple[float, int, int, RingId]] = deque()
        self.false_last: dict[tuple[int, int, RingId], int] = {}
        # target -> accuser -> when its latest accusation (any ring) arrived.
        self.accused_at: dict[int, dict[int, float]] = {}
        # Members whose join restarted our ring proposing outsiders, and the
        # outsiders not heard from since (engine/faults.py: a proposal of
        # nodes nobody hears is churn).
        self.proposed: dict[int, frozenset[int]] = {}
        # When each roster node was last heard (a join, or a signed token of
        # a foreign ring): a proposal to add a node heard lately is no
        # phantom, and a join proposing it is a merge, not churn.
        self.heard_at: dict[int, float] = {}
        # Verdicts forgiven before a view without their target was installed.
        self.unannounced: dict[int, Verdict] = {}
        # (proposer, outsider) -> (next time it may propose it, back-off):
        # the schedule of a correct proposer's merge back-off.
        self.merge_proposals: dict[tuple[int, int], tuple[float, float]] = {}
        # The forming ring's commit progress (recovery.observe_commit).
        self.commit_watch: CommitWatch | None = None
        # The current ring's tokens as the detector sees them (reset with
        # the ring: ``new_ring``), and our own receive load.
        self.tokens = TokenWatch()
        self.load = LoadMeter()
        # The round that restarted our ring, until it is judged (``churn``).
        self.churn = ChurnWatch()
        # Whose visit the token died at (scored if it answers the round).
        self.loss_blame: LossBlame | None = None
        # Each member's latest signed tokens and whether each reported
        # overload (kept across rings: the token losses an overload causes
        # end rings); faults.check_load. Bounded by the roster.
        self.overload_run: dict[int, list[tuple[Frame, bool]]] = {}
        # Signals held back while their target's overload is judged.
        self.deferred: deque[Deferred] = deque()
        # We were evicted and rejoin: the next regular view says so.
        self.rejoining = False

    def new_ring(self, start_t: float) -> None:
        """A new ring (or none) begins at ``start_t``: its token is watched
        afresh."""
        self.tokens = TokenWatch(ring_start_t=start_t)

    def spent(self, target: int) -> None:
        """``target`` was convicted: its overload reports are spent (a
        readmitted node starts afresh)."""
        self.overload_run.pop(target, None)

    def may_propose(
        self, now: float, proposer: int, outsiders: frozenset[int], first_s: float
    ) -> bool:
        """Whether ``proposer`` may restart our ring proposing ``outsiders``
        now: at most once per merge back-off (gather.MergeBackoff, from
        ``first_s``), with half a back-off of slack for the network."""
        ok, sched = False, self.merge_proposals
        for key in [(proposer, node) for node in sorted(outsiders)]:
            until, delay = sched.get(key, (0.0, first_s))
            if now >= until:
                ok = True
                if len(sched) < len(self.roster) ** 2:
                    sched[key] = (now + delay / 2, min(2 * delay, MERGE_BACKOFF_MAX_S))
        return ok

    def merged(self, members: Iterable[int]) -> None:
        """Nodes in an installed ring: proposing them starts afresh."""
        ins = set(members)
        for key in [k for k in self.merge_proposals if k[1] in ins]:
            del self.merge_proposals[key]

    # ------------------------------------------------ what the glue records

    def take_blame(self, node: int) -> LossBlame | None:
        """The loss blamed on ``node``, if any (then no longer pending)."""
        blame = self.loss_blame
        if blame is None or blame.node != node:
            return None
        self.loss_blame = None
        return blame

    def may_accuse(self, peer: int, ring: RingId) -> bool:
        """Whether we have not accused ``peer`` in ``ring`` yet nor convicted it."""
        return self.accused.get(peer) != ring and peer not in self.verdicts

    def accuse(self, peer: int, ring: RingId) -> None:
        self.accused[peer] = ring

    def heard(
        self, now: float, accuser: int, target: int, ring: RingId, hop: int, rotation: int
    ) -> bool:
        """``accuser`` accused ``target`` (neither is us) at ``hop`` of
        ``ring``: remembered as corroboration of other accusations; True if
        it is to be reviewed (at most one per rotation of ``rotation`` hops
        per accuser, target and ring: ``review``)."""
        seen = self.accused_at.setdefault(target, {})
        if len(seen) < len(self.roster):
            seen[accuser] = now
        key = (accuser, target, ring)
        if len(self.false_last) > REVIEWS_MAX:
            self.false_last.clear()  # a bound: at worst one accusation reviewed twice
        last = self.false_last.get(key)
        if (last is None or hop >= last + rotation) and len(self.pending_false) < REVIEWS_MAX:
            self.false_last[key] = hop
            return True
        return False

    def review(self, due: float, accuser: int, target: int, ring: RingId) -> None:
        self.pending_false.append((due, accuser, target, ring))

    def reviews_due(self, now: float) -> list[Review]:
        """The accusations whose review time came (no longer pending)."""
        out = []
        while self.pending_false and self.pending_false[0][0] <= now:
            due, accuser, target, _ = self.pending_false.popleft()
            out.append(Review(due, accuser, target))
        return out

    def accused_since(self, target: int, since: float, besides: int) -> list[int]:
        """Who (other than ``besides``) accused ``target`` at ``since`` or later."""
        heard = self.accused_at.get(target, {})
        return [a for a, t in heard.items() if a != besides and t >= since]

    def evicted_since(self, target: int, since: float) -> bool:
        return any(t >= since for t in self.evictions.get(target, []))

    def check_known(self, key: bytes) -> bool:
        """Whether the proof of digest ``key`` was checked already."""
        return key in self.checked

    def checked_proof(self, key: bytes, reason: str | None) -> None:
        if len(self.checked) > CHECKS_KEPT:
            self.checked.clear()
        self.checked[key] = reason or ""

    def heard_from(self, node: int, now: float) -> None:
        """``node`` spoke: a proposal to add it was no phantom."""
        if node in self.roster:
            self.heard_at[node] = now
        for proposer in [p for p, outs in self.proposed.items() if node in outs]:
            self.proposed[proposer] = frozenset()

    def propose(
        self, proposer: int, outsiders: frozenset[int], now: float, recent_s: float
    ) -> None:
        """``proposer`` restarted our ring to add ``outsiders`` (judged when
        the round ends): no phantom if we heard one of them within
        ``recent_s`` (the proposer heard it too, and another member may
        keep it out of the round: a fail claim, its merge back-off).
        Bounded by the roster."""
        if any(self.heard_lately(o, now, recent_s) for o in outsiders):
            outsiders = frozenset()
        if len(self.proposed) < len(self.roster):
            self.proposed[proposer] = outsiders

    def heard_lately(self, node: int, now: float, recent_s: float) -> bool:
        """Whether ``node`` sent us a join or a token of its ring within
        ``recent_s``."""
        return now - self.heard_at.get(node, -math.inf) <= recent_s

    def take_proposals(self) -> dict[int, frozenset[int]]:
        proposed, self.proposed = self.proposed, {}
        return proposed

    def take_announcements(self) -> dict[int, Verdict]:
        """Verdicts forgiven before this view, and current ones (the current
        verdict of a target wins: one announcement per target)."""
        due = {**self.unannounced, **self.verdicts}
        self.unannounced = {}
        return due

    def take_rejoined(self) -> bool:
        """Whether a rejoin was in progress (then it is over)."""
        rejoining, self.rejoining = self.rejoining, False
        return rejoining

    # --------------------------------------------------------------- scores

    def score(self, now: float, peer: int, signal: str, weight: float | None = None) -> float:
        """Add one observation of ``signal`` against ``peer``; its total."""
        if peer == self.me or peer not in self.roster:
            return 0.0
        p = self._peers.setdefault(peer, _Peer(updated=now))
        self._decay(p, now)
        w = WEIGHTS[signal] if weight is None else weight
        p.signals[signal] = p.signals.get(signal, 0.0) + w
        return sum(p.signals.values())

    def defer(self, now: float, peer: int, signal: str) -> bool:
        """Hold back ``signal`` against ``peer`` if one of its recent signed
        load reports is over the limits (OVERLOAD_SIGNALS); True if held."""
        run = self.overload_run.get(peer, ())
        if (
            signal not in OVERLOAD_SIGNALS
            or not any(over for _, over in run)
            or len(self.deferred) >= REVIEWS_MAX  # a bound: scored at once
        ):
            return False
        due = now + OVERLOAD_DEFER_TOKEN_TIMEOUTS * self.timing.token_timeout_s
        self.deferred.append(Deferred(due, now, peer, signal))
        return True

    def deferred_due(self, now: float) -> list[Deferred]:
        """Held-back signals whose time came, against members not evicted
        since (no longer pending)."""
        out = []
        while self.deferred and self.deferred[0].due <= now:
            d = self.deferred.popleft()
            if d.peer not in self.verdicts and not self.evicted_since(d.peer, d.at):
                out.append(d)
        return out

    def total(self, now: float, peer: int) -> float:
        p = self._peers.get(peer)
        if p is None:
            return 0.0
        self._decay(p, now)
        return sum(p.signals.values())

    def top_signal(self, peer: int) -> str:
        p = self._peers.get(peer)
        if p is None or not p.signals:
            return "none"
        return max(sorted(p.signals), key=lambda s: p.signals[s])

    def scores(self, now: float) -> dict[int, dict[str, float]]:
        """Every peer's decayed score by signal (for status())."""
        out = {}
        for peer, p in sorted(self._peers.items()):
            self._decay(p, now)
            out[peer] = {s: round(v, 1) for s, v in sorted(p.signals.items()) if v >= 0.05}
        return out

    def _decay(self, p: _Peer, now: float) -> None:
        dt = now - p.updated
        if dt <= 0:
            return
        factor = math.pow(0.5, dt / self.timing.suspicion_half_life_s)
        p.signals = {s: v * factor for s, v in p.signals.items() if v * factor >= 0.05}
        p.updated = now

    def forget_scores(self, peer: int) -> None:
        self._peers.pop(peer, None)

    # ----------------------------------------------------------- evidence

    def add_accusation(self, frame: Frame, target: int, counts: bool) -> bool:
        """Record a verified accusation; True if it is new and counts
        (``counts``: its ring is one ours accepts, engine/accusations.py;
        the accuser is not the target). One frame per accuser: its latest
        ring's, so a delayed older one does not replace it."""
        if not counts or frame.sender == target:
            return False
        if target not in self.roster or target in self.verdicts:
            return False
        got = self.accusations.setdefault(target, {})
        had = got.get(frame.sender)
        if had is not None and had.ring.seq >= frame.ring.seq:
            return False
        if had is None and len(got) >= ACCUSERS_TRACKED:
            return False
        got[frame.sender] = frame
        return True

    def accusers(self, target: int, ring: RingId | None) -> list[Frame]:
        return [
            f
            for f in self.accusations.get(target, {}).values()
            if ring is not None and f.ring == ring
        ]

    def convict(
        self, now: float, target: int, reason: str, proof: bool, evidence: tuple[Frame, ...]
    ) -> Verdict | None:
        """Record a verdict (the first one stands); None if already convicted."""
        if target in self.verdicts or target not in self.roster:
            return None
        v = Verdict(target, reason, proof, evidence, now)
        self.verdicts[target] = v
        times = [t for t in self.evictions.get(target, []) if now - t <= self.timing.evict_window_s]
        self.evictions[target] = [*times, now]
        return v

    def cooldown_s(self, target: int) -> float:
        """Cool-down of the latest eviction of ``target``: doubles for each
        earlier eviction within the window. A proof of malice (equivocation,
        a broken rule) takes the longest: a correct node never signs one, so
        no correct node pays it; overload and accusations can hit a correct
        node, so they start short."""
        v = self.verdicts.get(target)
        if v is not None and v.proof and v.reason != "overload":
            return self.timing.evict_cooldown_max_s
        k = max(1, len(self.evictions.get(target, [])))
        base_s = self.timing.evict_cooldown_s
        if v is not None and v.reason == "accused":
            base_s = self.timing.evict_cooldown_accused_s
        # Doubling is exact in floats: the same result as in milliseconds.
        return min(self.timing.evict_cooldown_max_s, base_s * (1 << min(k - 1, 30)))

    def banned(self, now: float, target: int) -> bool:
        v = self.verdicts.get(target)
        return v is not None and now < v.at + self.cooldown_s(target)

    def takes_late_proof(self, now: float, head: Header) -> bool:
        """Whether a PROOF from ``head.sender``, banned here, is taken: a
        member convicted at the moment it proved another's misbehaviour
        (which it alone may have seen) sends its proof as the others ban
        it. A proof convicts only the signer of its statements, whoever
        forwards it; up to ``PROOFS_AFTER_BAN_MAX`` verified ones
        (:meth:`took_late_proof`) within a token timeout of the verdict, so
        a banned node cannot make us verify more, and forged copies (a bad
        signature) use up nothing."""
        v = self.verdicts.get(head.sender)
        if head.kind is not Kind.PROOF or v is None or now > v.at + self.timing.token_timeout_s:
            return False
        at, taken = self.late_proofs.get(head.sender, (v.at, 0))
        return at != v.at or taken < PROOFS_AFTER_BAN_MAX

    def took_late_proof(self, sender: int) -> None:
        """A datagram of ``sender`` passed its signature check: one of its
        late proofs if it has a verdict here (nothing else of a banned
        sender gets that far). Bounded by the roster."""
        v = self.verdicts.get(sender)
        if v is not None:
            at, taken = self.late_proofs.get(sender, (v.at, 0))
            self.late_proofs[sender] = (v.at, taken + 1 if at == v.at else 1)

    def forgive(self, now: float, target: int, ring_seq: int) -> None:
        """The cool-down is over: ``target`` may join again; evidence from
        rings up to ``ring_seq`` is spent."""
        v = self.verdicts.pop(target, None)
        if v is not None and not v.announced and len(self.unannounced) < len(self.roster):
            # Forgiven before any view without it was installed (a slow
            # membership round): the next such view still announces it.
            self.unannounced[target] = v
        self.accusations.pop(target, None)
        self.accused.pop(target, None)
        self.amnesty[target] = ring_seq
        self.forget_scores(target)
        self.merged((target,))

    def expired(self, now: float) -> list[int]:
        """Convicted nodes whose cool-down is over."""
        return [t for t in sorted(self.verdicts) if not self.banned(now, t)]

    # ---------------------------------------------------- engine replacement

    def carry(self) -> CarriedVerdicts:
        """The verdicts, eviction history and amnesty to hand to the
        detector of this node's next engine (:meth:`adopt`)."""
        return CarriedVerdicts(
            tuple(replace(v, evidence=()) for _, v in sorted(self.verdicts.items())),
            tuple((t, tuple(ts)) for t, ts in sorted(self.evictions.items())),
            tuple(sorted(self.amnesty.items())),
        )

    def adopt(self, carried: CarriedVerdicts) -> None:
        """Take over what a previous engine's detector decided, for the
        nodes of this roster (others, and this node itself, are dropped)."""
        keep = set(self.roster) - {self.me}
        for v in carried.verdicts:
            if v.target in keep:
                self.verdicts[v.target] = replace(v)
        for target, times in carried.evictions:
            if target in keep:
                self.evictions[target] = list(times)
        for target, ring_seq in carried.amnesty:
            if target in keep:
                self.amnesty[target] = ring_seq
