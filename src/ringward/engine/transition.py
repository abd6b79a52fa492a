"""The engine's state changes: one function, one table.

Every change of ``Engine.state`` goes through :func:`to`, and :data:`NEXT`
lists the moves the protocol makes (docs/protocol.md, "Engine map"):

==============  =============================================================
from            to
==============  =============================================================
GATHER          GATHER (a fresh round), COMMIT (first commit rotation),
                REJECTED (evicted, or leaving)
COMMIT          RECOVERY (second rotation), GATHER (round failed), REJECTED
RECOVERY        OPERATIONAL (recovery complete), GATHER, REJECTED
OPERATIONAL     GATHER (token loss, join, foreign ring, rekey, eviction of
                another member), REJECTED
REJECTED        REJECTED (leave), GATHER (rejoin after the cool-down)
==============  =============================================================

A move outside the table is a bug: it is counted (``bug:transition``) and
made anyway, since the engine never raises. Leaving a round (to GATHER,
REJECTED or OPERATIONAL) drops what the round built: :func:`end_round`.
The fault detector's verdicts are carried out here and nowhere else
(:func:`act`, through ``Engine.act``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from ringward.engine import accusations, delivery, versions
from ringward.engine.api import Rejected
from ringward.engine.membership import State, regular_view_id
from ringward.engine.reasons import Note
from ringward.engine.ringstore import RingStore
from ringward.engine.watch import NEVER_S
from ringward.wire import RingId

if TYPE_CHECKING:
    from ringward.engine.detector import Verdict
    from ringward.engine.engine import Engine

__all__ = [
    "NEXT",
    "TIMERS",
    "act",
    "end_round",
    "install",
    "reject",
    "rejoin",
    "reset_tokens",
    "to",
]

_S = State
NEXT: Final[Mapping[State, frozenset[State]]] = {
    _S.GATHER: frozenset({_S.GATHER, _S.COMMIT, _S.REJECTED}),
    _S.COMMIT: frozenset({_S.RECOVERY, _S.GATHER, _S.REJECTED}),
    _S.RECOVERY: frozenset({_S.OPERATIONAL, _S.GATHER, _S.REJECTED}),
    _S.OPERATIONAL: frozenset({_S.GATHER, _S.REJECTED}),
    _S.REJECTED: frozenset({_S.REJECTED, _S.GATHER}),
}

# Timer names, in the order they fire when due together.
TIMERS: Final = (
    "token_rtx",
    "commit_rtx",
    "token_hold",
    "link",
    "relay",
    "commit_relay",
    "token_loss",
    "join",
    "consensus",
    "rekey",
    "rejoin",
)
# Rings whose membership is remembered (to check proofs about them).
RINGS_KEPT: Final = 4


def to(engine: Engine, new: State) -> None:
    """Move the engine to ``new`` (the only assignment of its state)."""
    if new not in NEXT[engine.state]:
        engine.notes[f"{Note.BUG}:transition:{engine.state.value}->{new.value}"] += 1
    if engine.state is State.OPERATIONAL and engine.store is not None:
        # Leaving the ring: keep its chain before the token state goes
        # (recovery confirms old tokens against it: engine/versions.py).
        versions.keep_chain(engine, engine.store)
    engine.state = new


def end_round(engine: Engine) -> None:
    """Drop what a membership round built: the ring being formed, its store,
    recovery plan and queue, and the commit token we forwarded."""
    engine.pending = None
    engine.new_store = None
    engine.plan = None
    engine.recq = None
    engine.last_commit = None


def reset_tokens(engine: Engine, start_t: float = NEVER_S) -> None:
    """A new ring (or none, from ``start_t``): its token is followed and
    watched afresh."""
    engine.tokens.reset()
    engine.detector.new_ring(start_t)


def act(engine: Engine, v: Verdict) -> None:
    """A new verdict of the fault detector: fail the target now (or, if it
    is us, stand down). The only place a verdict changes the engine."""
    if v.target == engine.node_id:
        reject(engine, v)
        return
    g = engine.gather
    in_ring = v.target in engine.members or (
        engine.pending is not None and v.target in engine.pending.members
    )
    forming = g is not None and v.target in g.proc
    if engine.state is State.REJECTED:
        return
    if engine.state is State.GATHER:
        if forming and g is not None and v.target not in g.fail:
            g.fail.add(v.target)
            engine.set_timer("consensus", engine.timing.consensus_timeout_s)
            engine.send_join()
    elif in_ring:
        engine.enter_gather(engine.now, reason="evict")
    if not (forming or in_ring):
        # Out of every view we hold or form (failed before its proof
        # came): no install leaves it out, and the next may take it back
        # after its cool-down, so the eviction is announced now.
        accusations.announce(engine, v)


def reject(engine: Engine, verdict: Verdict) -> None:
    """We were evicted: stand down for the cool-down (the same one every
    member computes from the same evidence), keeping what the application
    queued; then rejoin by ourselves."""
    if engine.state is State.REJECTED:
        return
    cooldown_s = engine.detector.cooldown_s(engine.node_id)
    engine.notes[f"{Note.REJECTED}:{verdict.reason}"] += 1
    to(engine, State.REJECTED)
    det = engine.detector
    det.load.take_peak()  # from now on: was it healthy all along?
    det.spent(engine.node_id)
    engine.gather = None
    end_round(engine)
    reset_tokens(engine)
    engine.sendq.rewind()
    engine.cancel_timer(*TIMERS)
    engine.set_timer("rejoin", cooldown_s)
    engine.emit(Rejected(verdict.reason, cooldown_s))


def rejoin(engine: Engine) -> None:
    """The cool-down of our eviction is over: rejoin through a normal join,
    once our own load is back under the limits."""
    if engine.state is not State.REJECTED:
        return
    # Healthy for the whole cool-down, not just now: the worst receive wait
    # since we were rejected (the peak is not reset while rejected).
    det = engine.detector
    worst_s = max(det.load.wait_s, det.load.take_peak())
    cfg = engine.config
    if det.load.queue >= cfg.overload_rx_queue or worst_s >= engine.timing.overload_hold_s:
        engine.set_timer("rejoin", engine.timing.evict_cooldown_s)
        return
    det.forgive(engine.now, engine.node_id, engine.ring_seq_max)
    det.rejoining = True
    engine.gather = None
    engine.enter_gather(engine.now, reason="rejoin", rejoin=True)


def install(engine: Engine, ring: RingId, members: tuple[int, ...], store: RingStore) -> None:
    """Install a regular configuration (after recovery)."""
    engine.ring, engine.members, engine.store = ring, members, store
    engine.ring_seq_max = max(engine.ring_seq_max, ring.seq)
    remember_ring(engine, ring, members)
    engine.installed_at = engine.now
    # The old ring's frames are delivered: its key goes, so nothing sent in
    # the old ring is readable here any more either.
    engine.security.retire({ring})
    engine.merge_backoff.forget(members)
    engine.detector.commit_watch = None  # the round completed: nobody to blame
    engine.assembler.reset()
    engine.emit_view(regular_view_id(ring), "regular", members)
    to(engine, State.OPERATIONAL)
    engine.gather = None
    end_round(engine)
    engine.cancel_timer("join", "consensus", "commit_rtx", "rekey")
    if members[0] == engine.node_id and engine.config.rekey_interval_ms:
        engine.set_timer("rekey", engine.timing.rekey_interval_s)
    accusations.on_install(engine, members, regular_view_id(ring))
    delivery.deliver_ready(engine)


def remember_ring(engine: Engine, ring: RingId, members: tuple[int, ...]) -> None:
    """Keep a ring's members (to check proofs about it): the latest
    RINGS_KEPT rings committed to or installed."""
    engine.known_rings[ring] = members
    while len(engine.known_rings) > RINGS_KEPT:
        del engine.known_rings[min(engine.known_rings, key=lambda r: r.seq)]
