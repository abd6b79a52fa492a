"""The idle ring: hold the token while nothing happens, wake it when work comes.

A ring is *quiet* at a visit when its holder sends nothing (no new frame, no
retransmission), the token asks for nothing, its aru equals its seq, every
frame is safe (so no delivery and no buffer waits for further rotations),
and nothing is queued. After ``seqno_unchanged_const`` quiet visits in a row
a holder keeps the token ``Timing.token_hold_idle_s`` before passing it on
(engine/token.py): an idle ring of n members then makes one hop per hold
instead of one per network round trip, and every hop is a signed token sent
to and verified by every member, so its cost falls in proportion.

Work arriving at a member that does not hold the token *wakes* the ring: the
member broadcasts a signed TOKEN_REQUEST for the hop after the newest it saw
(a token nobody has made yet: the next one). Every member that receives it
forwards its next visit without holding, and a member holding the token
releases it at once, so the token comes round within a few network hops.

Bounds (docs/protocol.md, "The idle ring"):

* The hold is at most ``config.IDLE_HOLD_RETRANSMITS`` (half) a token
  retransmission period. The relay and the retransmission of a quiet token
  wait as much longer (:func:`hold_allowance_s`), and the
  slow-hold (``slow_hold_ms``) and token-loss times are far longer: no
  timer that watches the token takes a held token for a late or lost one,
  and a holder that ignores wakes delays the ring by at most one hold per
  visit. The hold is not load: a holder's load report counts from its
  release.
* A wake is answered once per requester and hop per half retransmission
  period (the token requests' table), and only for hops from a rotation
  behind the newest this member saw to a rotation ahead of it: a member
  flooding wakes costs each receiver one signature check per datagram and
  can at most keep the ring from holding, as a member sending one message
  per rotation does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ringward.engine.membership import State
from ringward.engine.reasons import Drop, Note
from ringward.wire import Frame, Token, TokenRequest

if TYPE_CHECKING:
    from ringward.engine.engine import Engine
    from ringward.engine.ringstore import RingStore

__all__ = ["hold_allowance_s", "is_wake", "quiet", "quiet_token", "wake_due", "wake_valid", "woken"]


def quiet(engine: Engine, store: RingStore, sent: int, rtr: bool, aru: int, seq: int) -> bool:
    """Whether this visit leaves the ring with nothing to do (module
    docstring); consumes a wake received since our last visit."""
    woken = engine.tokens.holder.take_woken()
    return (
        not woken
        and sent == 0
        and not rtr
        and aru == seq
        and store.safe_upto >= seq
        and not engine.sendq.frames_pending
    )


def quiet_token(tk: Token) -> bool:
    """A token that shows a quiet visit: no frames, no requests, aru = seq."""
    return not tk.frames and not tk.rtr and tk.aru == tk.seq


def hold_allowance_s(engine: Engine, tk: Token) -> float:
    """How much later than usual the next hop may come after ``tk``: the
    relay and the retransmission of a quiet token wait one hold longer, so
    neither fires on a legitimate hold. Any other token is not held (its
    frames are not safe at the successor's visit, or the aru or requests
    show frames missing), so loss is repaired as fast as before."""
    return engine.timing.token_hold_idle_s if quiet_token(tk) else 0.0


def wake_due(engine: Engine) -> int | None:
    """New work at a member that does not hold the token: the hop to ask
    for if the ring may be holding, else None. The ring may be holding once
    a whole rotation of tokens we saw was quiet (``Holder.quiet_hops``):
    frames listed within the last rotation are not safe before our next
    visit, so no holder's visit is quiet before it. At most one wake per
    token seen: a burst of submits sends one."""
    # Called on every submit: the cheap tests first (a busy ring fails the
    # quiet-hops one), and the operational ring's own fields.
    me, hops = engine.tokens.holder, engine.tokens.hops
    n = len(engine.members)
    if (
        me.quiet_hops < n
        or n < 2
        or me.woke_at == hops.seen
        or engine.state is not State.OPERATIONAL
        or engine.ring is None
        or engine.store is None
    ):
        return None
    me.woke_at = hops.seen
    engine.notes[Note.WAKE_SENT] += 1
    return hops.seen + 1


def is_wake(engine: Engine, frame: Frame, req: TokenRequest) -> bool:
    """A member's token request of our operational ring for a hop of the
    last rotation this member saw, or a later one: a wake. Its sender asked
    for the token after the newest it saw, and tokens made meanwhile (a hold
    that ended while the sender's process was busy) may have taken the ring
    on; a member that lost a recent token asks for it the same way, and not
    holding our next visit costs nothing then."""
    cur = engine.active()
    return (
        cur is not None
        and engine.state is State.OPERATIONAL
        and frame.ring == cur.ring
        and frame.sender in cur.members
        and req.hop > engine.tokens.hops.seen - len(cur.members)
    )


def wake_valid(engine: Engine, req: TokenRequest) -> bool:
    """A wake for at most the ``n`` hops after the newest we saw (a member
    ahead of us saw at most a rotation more); one further ahead is dropped
    unread."""
    cur = engine.active()
    ok = cur is not None and req.hop <= engine.tokens.hops.seen + len(cur.members)
    if not ok:
        engine.drops[Drop.WAKE_IGNORED] += 1
    return ok


def woken(engine: Engine) -> bool:
    """A valid wake (not a repeat): our next visit does not hold; whether
    a token we hold for idleness is to be released now."""
    me = engine.tokens.holder
    me.wake()
    engine.notes[Note.WOKEN] += 1
    return me.held is not None and not me.held_for_link
